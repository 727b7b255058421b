"""Fixtures of the media tests: the app in-process on a temporary DATA_DIR, and tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from media.app import create_app
from media.settings import MediaSettings
from shared.auth import issue_token
from shared.testing import lifespan_client
from tests.media.media_kit import SERVICE_KEY


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., MediaSettings]:
    def build(**overrides: Any) -> MediaSettings:
        values: dict[str, Any] = {
            "ENV": "test",
            "DATA_DIR": str(tmp_path / "data"),
            "MEDIA_ROOT": str(tmp_path / "data" / "media"),
            "SERVICE_KEY": f"{SERVICE_KEY},second-key",
            "MEDIA_CLEANUP_INTERVAL_SECONDS": 0,
        }
        values.update(overrides)
        return MediaSettings(**values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., MediaSettings]) -> MediaSettings:
    return make_settings()


@pytest.fixture
def media_client(
    make_settings: Callable[..., MediaSettings],
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with media_client(MEDIA_MAX_BYTES=...) as client`` for tests needing other settings."""

    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(**overrides))
        async with lifespan_client(app) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

    return open_client


@pytest.fixture
async def client(settings: MediaSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with lifespan_client(app) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def media_root(settings: MediaSettings) -> Path:
    return settings.media_root


@pytest.fixture
def token(settings: MediaSettings) -> Callable[..., str]:
    def make(role: str = "customer", sub: str | None = None, **kw: Any) -> str:
        value, _ = issue_token(
            settings, subject=sub or uuid.uuid4().hex[:24], role=role, email=f"{role}@example.com", **kw
        )
        return value

    return make
