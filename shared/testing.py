"""Test support: drive an app in-process with its lifespan running.

``httpx.ASGITransport`` does not run the lifespan, so :func:`lifespan_client` enters it
(startup hooks, background tasks) and yields a client bound to the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

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
