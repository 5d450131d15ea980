"""The signing-Secret watch lists in pages: a fleet's thousands of Secrets never come as one answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from procon.k8s import secret_watch
from procon.k8s.signing_index import SigningSecretIndex


class _Response:
    """A raw (not decoded) answer, as the client returns it with ``_preload_content=False``."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.status = 200
        self._body = json.dumps(body).encode()

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def read(self) -> bytes:
        return self._body


class _Core:
    """Three pages of Secrets of one snapshot (resourceVersion 42)."""

    def __init__(self, total: int) -> None:
        self.names = [f"signing-{n}" for n in range(total)]
        self.asked: list[dict[str, Any]] = []

    async def list_namespaced_secret(self, namespace: str, **params: Any) -> _Response:
        self.asked.append(params)
        start = int(params.get("_continue") or 0)
        end = start + params["limit"]
        page = [{"metadata": {"name": n, "namespace": namespace}} for n in self.names[start:end]]
        more = str(end) if end < len(self.names) else ""
        return _Response({"metadata": {"resourceVersion": "42", "continue": more}, "items": page})


def test_the_first_listing_is_read_page_by_page() -> None:
    core = _Core(total=2 * secret_watch.LIST_PAGE_SIZE + 7)
    seen: list[str] = []
    index = SigningSecretIndex()
    index.listing("shop")
    version = asyncio.run(
        secret_watch._list(core, "shop", lambda _type, meta: seen.append(meta["name"]), index)  # type: ignore[arg-type]
    )
    index.listed("shop")
    assert version == "42"
    assert seen == core.names
    assert len(index) == len(core.names)
    assert not index.known_absent(("shop", core.names[-1]))
    assert index.known_absent(("shop", "another"))
    assert [p["limit"] for p in core.asked] == [secret_watch.LIST_PAGE_SIZE] * 3
    assert [p.get("_continue") for p in core.asked] == [None, "500", "1000"]


class _Stream:
    """A watch answer: one JSON event per line, read as aiohttp's content is."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.status = 200
        self.content = self
        self._body = b"".join(json.dumps(e).encode() + b"\n" for e in events)

    async def __aenter__(self) -> _Stream:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def iter_any(self) -> Any:
        yield self._body


class _Watching:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    async def list_namespaced_secret(self, namespace: str, **params: Any) -> _Stream:
        assert params["watch"] is True
        return _Stream(self.events)


def _event(kind: str, name: str, version: str) -> dict[str, Any]:
    return {
        "type": kind,
        "object": {"metadata": {"name": name, "namespace": "shop", "resourceVersion": version}},
    }


def test_the_watch_keeps_the_index_of_signing_secrets() -> None:
    """Events, not only listings, say which Secrets exist: a new one is known present at once, a
    deleted one (or one that lost procon's label) known absent; a bookmark says nothing of any."""
    index = SigningSecretIndex()
    index.listing("shop")
    index.listed_one("shop", ("shop", "old"))
    index.listed("shop")
    core = _Watching(
        [
            _event("ADDED", "new", "43"),
            _event("DELETED", "old", "44"),
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "45"}}},
        ]
    )
    seen: list[tuple[str | None, str]] = []
    version = asyncio.run(
        secret_watch._watch(core, "shop", "42", lambda kind, meta: seen.append((kind, meta["name"])), index)  # type: ignore[arg-type]
    )
    assert version == "45"
    assert seen == [("ADDED", "new"), ("DELETED", "old")]
    assert not index.known_absent(("shop", "new"))
    assert index.known_absent(("shop", "old"))


def test_a_failed_watch_knows_nothing_absent_until_it_has_listed_again() -> None:
    """Events may be missed while the watch is down: no name is taken for absent meanwhile."""

    class Failing:
        calls = 0

        async def list_namespaced_secret(self, namespace: str, **params: Any) -> _Response:
            Failing.calls += 1
            raise RuntimeError("connection refused")

    index = SigningSecretIndex()
    index.listing("shop")
    index.listed("shop")
    assert index.known_absent(("shop", "a"))

    async def run_briefly() -> None:
        task = asyncio.create_task(secret_watch._watch_scope(Failing(), "shop", lambda *_: None, index))  # type: ignore[arg-type]
        while not Failing.calls:
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run_briefly())
    assert not index.known_absent(("shop", "a"))
