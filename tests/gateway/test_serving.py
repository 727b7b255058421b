"""The transport under uvicorn's protocol (gateway.serving): an answer's head and body leave in
one write, nothing waits past the event-loop iteration, the order of bytes never changes.
(Every other gateway test runs on this protocol too: it is the fixture's default.)"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.serving import HeldWriteTransport, PairedWritesProtocol, http_protocol
from shared.testing import uvicorn_served


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
    async with uvicorn_served(app, http=http_protocol(), log_level="warning") as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in ("/first", "/second"):
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert await asyncio.wait_for(reader.readexactly(len(path)), 5) == path.encode()
        writer.close()


async def _raw_answers(protocol: Any, app: Any, requests: list[bytes]) -> list[bytes]:
    """The raw bytes uvicorn with ``protocol`` sends back for each request, on one connection."""
    options = {"http": protocol, "log_level": "critical", "server_header": False, "access_log": False}
    async with uvicorn_served(app, **options) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for request in requests:
            writer.write(request)
            try:
                answers.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5))
            except asyncio.IncompleteReadError as closed:  # closed without (the rest of) an answer
                answers.append(closed.partial)
                break
            if not request.startswith(b"HEAD "):
                length = int(answers[-1].lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                answers[-1] += await asyncio.wait_for(reader.readexactly(length), 5)
        writer.close()
        return answers


def _without_date(answer: bytes) -> bytes:
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.startswith(b"date: "))


async def test_answer_heads_are_byte_for_byte_uvicorns_with_checked_lines_kept() -> None:
    """The head cache changes no byte: mixed-case names, repeated pairs, a varying value, a
    close, a request id; and a pair uvicorn refuses is refused the same way every time."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from gateway.serving import HEADER_LINES

    async def app(scope: dict, receive: Any, send: Any) -> None:
        n = scope["path"].rsplit("/", 1)[-1].encode()
        if scope["path"].startswith("/bad"):
            headers = [(b"x-bad", b"a\nb")]  # uvicorn refuses it: the connection is closed
        else:
            headers = [
                (b"X-Frame-Options", b"DENY"),
                (b"x-request-id", b"rid-" + n),
                (b"ratelimit-remaining", n),
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(n)),
            ]
            if scope["path"].startswith("/close"):
                headers.append((b"Connection", b"close"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": n})

    requests = [f"GET /n/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in (1, 2, 1, 3)]
    requests.insert(2, b"HEAD /n/4 HTTP/1.1\r\nHost: x\r\n\r\n")  # a head and no body write
    ours = await _raw_answers(http_protocol(), app, requests)
    theirs = await _raw_answers(HttpToolsProtocol, app, requests)
    assert [_without_date(a) for a in ours] == [_without_date(a) for a in theirs]
    assert (b"X-Frame-Options", b"DENY") in HEADER_LINES.lines  # kept, as sent
    assert all(name != b"x-request-id" and name != b"content-length" for name, _ in HEADER_LINES.lines)

    close = [b"GET /close/7 HTTP/1.1\r\nHost: x\r\n\r\n"]
    assert [_without_date(a) for a in await _raw_answers(http_protocol(), app, close)] == [
        _without_date(a) for a in await _raw_answers(HttpToolsProtocol, app, close)
    ]
    bad = [b"GET /bad/1 HTTP/1.1\r\nHost: x\r\n\r\n"]
    for _ in range(2):
        assert await _raw_answers(http_protocol(), app, bad) == await _raw_answers(HttpToolsProtocol, app, bad) == [b""]
    assert not any(name == b"x-bad" for name, _ in HEADER_LINES.lines)


async def test_idle_connections_close_after_the_keep_alive_time_busy_ones_stay() -> None:
    """One timer per idle spell closes the same connections uvicorn's timer per answer would:
    idle for the keep-alive time → closed; a request every 0.4 s for 2.4 s → still open."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    options = {"http": http_protocol(), "log_level": "warning", "access_log": False, "timeout_keep_alive": 1}
    async with uvicorn_served(app, **options) as port:

        async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\nok"), 5)

        busy = await asyncio.open_connection("127.0.0.1", port)
        idle = await asyncio.open_connection("127.0.0.1", port)
        await ask(*idle)
        idle_closed = asyncio.create_task(idle[0].read())
        for n in range(6):
            await ask(*busy)
            await asyncio.sleep(0.4)
            if n == 0:
                assert not idle_closed.done()  # 0.4 s idle: kept
        assert idle_closed.done() and idle_closed.result() == b""  # closed by the server meanwhile
        await ask(*busy)  # still open
        assert await asyncio.wait_for(busy[0].read(), 5) == b""  # and closed once idle
        for _, writer in (busy, idle):
            writer.close()
