"""Request bodies that may arrive gzip-compressed (the OTLP and LiteLLM receivers).

The body's deadline and its size on the wire are kept by :mod:`tokenledger.web.body_limits`;
here the decompressed size is held to the same limit, so a decompression bomb is a 413,
not memory.
"""

from __future__ import annotations

import zlib

from starlette.requests import Request

from tokenledger.web.errors import ApiError


async def read_encoded_body(request: Request, *, limit: int) -> bytes:
    """The body, decompressed when sent with ``Content-Encoding: gzip``."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"identity", "gzip"}:
        raise ApiError(
            415,
            "unsupported_encoding",
            f"content-encoding {encoding[:40]!r}: only gzip is accepted",
        )
    body = await request.body()
    return gunzip(body, limit=limit) if encoding == "gzip" else body


def gunzip(data: bytes, *, limit: int) -> bytes:
    """The gzip ``data`` decompressed (all members), refusing more than ``limit`` bytes."""
    out: list[bytes] = []
    size = 0
    while data:
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = member.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise ApiError(400, "invalid_gzip", f"body is not valid gzip ({exc})") from exc
        size += len(chunk)
        if size > limit:
            raise ApiError(
                413, "payload_too_large", f"body is larger than {limit} bytes once decompressed"
            )
        if not member.eof:
            raise ApiError(400, "invalid_gzip", "gzip body ends before its end")
        out.append(chunk)
        data = member.unused_data
    return b"".join(out)
