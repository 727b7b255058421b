"""Receiving an upload: the multipart body parsed from the request stream (contract R3).

python-multipart's push parser is fed each chunk as it arrives; its callbacks only record
events, which are then handled here with ``await`` (file bytes go to a :class:`TempUpload`
that writes in worker threads). Nothing is buffered beyond one chunk and the write buffer,
and reading stops as soon as the file part passes ``MEDIA_MAX_BYTES``, the body passes
``MEDIA_MAX_BYTES`` + 1 MiB, a second file part starts or the first bytes can never be an
accepted type. The temp file is removed on every failure, including a client disconnect
and a cancelled request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from media import sniff
from media.storage import MediaStorage, TempUpload
from shared.responses import BadRequest, PayloadTooLarge, UnsupportedMediaType

MULTIPART_OVERHEAD = 1024 * 1024
_MAX_FIELD_BYTES = 1024  # the `type` field is a short word; anything longer is cut


class InvalidMultipart(BadRequest):
    message = "Invalid multipart body"


def unsupported_type() -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"File type not allowed. Supported: {sniff.ALLOWED_LABEL}",
        errors=[{"field": "file", "message": "Unsupported file content"}],
    )


def too_large(label: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"File size exceeds maximum limit ({label}MB)")


@dataclass
class ReceivedUpload:
    """A complete file part on disk (in ``.tmp``) and the form fields that came with it."""

    temp: TempUpload
    sha256: str
    head: bytes
    filename: str
    type_field: str | None

    @property
    def path(self) -> Path:
        return self.temp.path

    @property
    def size(self) -> int:
        return self.temp.size


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str | None = None
    filename: bytes | None = None


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a ``Content-Type`` header, or 400 ``Invalid multipart body``."""
    ctype, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise InvalidMultipart()
    return boundary


class UploadReceiver:
    """Consumes one multipart body. ``body_complete`` tells whether the stream was read to its end."""

    def __init__(self, *, storage: MediaStorage, boundary: bytes, max_bytes: int, size_label: str) -> None:
        self.storage = storage
        self.max_bytes = max_bytes
        self.max_body = max_bytes + MULTIPART_OVERHEAD
        self.size_label = size_label
        self.body_complete = False
        self._events: list[tuple[str, bytes]] = []
        self._parser = MultipartParser(boundary, self._callbacks())
        self._part: _Part | None = None
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._temp: TempUpload | None = None
        self._head = bytearray()
        self._head_checked = False
        self._filename: bytes | None = None
        self._file_done = False
        self._in_file = False
        self._in_type = False
        self._type_value = bytearray()
        self._type_seen = False
        self._ended = False

    def _callbacks(self) -> dict[str, Callable[..., None]]:
        events = self._events

        def data(name: str) -> Callable[[bytes, int, int], None]:
            return lambda buf, start, end: events.append((name, buf[start:end]))

        def mark(name: str) -> Callable[[], None]:
            return lambda: events.append((name, b""))

        return {
            "on_part_begin": mark("part_begin"),
            "on_header_field": data("header_field"),
            "on_header_value": data("header_value"),
            "on_header_end": mark("header_end"),
            "on_headers_finished": mark("headers_finished"),
            "on_part_data": data("part_data"),
            "on_part_end": mark("part_end"),
            "on_end": mark("end"),
        }

    async def receive(self, stream: AsyncIterator[bytes]) -> ReceivedUpload:
        """Read ``stream`` to the end of the multipart body; the caller owns the result's temp file."""
        try:
            seen = 0
            async for chunk in stream:
                seen += len(chunk)
                if seen > self.max_body:
                    raise too_large(self.size_label)
                try:
                    self._parser.write(chunk)
                except FormParserError:
                    raise InvalidMultipart() from None
                await self._handle_events()
            self.body_complete = True
            if not self._ended:
                raise InvalidMultipart()
            return await self._result()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        if self._temp is not None:
            self._temp.discard()
            self._temp = None

    async def _handle_events(self) -> None:
        events, self._events[:] = list(self._events), []
        if self._ended:  # the epilogue after the closing boundary is read and ignored
            return
        for kind, data in events:
            if kind == "part_data":
                await self._part_data(data)
            elif kind == "header_field":
                self._header_field += data
            elif kind == "header_value":
                self._header_value += data
            elif kind == "header_end":
                assert self._part is not None
                self._part.headers[bytes(self._header_field).lower()] = bytes(self._header_value)
                self._header_field.clear()
                self._header_value.clear()
            elif kind == "part_begin":
                self._part = _Part()
            elif kind == "headers_finished":
                await self._start_part()
            elif kind == "part_end":
                await self._end_part()
            elif kind == "end":
                self._ended = True
                return

    async def _start_part(self) -> None:
        part = self._part
        assert part is not None
        disposition, params = parse_options_header(part.headers.get(b"content-disposition", b"").decode("latin-1"))
        if disposition != b"form-data":
            raise InvalidMultipart()
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self._in_file = self._in_type = False
        if name == "file" and b"filename" in params:
            if self._temp is not None:
                raise BadRequest("Only one file per request")
            self._filename = params[b"filename"]
            self._temp = await self.storage.open_upload()
            self._in_file = True
        elif name == "type" and b"filename" not in params and not self._type_seen:
            self._in_type = True
            self._type_seen = True

    async def _part_data(self, data: bytes) -> None:
        if self._in_file:
            assert self._temp is not None
            if self._temp.size + len(data) > self.max_bytes:
                raise too_large(self.size_label)
            if not self._head_checked:
                self._head += data[: sniff.PREFIX_BYTES - len(self._head)]
                if len(self._head) >= sniff.PREFIX_BYTES:
                    self._check_head(complete=False)
            await self._temp.write(data)
        elif self._in_type and len(self._type_value) < _MAX_FIELD_BYTES:
            self._type_value += data[: _MAX_FIELD_BYTES - len(self._type_value)]

    async def _end_part(self) -> None:
        if self._in_file:
            self._file_done = True
            if not self._head_checked and self._head:
                self._check_head(complete=True)
        self._in_file = self._in_type = False

    def _check_head(self, *, complete: bool) -> None:
        self._head_checked = True
        if not sniff.prefix_may_be_allowed(bytes(self._head), complete=complete):
            raise unsupported_type()

    async def _result(self) -> ReceivedUpload:
        if self._temp is None or not self._file_done:
            raise BadRequest("No file uploaded")
        if self._temp.size == 0:
            raise BadRequest("Uploaded file is empty")
        sha256 = await self._temp.finish()
        type_field = bytes(self._type_value).decode("utf-8", "replace") if self._type_seen else None
        return ReceivedUpload(
            temp=self._temp,
            sha256=sha256,
            head=bytes(self._head),
            filename=(self._filename or b"").decode("utf-8", "replace"),
            type_field=type_field,
        )
