"""A metadata-only watch of the signing-secret Secrets procon writes.

The operator watches two kinds of Secrets, and only those: credentials
Secrets that opted in (``procon.dev/credentials=true``, watched by kopf) and
the signing-secret Secrets it publishes (``app.kubernetes.io/managed-by=procon``).
kopf runs one watch stream per resource, with one label selector, and label
selectors cannot say "or"; so this second stream, filtered on the server
too, covers the signing Secrets. It asks for metadata only
(PartialObjectMetadata): a change is all it needs to know, and the labels
name the connection, so the Secrets' data never comes through it.

It lists, then watches from the list's resourceVersion, resuming from the
last version seen when the server ends the stream, and lists again when
that version has expired (410 Gone), as client-go's reflector does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from kubernetes_asyncio import client

from procon.k8s.kube import AS_RAW_METADATA, MANAGED_BY, MANAGED_BY_LABEL, raise_for_status, raw_json
from procon.k8s.signing_index import SigningSecretIndex

logger = logging.getLogger(__name__)

MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
# The server ends each watch after this long; the stream then resumes where it was.
SERVER_TIMEOUT = 300
MAX_BACKOFF = 30.0
LIST_PAGE_SIZE = 500  # Secrets per page of the first listing

# Called with the event type (None for objects of a fresh listing) and the object's metadata.
OnEvent = Callable[[str | None, Mapping[str, Any]], None]


class Gone(Exception):
    """The resourceVersion to resume from has expired: list again."""


async def watch_managed_secrets(
    core: client.CoreV1Api,
    namespaces: tuple[str, ...],
    on_event: OnEvent,
    index: SigningSecretIndex | None = None,
) -> None:
    """Watch the managed Secrets in ``namespaces`` (every namespace when empty) until cancelled,
    keeping ``index`` of which exist."""
    scopes: tuple[str | None, ...] = namespaces or (None,)
    index = index if index is not None else SigningSecretIndex()
    await asyncio.gather(*(_watch_scope(core, namespace, on_event, index) for namespace in scopes))


async def _watch_scope(
    core: client.CoreV1Api, namespace: str | None, on_event: OnEvent, index: SigningSecretIndex
) -> None:
    where = f"in {namespace}" if namespace else "cluster-wide"
    backoff = 1.0
    while True:
        try:
            index.listing(namespace)
            version = await _list(core, namespace, on_event, index)
            index.listed(namespace)
            logger.debug("watching procon's signing Secrets %s from version %s", where, version)
            while True:
                version = await _watch(core, namespace, version, on_event, index)
                backoff = 1.0
        except Gone:
            continue
        except asyncio.CancelledError:
            raise
        except Exception as error:
            index.listing(namespace)  # events may be missed until it lists again
            logger.warning("the watch of procon's signing Secrets %s failed (%s); retrying", where, error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)


async def _request(core: client.CoreV1Api, namespace: str | None, **params: Any) -> Any:
    """One list or watch request, metadata only, raw (the caller reads the body)."""
    params.update(label_selector=MANAGED_SELECTOR, **AS_RAW_METADATA)
    if namespace:
        return await core.list_namespaced_secret(namespace, **params)
    return await core.list_secret_for_all_namespaces(**params)


async def _list(
    core: client.CoreV1Api, namespace: str | None, on_event: OnEvent, index: SigningSecretIndex
) -> str:
    """List in pages (a fleet's signing Secrets are thousands); every page is of one snapshot,
    whose resourceVersion the watch resumes from. An expired page token fails the listing,
    which the caller starts again."""
    token = ""
    while True:
        params: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
        if token:
            params["_continue"] = token
        listing = await raw_json(await _request(core, namespace, **params))
        for item in listing.get("items") or []:
            meta = item.get("metadata") or {}
            if key := _key(meta):
                index.listed_one(namespace, key)
            on_event(None, meta)
        metadata = listing.get("metadata") or {}
        token = str(metadata.get("continue") or "")
        if not token:
            return str(metadata["resourceVersion"])


async def _watch(
    core: client.CoreV1Api, namespace: str | None, version: str, on_event: OnEvent, index: SigningSecretIndex
) -> str:
    """Follow one watch request to its end; returns the version to resume from."""
    response = await _request(
        core,
        namespace,
        watch=True,
        resource_version=version,
        allow_watch_bookmarks=True,
        timeout_seconds=SERVER_TIMEOUT,
        _request_timeout=SERVER_TIMEOUT + 30,
    )
    async with response:
        if response.status == 410:
            raise Gone
        raise_for_status(response)
        async for event in _json_lines(response.content):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone
                raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('reason')}")
            meta = obj.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            if key := _key(meta):
                (index.gone if kind == "DELETED" else index.present)(key)
            on_event(kind, meta)
    return version


def _key(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    namespace, name = meta.get("namespace"), meta.get("name")
    return (str(namespace), str(name)) if namespace and name else None


async def _json_lines(content: Any) -> AsyncIterator[dict[str, Any]]:
    """A watch body's events, one JSON document per line, whatever the line's length.

    (aiohttp's own line reader refuses lines over 64 KiB, and a Secret's
    metadata may be larger: annotations alone may hold 256 KiB.)
    """
    buffer = b""
    async for chunk in content.iter_any():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)
