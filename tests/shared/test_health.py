"""``/health`` of ``create_service_app``: answered from the kept verdict while the service is
busy, live when idle, unhealthy when the check fails, raises or hangs (shared/health.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import APIRouter, FastAPI

from shared.app import create_service_app
from shared.settings import ServiceSettings
from shared.testing import lifespan_client


class Store:
    """A health check whose answer the test sets; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.up = True
        self.hang = False

    async def check(self) -> dict[str, object]:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        if not self.up:
            raise OSError("store is gone")
        return {"database": "connected"}


def build(store: Store, **settings: float) -> tuple[FastAPI, asyncio.Event]:
    """An app whose ``GET /api/v1/busy`` stays in flight until the returned event is set."""
    release = asyncio.Event()
    router = APIRouter()

    @router.get("/api/v1/busy")
    async def busy() -> dict[str, bool]:
        await release.wait()
        return {"done": True}

    app = create_service_app(
        ServiceSettings(_env_file=None, **settings), service="demo", routers=[router], health_check=store.check
    )
    return app, release


async def until(condition, *, rounds: int = 500) -> None:  # type: ignore[no-untyped-def]
    for _ in range(rounds):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@asynccontextmanager
async def in_flight(client: httpx.AsyncClient, app: FastAPI, release: asyncio.Event) -> AsyncIterator[None]:
    """One request held in flight for the duration of the block."""
    task = asyncio.create_task(client.get("/api/v1/busy"))

    async def started() -> bool:
        return app.state.health.in_flight >= 1

    await until(started)
    try:
        yield
    finally:
        release.set()
        assert (await task).status_code == 200


async def test_busy_service_answers_from_the_kept_verdict_without_checking():
    store = Store()
    app, release = build(store, HEALTH_REFRESH_SECONDS=60)
    async with lifespan_client(app) as client:

        async def refreshed_once() -> bool:
            return store.calls == 1

        await until(refreshed_once)  # the background refresh ran at start-up
        async with in_flight(client, app, release):
            for _ in range(3):
                response = await client.get("/health")
                assert response.status_code == 200
                assert response.json()["status"] == "healthy" and response.json()["database"] == "connected"
            assert store.calls == 1
        # idle again: the probe checks live and sees a change at once
        store.up = False
        response = await client.get("/health")
        assert response.status_code == 503 and response.json()["status"] == "unhealthy"
        assert store.calls == 2


async def test_busy_service_turns_unhealthy_once_the_refresh_sees_the_store_gone():
    store = Store()
    app, release = build(store, HEALTH_REFRESH_SECONDS=0.01)
    async with lifespan_client(app) as client:
        async with in_flight(client, app, release):
            assert (await client.get("/health")).status_code == 200
            store.up = False

            async def unhealthy() -> bool:
                response = await client.get("/health")
                return response.status_code == 503 and response.json()["status"] == "unhealthy"

            await until(unhealthy)


async def test_hanging_check_answers_unhealthy_after_the_timeout():
    store = Store()
    store.hang = True
    app, release = build(store, HEALTH_REFRESH_SECONDS=0, HEALTH_CHECK_TIMEOUT_SECONDS=0.05)
    async with lifespan_client(app) as client:
        response = await client.get("/health")
        assert response.status_code == 503 and response.json()["status"] == "unhealthy"
        # busy, and no background refresh keeps a verdict: still a live check, bounded
        async with in_flight(client, app, release):
            assert (await client.get("/health")).status_code == 503


async def test_refresh_stops_with_the_app():
    store = Store()
    app, _ = build(store, HEALTH_REFRESH_SECONDS=0.01)
    async with lifespan_client(app):

        async def refreshed_twice() -> bool:
            return store.calls >= 2

        await until(refreshed_twice)
    calls = store.calls
    await asyncio.sleep(0.05)
    assert store.calls == calls
