"""How uvicorn serves the gateway: its httptools protocol, with an answer's head and body sent
in one system call.

uvicorn writes the status line and headers of an answer, then its body, as two writes on the
socket, and uvloop sends each at once: two ``send`` calls, two packets and two wake-ups of the
client for every small answer, a quarter of the gateway's system time per request (issue 16).
Here the connection's transport holds a write back until the next write (both then go out in
one ``writelines``, a single ``writev``) or until the end of the event-loop iteration,
whichever comes first. Nothing is held longer than that iteration, and at most one write is
held at a time, so a streamed answer still streams.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
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


if HttpToolsProtocol is not None:

    class PairedWritesProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol on a :class:`HeldWriteTransport`."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(HeldWriteTransport(transport, self.loop))  # type: ignore[arg-type]


def http_protocol() -> Any:
    """What to give uvicorn as ``http``: :class:`PairedWritesProtocol`, or ``"auto"`` without httptools."""
    return PairedWritesProtocol if HttpToolsProtocol is not None else "auto"
