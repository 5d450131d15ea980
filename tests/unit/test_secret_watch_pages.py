"""The signing-Secret watch lists in pages: a fleet's thousands of Secrets never come as one answer."""

from __future__ import annotations

import asyncio
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
