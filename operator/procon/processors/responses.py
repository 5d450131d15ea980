"""Reading processor answers defensively: a size cap, and words for an answer that is not JSON.

A processor's answers to procon's calls are small (a list of 100 webhooks,
one webhook's configuration), so anything near a few MiB is not an
answer procon can use: a proxy's page, a misrouted download, or a body that
never ends. Reading stops at the cap instead of holding memory and a
connection for as long as the other side keeps sending.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping

import httpx

from procon.processors.base import MalformedResponse

# Far above any answer procon asks for; far below what would hurt the operator's memory.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
# Headers that describe the body as it came over the wire, not as decoded here.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class ResponseTooLarge(MalformedResponse):
    """The body went on past :data:`MAX_RESPONSE_BYTES`."""


async def read_capped(
    response: httpx.Response, doing: str, limit: int = MAX_RESPONSE_BYTES
) -> httpx.Response:
    """Read a streamed ``response`` up to ``limit`` decoded bytes, close it, and return it read.

    Raises :class:`ResponseTooLarge` (and closes the connection) past the limit,
    whatever ``Content-Length`` claimed.
    """
    try:
        content = await read_chunks_capped(response.aiter_bytes(), doing, limit)
    finally:
        await response.aclose()
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=content,
        request=response.request,
        extensions=response.extensions,
    )


async def read_chunks_capped(
    chunks: AsyncIterable[bytes], doing: str, limit: int = MAX_RESPONSE_BYTES
) -> bytes:
    """A body's decoded ``chunks`` joined, or :class:`ResponseTooLarge` once they pass ``limit``
    (the caller closes the connection: what is left of the body is never read)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(
                f"{doing}: the answer went on past {limit // (1024 * 1024)} MiB; "
                "no answer procon asks for is that large"
            )
        parts.append(chunk)
    return b"".join(parts)


def describe_body(status: int, headers: Mapping[str, str] | None, body: bytes | str | None) -> str:
    """What came back, in words safe for a condition: status, content type and size, never the body."""
    content_type = ""
    if headers is not None:
        content_type = str(headers.get("content-type") or headers.get("Content-Type") or "")
    content_type = content_type.split(";", 1)[0].strip() or "no content type"
    size = len(body or b"")
    if not size:
        what = "an empty body"
    elif "html" in content_type:
        what = f"an HTML page ({size} bytes; a proxy's or a load balancer's?)"
    else:
        what = f"{size} bytes of {content_type} that are not the JSON expected"
    return f"HTTP {status} with {what}"
