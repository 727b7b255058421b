from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from customer.app import create_app
from customer.settings import CustomerSettings
from shared.testing import Receiver, lifespan_client

KEY = "test-service-key"
HEADERS_KEY = {"X-Service-Key": KEY}


def settings_for(tmp_path, notify_url: str = "http://127.0.0.1:9", **overrides: Any) -> CustomerSettings:
    values: dict[str, Any] = {
        "DATA_DIR": str(tmp_path / "data"),
        "BCRYPT_ROUNDS": 4,
        "RATE_LIMIT_MAX": 0,
        "SERVICE_KEY": KEY,
        "NOTIFICATIONS_SERVICE_URL": notify_url,
        "MEDIA_SERVICE_URL": notify_url,
        "OUTBOX_POLL_SECONDS": 3600,
        "LOG_LEVEL": "warning",
    }
    values.update(overrides)
    return CustomerSettings(_env_file=None, **values)


@pytest.fixture
async def notify() -> AsyncIterator[Receiver]:
    async with Receiver(status=202) as receiver:
        yield receiver


@pytest.fixture
def app_factory(tmp_path, notify: Receiver) -> Callable[..., Any]:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings_for(tmp_path, notify.url, **overrides))
        async with lifespan_client(app) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

    return factory


@pytest.fixture
async def client(app_factory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_factory() as c:
        yield c


def person(n: int = 0, **extra: Any) -> dict[str, Any]:
    body = {"firstName": "Jane", "lastName": "Smith", "email": f"jane{n}@example.com", "password": "secret123"}
    body.update(extra)
    return body


async def register(client: httpx.AsyncClient, n: int = 0, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/customers/register", json=person(n, **extra))
    assert response.status_code == 201, response.text
    return response.json()["data"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def settle(client: httpx.AsyncClient) -> None:
    """Wait for the immediate outbox attempts to finish."""
    import asyncio

    outbox = client.app.state.outbox  # type: ignore[attr-defined]
    for _ in range(100):
        if not outbox._background:
            return
        await asyncio.sleep(0.01)
