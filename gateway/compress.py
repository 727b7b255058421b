"""gzip for JSON and text answers (contract §7.6), incremental: each chunk is compressed and
sync-flushed as it passes, so a streamed answer is never held back or buffered whole."""

from __future__ import annotations

import zlib

_LEVEL = 5
_cache: dict[bytes, bool] = {}


def accepts_gzip(accept_encoding: bytes) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``q=0`` refuses; ``*`` counts)."""
    known = _cache.get(accept_encoding)
    if known is not None:
        return known
    gzip_q: float | None = None
    star_q: float | None = None
    for item in accept_encoding.lower().split(b","):
        coding, _, params = item.strip().partition(b";")
        q = 1.0
        params = params.strip()
        if params.startswith(b"q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if coding.strip() in (b"gzip", b"x-gzip"):
            gzip_q = q
        elif coding.strip() == b"*":
            star_q = q
    allowed = (gzip_q if gzip_q is not None else (star_q or 0.0)) > 0
    if len(_cache) < 256:
        _cache[accept_encoding] = allowed
    return allowed


def compressible(content_type: bytes) -> bool:
    """JSON (``application/json``, ``*/*+json``), ``text/*``, JavaScript and XML."""
    ctype = content_type.split(b";", 1)[0].strip().lower()
    return (
        ctype == b"application/json"
        or ctype.endswith(b"+json")
        or ctype.startswith(b"text/")
        or ctype in (b"application/javascript", b"application/xml")
    )


class Gzip:
    """One answer's compressor."""

    __slots__ = ("_z",)

    def __init__(self) -> None:
        self._z = zlib.compressobj(_LEVEL, zlib.DEFLATED, 31)

    def chunk(self, data: bytes, last: bool) -> bytes:
        z = self._z
        if last:
            return z.compress(data) + z.flush(zlib.Z_FINISH)
        return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)


def should_compress(headers: list[tuple[bytes, bytes]], min_bytes: int) -> bool:
    """Decide from an answer's (lower-case) headers: no ``Content-Encoding``, a compressible
    type, and a ``Content-Length`` of at least ``min_bytes`` or none (streamed)."""
    ctype = None
    length = None
    for name, value in headers:
        if name == b"content-type":
            ctype = value
        elif name == b"content-length":
            length = value
        elif name == b"content-encoding":
            return False
    if ctype is None or not compressible(ctype):
        return False
    if length is not None:
        try:
            return int(length) >= min_bytes
        except ValueError:
            return False
    return True


def gzip_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The answer's headers for its gzip form: no ``Content-Length``, ``Content-Encoding: gzip``,
    ``Vary: Accept-Encoding``."""
    out = [(n, v) for n, v in headers if n != b"content-length"]
    out.append((b"content-encoding", b"gzip"))
    out.append((b"vary", b"Accept-Encoding"))
    return out
