"""Test support: drive an app in-process with its lifespan running.

``httpx.ASGITransport`` does not run the lifespan, so :func:`lifespan_client` enters it
(startup hooks, background tasks) and yields a client bound to the app.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """Run ``app``'s lifespan (startup on enter, shutdown on exit)."""
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def lifespan_client(
    app: FastAPI, *, base_url: str = "http://testserver", headers: Mapping[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` talking to ``app`` in-process, with the lifespan running."""
    async with running(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers) as client:
            yield client


class Receiver:
    """A small real HTTP server on a free loopback port that records what it receives.

    Stands in for a service that does not exist yet (or that must misbehave): set
    ``status`` to choose the answer, ``delay`` to make it hang. ``requests`` holds
    ``(method, path, headers, json)`` tuples (header names lower-cased). Use as ``async with Receiver() as r:``.
    """

    def __init__(self, *, status: int = 202, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.requests: list[tuple[str, str, dict[str, str], object]] = []
        self.url = ""
        self._runner = None

    async def __aenter__(self) -> Receiver:
        import asyncio

        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            body = await request.json() if request.can_read_body else None
            if self.delay:
                await asyncio.sleep(self.delay)
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append((request.method, request.path, headers, body))
            status, answer = await self.respond(request.method, request.path, body)
            return web.json_response(answer, status=status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def respond(self, method: str, path: str, body: object) -> tuple[int, object]:
        """The (status, JSON) answer to one request; override to answer per request."""
        return self.status, {"success": 200 <= self.status < 300, "message": "recorded"}

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def bodies(self, path: str | None = None) -> list[object]:
        """The JSON bodies received (on ``path`` only, when given)."""
        return [body for _, p, _, body in self.requests if path is None or p == path]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def uvicorn_served(app: Any, *, port: int | None = None, **options: Any) -> AsyncIterator[int]:
    """``app`` behind a real uvicorn server on loopback (``port``, else a free one), with
    uvicorn's ``options`` (lifespan off unless given); yields the port, stops the server on
    exit. A failure to start is raised, not waited out."""
    import uvicorn

    port = port or free_port()
    options = {"lifespan": "off", "log_level": "warning", **options}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(1000):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextmanager
def running_redis(binary: str, folder: str | Path) -> Iterator[str]:
    """A fresh ``redis-server`` (``binary``) on a free loopback port, no persistence, working in
    ``folder``; yields its URL and stops it on exit."""
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
