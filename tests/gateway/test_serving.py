"""The transport under uvicorn's protocol (gateway.serving): an answer's head and body leave in
one write, nothing waits past the event-loop iteration, the order of bytes never changes.
(Every other gateway test runs on this protocol too: it is the fixture's default.)"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn

from gateway.serving import HeldWriteTransport, PairedWritesProtocol, http_protocol
from tests.gateway.conftest import free_port


class Recording:
    """The real transport's side: what it was asked to write, call by call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[bytes, ...]]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", (bytes(data),)))

    def writelines(self, chunks: Any) -> None:
        self.calls.append(("writelines", tuple(bytes(c) for c in chunks)))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.calls.append(("close", ()))
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


async def test_head_and_body_go_out_in_one_call() -> None:
    real = Recording()
    transport = HeldWriteTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert real.calls == []  # held until the body comes
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert real.calls == [("writelines", (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", b"{}"))]
    await asyncio.sleep(0)
    assert len(real.calls) == 1  # nothing left to flush


async def test_a_lone_write_leaves_by_the_end_of_the_iteration() -> None:
    real = Recording()
    transport = HeldWriteTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"head")
    await asyncio.sleep(0)
    assert real.calls == [("write", (b"head",))]
    transport.write(b"a")
    transport.write(b"b")
    transport.write(b"c")  # streamed: pairs as they come, the odd one at the end of the iteration
    await asyncio.sleep(0)
    assert real.calls[1:] == [("writelines", (b"a", b"b")), ("write", (b"c",))]
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the real transport's


async def test_close_sends_what_is_held_first_and_a_closed_transport_gets_nothing() -> None:
    real = Recording()
    transport = HeldWriteTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert real.calls == [("write", (b"last words",)), ("close", ())]
    transport.write(b"too late")
    await asyncio.sleep(0)
    assert real.calls[-1] == ("close", ())


async def test_a_buffer_its_owner_may_change_is_sent_at_once() -> None:
    real = Recording()
    transport = HeldWriteTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(bytearray(b"mutable"))
    assert real.calls == [("write", (b"mutable",))]


async def test_uvicorn_runs_the_paired_protocol_over_a_real_socket() -> None:
    """A plain ASGI app served with the protocol: answers arrive whole, keep-alive still works."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    assert http_protocol() is PairedWritesProtocol
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=http_protocol(), lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in ("/first", "/second"):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert await asyncio.wait_for(reader.readexactly(len(path)), 5) == path.encode()
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
