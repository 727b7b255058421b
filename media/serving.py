"""Serving stored files (contract R6/R7): streamed, cacheable, range-able, never sniffable.

:class:`FileStream` is an ASGI response that sends an already opened file in chunks read in
a worker thread, so a large file never sits in memory and a slow disk never blocks the
loop. :func:`file_response` decides 200 / 206 / 304 / 416 from the request headers.
``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY`` come with every answer
from the shared app middleware.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import BinaryIO
from urllib.parse import quote

import anyio.to_thread
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from media.storage import Served
from shared.responses import error_response

__all__ = ["FileStream", "Served", "content_disposition", "file_response"]

CHUNK_BYTES = 256 * 1024
CACHE_CONTROL = "public, max-age=86400"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def content_disposition(name: str) -> str:
    """``inline; filename="<ascii>"; filename*=UTF-8''<percent-encoded>`` (R7)."""
    ascii_name = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in name)
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def _etag_matches(header: str, etag: str) -> bool:
    """``If-None-Match``: a list of tags or ``*``, compared weakly (``W/`` ignored)."""
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def _not_modified(headers: Mapping[str, str], etag: str, last_modified: datetime) -> bool:
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag)
    since = headers.get("if-modified-since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        if moment.tzinfo is None:
            return False
        return moment >= last_modified
    return False


def _byte_range(headers: Mapping[str, str], size: int, etag: str) -> tuple[int, int] | None | str:
    """(first, last) for one satisfiable range, ``"unsatisfiable"``, or None to send it all."""
    header = headers.get("range")
    if header is None:
        return None
    if_range = headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # several ranges, another unit or bad syntax: ignored
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0:
            return "unsatisfiable"
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


def file_response(served: Served, request_headers: Mapping[str, str], *, head: bool) -> Response:
    """The answer for ``served``; the file is closed by the response (or here when unused)."""
    last_modified = format_datetime(served.last_modified, usegmt=True)
    validators = {
        "ETag": served.etag,
        "Last-Modified": last_modified,
        "Cache-Control": CACHE_CONTROL,
        # Product images are embedded by a frontend on another origin.
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if _not_modified(request_headers, served.etag, served.last_modified):
        served.handle.close()
        return Response(status_code=304, headers=validators)
    headers = {
        **validators,
        "Content-Type": served.content_type,
        "Content-Disposition": content_disposition(served.download_name),
    }
    if served.ranges:
        headers["Accept-Ranges"] = "bytes"
        wanted = _byte_range(request_headers, served.size, served.etag)
    else:
        wanted = None
    if wanted == "unsatisfiable":
        served.handle.close()
        return error_response(
            416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{served.size}"}
        )
    if isinstance(wanted, tuple):
        first, last = wanted
        headers["Content-Range"] = f"bytes {first}-{last}/{served.size}"
        return FileStream(served.handle, first, last - first + 1, 206, headers, head=head)
    return FileStream(served.handle, 0, served.size, 200, headers, head=head)


class FileStream(Response):
    """Streams ``length`` bytes of an open file from ``offset``; closes it when done."""

    def __init__(
        self, handle: BinaryIO, offset: int, length: int, status: int, headers: dict[str, str], *, head: bool
    ) -> None:
        super().__init__(status_code=status, headers={**headers, "Content-Length": str(length)})
        self.handle, self.offset, self.length, self.head = handle, offset, length, head
        self.background: BackgroundTask | None = None

    def _read(self, position: int, count: int) -> bytes:
        return os.pread(self.handle.fileno(), count, position)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if self.head:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            position, remaining = self.offset, self.length
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(self._read, position, min(CHUNK_BYTES, remaining))
                if not chunk:
                    raise OSError("file shrank while being served")
                position += len(chunk)
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        finally:
            self.handle.close()
