"""Fixtures of the gateway tests: the gateway as a real uvicorn server on a free loopback port,
in front of small aiohttp upstream apps that are real servers too (never another service's
package): one that records what it receives, and ones that refuse, hang, drop or trickle."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from aiohttp import web

from gateway.app import create_app
from gateway.serving import http_protocol
from gateway.settings import SERVICES, GatewaySettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Seen:
    """One request as an upstream received it."""

    method: str
    raw_path: str
    headers: dict[str, str]
    header_names: list[str]
    body: bytes
    chunks: int
    sha256: str = ""


@dataclass
class Upstream:
    """A real aiohttp server on a free port. By default it answers ``200 {"ok": true, ...}`` and
    records every request; ``handler`` replaces the answer (the request is still recorded)."""

    handler: Handler | None = None
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> Upstream:
        async def handle(request: web.Request) -> web.StreamResponse:
            if self.handler is not None and getattr(self.handler, "raw", False):
                return await self.handler(request)
            digest = hashlib.sha256()
            chunks = 0
            body = bytearray()
            async for chunk in request.content.iter_any():
                chunks += 1
                digest.update(chunk)
                if len(body) < 1_000_000:
                    body += chunk
            self.requests.append(
                Seen(
                    request.method,
                    request.raw_path,
                    {k.lower(): v for k, v in request.headers.items()},
                    [k.lower() for k in request.headers.keys()],
                    bytes(body),
                    chunks,
                    digest.hexdigest(),
                )
            )
            if self.handler is not None:
                return await self.handler(request)
            return web.json_response(
                {"ok": True, "method": request.method, "path": request.raw_path, "service": "test-upstream"}
            )

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        self._runner._server = _CountingFactory(self._runner._server, self)  # type: ignore[assignment]
        site = web.TCPSite(self._runner, "127.0.0.1", self.port or 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def last(self) -> Seen:
        return self.requests[-1]


class _CountingFactory:
    """The aiohttp server (a protocol factory) counting the TCP connections it accepts."""

    def __init__(self, server: Any, upstream: Upstream) -> None:
        self._server = server
        self._upstream = upstream

    def __call__(self) -> Any:
        self._upstream.connections += 1
        return self._server()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class RawServer:
    """A bare TCP server whose ``on_connect(reader, writer)`` misbehaves as a test needs."""

    def __init__(self, on_connect: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.on_connect = on_connect
        self.connections = 0
        self.url = ""
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> RawServer:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.on_connect(reader, writer)
            finally:
                writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


@dataclass
class Gateway:
    url: str
    app: Any
    server: uvicorn.Server
    task: asyncio.Task[None]
    settings: GatewaySettings

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kwargs)


def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
async def start_gateway() -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """``gw = await start_gateway(CUSTOMER_SERVICE_URL=..., RATE_LIMIT_MAX=3)``: a real gateway
    server; services not given point at a closed port. ``http="h11"`` picks uvicorn's other
    HTTP parser (by default the protocol production runs: httptools, head and body paired)."""
    started: list[Gateway] = []

    async def start(*, http: Any = None, **overrides: Any) -> Gateway:
        values: dict[str, Any] = {f"{name.upper()}_SERVICE_URL": dead_url() for name in SERVICES}
        values.update({"ENV": "test", "RATE_LIMIT_MAX": 100_000, "LOG_LEVEL": "warning"})
        values.update(overrides)
        settings = GatewaySettings(**values)
        app = create_app(settings)
        port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http=http or http_protocol(),
            lifespan="on",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        gateway = Gateway(f"http://127.0.0.1:{port}", app, server, task, settings)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.server.should_exit = True
    for gateway in started:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gateway.task, 10)


@pytest.fixture
async def upstream() -> AsyncIterator[Callable[..., Awaitable[Upstream]]]:
    """``up = await upstream()`` (or ``upstream(handler)``): a recording upstream server."""
    running: list[Upstream] = []

    async def start(handler: Handler | None = None, port: int = 0) -> Upstream:
        up = await Upstream(handler=handler, port=port).start()
        running.append(up)
        return up

    yield start
    for up in running:
        await up.stop()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    running: list[RawServer] = []

    async def start(on_connect: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> RawServer:
        server = await RawServer(on_connect).start()
        running.append(server)
        return server

    yield start
    for server in running:
        await server.stop()


async def raw_request(url: str, request: bytes, *, read_timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` byte-for-byte (no client normalisation) and read one answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), read_timeout)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), read_timeout)
        return status, headers, body
    finally:
        writer.close()
