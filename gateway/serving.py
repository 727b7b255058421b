"""How uvicorn serves the gateway: its httptools protocol, with an answer's head and body sent
in one system call, and the head written from header lines checked once.

uvicorn writes the status line and headers of an answer, then its body, as two writes on the
socket, and uvloop sends each at once: two ``send`` calls, two packets and two wake-ups of the
client for every small answer, a quarter of the gateway's system time per request (issue 16).
Here the connection's transport holds a write back until the next write (both then go out in
one ``writelines``, a single ``writev``) or until the end of the event-loop iteration,
whichever comes first. Nothing is held longer than that iteration, and at most one write is
held at a time, so a streamed answer still streams.

uvicorn also checks every header of every answer against two regular expressions, lowers its
name and tests it for framing meaning: about 0.4 µs a header, and a gateway answer carries
about twenty, nearly all the same from one answer to the next (security headers, CORS,
``X-Gateway``, the service's ``Content-Type``). :class:`HeadCacheCycle` writes the head as
uvicorn does, with the same checks, but keeps the checked ``name: value`` line of each header
that has no framing meaning, so a header seen before costs one dictionary lookup. And its
keep-alive timer is armed once per idle spell rather than made and dropped per request
(:class:`PairedWritesProtocol`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.memo import Memo

try:
    from uvicorn.protocols.http.httptools_impl import (
        HEADER_RE,
        HEADER_VALUE_RE,
        STATUS_LINE,
        HttpToolsProtocol,
        RequestResponseCycle,
    )
except ImportError:  # httptools is not installed: uvicorn picks h11, which is left as it is
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


class HeldWriteTransport:
    """A connection's transport whose writes are paired: see the module's docstring.

    Anything but ``write``, ``close`` and ``abort`` goes to the real transport as it is."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: Any) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif type(data) is bytes:
            self._held = data
            self._loop.call_soon(self._flush)
        else:  # a buffer its owner may change once it is handed over: sent now
            self._transport.write(data)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (len(held) if held is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


# Headers whose line depends on more than the pair: framing (uvicorn reads them), and the
# request id, different on nearly every answer (not worth keeping).
_NOT_KEPT = frozenset({b"content-length", b"transfer-encoding", b"connection", b"x-request-id"})
KEPT_LINES_MAX = 1024
"""Header lines kept at most; the cache starts over when full (a varying value such as
``RateLimit-Remaining`` fills it; the constant ones are back after one answer)."""


class HeaderLines:
    """Checked ``name: value\r\n`` lines of answer headers, by (name, value) pair, and checked
    names (lowered), by name as sent."""

    __slots__ = ("lines", "names")

    def __init__(self) -> None:
        self.lines: Memo[tuple[bytes, bytes], bytes] = Memo(KEPT_LINES_MAX)
        self.names: Memo[bytes, bytes] = Memo(KEPT_LINES_MAX)

    def checked(self, pair: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
        """``pair`` with its name lowered, after uvicorn's checks (``RuntimeError`` as uvicorn
        raises it); its line is kept when the pair has no framing meaning."""
        raw_name, value = pair
        name = self.names.get(raw_name)
        if name is None:
            if HEADER_RE.search(raw_name):
                raise RuntimeError("Invalid HTTP header name.")
            name = self.names.keep(raw_name, raw_name.lower())
        if not value.isdigit() and HEADER_VALUE_RE.search(value):  # digits: lengths, counts
            raise RuntimeError("Invalid HTTP header value.")
        if name not in _NOT_KEPT:
            self.lines.keep((raw_name, value), b"".join((name, b": ", value, b"\r\n")))
        return name, value


HEADER_LINES = HeaderLines()


if HttpToolsProtocol is not None:

    class HeadCacheCycle(RequestResponseCycle):
        """uvicorn's request-response cycle whose answer head reuses checked header lines
        (:class:`HeaderLines`); everything else is uvicorn's own."""

        async def send(self, message: Any) -> None:
            if self.response_started or message["type"] != "http.response.start" or self.access_log:
                await super().send(message)
                return
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()
            if self.disconnected:
                return
            self.response_started = True
            self.waiting_for_100_continue = False
            status_code = message["status"]
            self.transport.write(self._head(status_code, message.get("headers", ())))

        def _head(self, status_code: int, headers: Any) -> bytes:
            """The status line and headers, as uvicorn's ``send`` writes them."""
            content = [STATUS_LINE[status_code]]
            has_connection_close = False
            known = HEADER_LINES.lines
            for pairs in (self.default_headers, headers):
                for pair in pairs:
                    try:
                        line = known.get(pair)
                    except TypeError:  # a pair given as a list: checked every time
                        line = None
                    if line is None:
                        name, value = HEADER_LINES.checked(pair)
                        has_connection_close = self._read_framing(name, value) or has_connection_close
                        line = b"".join((name, b": ", value, b"\r\n"))
                    content.append(line)
            if not self.keep_alive and not has_connection_close:
                content.append(b"connection: close\r\n")
            if self.chunked_encoding is None and self.scope["method"] != "HEAD" and status_code not in (204, 304):
                self.chunked_encoding = True  # neither Content-Length nor Transfer-Encoding
                content.append(b"transfer-encoding: chunked\r\n")
            content.append(b"\r\n")
            return b"".join(content)

        def _read_framing(self, name: bytes, value: bytes) -> bool:
            """What uvicorn makes of a header about framing; True for ``Connection: close``."""
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                if b"close" in [token.lower().strip() for token in value.split(b",")]:
                    self.keep_alive = False
                    return True
            return False

    class PairedWritesProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol on a :class:`HeldWriteTransport`, its cycles
        :class:`HeadCacheCycle`, its keep-alive timer armed once per idle spell.

        uvicorn arms a keep-alive timer after every answer and cancels it when the next
        request arrives: a timer made and dropped per request. Here the connection notes when
        it became idle; one timer, when it fires, closes a connection idle for the keep-alive
        time or waits for the rest of it. The same connections close at the same moments."""

        _idle_since: float | None = None
        _keep_alive_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(HeldWriteTransport(transport, self.loop))  # type: ignore[arg-type]

        def connection_lost(self, exc: Exception | None) -> None:
            if self._keep_alive_timer is not None:
                self._keep_alive_timer.cancel()
                self._keep_alive_timer = None
            super().connection_lost(exc)

        def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
            cycle.__class__ = HeadCacheCycle  # same state, its own send (set before the task runs)
            super()._start_asgi_task(cycle, app)

        def _unset_keepalive_if_required(self) -> None:
            self._idle_since = None  # busy again (uvicorn calls this as data arrives)
            super()._unset_keepalive_if_required()

        def on_response_complete(self) -> None:
            """uvicorn's, with the idle time noted instead of a new timer."""
            self.server_state.total_requests += 1
            if self.transport.is_closing():
                return
            self._unset_keepalive_if_required()
            self.flow.resume_reading()
            if self.pipeline:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
                return
            self._idle_since = self.loop.time()
            if self._keep_alive_timer is None:
                self._keep_alive_timer = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

        def _keep_alive_due(self) -> None:
            self._keep_alive_timer = None
            idle_since = self._idle_since
            if idle_since is None:
                return  # a request is being answered: its answer arms the timer again
            left = idle_since + self.timeout_keep_alive - self.loop.time()
            if left > 0:
                self._keep_alive_timer = self.loop.call_later(left, self._keep_alive_due)
            else:
                self.timeout_keep_alive_handler()


def http_protocol() -> Any:
    """What to give uvicorn as ``http``: :class:`PairedWritesProtocol`, or ``"auto"`` without httptools."""
    return PairedWritesProtocol if HttpToolsProtocol is not None else "auto"
