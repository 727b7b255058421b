from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from sellers.app import create_app
from sellers.settings import SellersSettings
from shared.auth import issue_token
from shared.testing import Receiver, lifespan_client

KEY = "test-service-key"
HEADERS_KEY = {"X-Service-Key": KEY}
API = "/api/v1/sellers"

ADDRESS = {"street": "123 Main St", "city": "New York", "state": "NY", "country": "USA", "postalCode": "10001"}


def settings_for(tmp_path, **overrides: Any) -> SellersSettings:
    values: dict[str, Any] = {
        "DATA_DIR": str(tmp_path / "data"),
        "BCRYPT_ROUNDS": 4,
        "RATE_LIMIT_MAX": 0,
        "SERVICE_KEY": KEY,
        "NOTIFICATIONS_SERVICE_URL": "http://127.0.0.1:9",
        "MEDIA_SERVICE_URL": "http://127.0.0.1:9",
        "PRODUCTS_SERVICE_URL": "http://127.0.0.1:9",
        "OUTBOX_POLL_SECONDS": 3600,
        "LOG_LEVEL": "warning",
    }
    values.update(overrides)
    return SellersSettings(_env_file=None, **values)


@pytest.fixture
async def notify() -> AsyncIterator[Receiver]:
    """Stands in for the notifications service."""
    async with Receiver(status=202) as receiver:
        yield receiver


@pytest.fixture
async def products() -> AsyncIterator[Receiver]:
    """Stands in for the products service (``seller-status``)."""
    async with Receiver(status=200) as receiver:
        yield receiver


@pytest.fixture
async def media() -> AsyncIterator[Receiver]:
    """Stands in for the media service (``mark-used``)."""
    async with Receiver(status=200) as receiver:
        yield receiver


@pytest.fixture
def app_factory(tmp_path, notify: Receiver, products: Receiver, media: Receiver) -> Callable[..., Any]:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        urls = {
            "NOTIFICATIONS_SERVICE_URL": notify.url,
            "PRODUCTS_SERVICE_URL": products.url,
            "MEDIA_SERVICE_URL": media.url,
        }
        app = create_app(settings_for(tmp_path, **{**urls, **overrides}))
        async with lifespan_client(app) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

    return factory


@pytest.fixture
async def client(app_factory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_factory() as c:
        yield c


def seller_body(n: int = 0, **extra: Any) -> dict[str, Any]:
    """A flat signup body."""
    body: dict[str, Any] = {
        "firstName": "John",
        "lastName": "Doe",
        "email": f"john{n}@example.com",
        "password": "secret123",
        "confirmPassword": "secret123",
        "phone": "1234567890",
        "businessName": f"John's Electronics {n}",
        "businessType": "individual",
        "businessDescription": "Mobile devices",
        "address": dict(ADDRESS),
    }
    body.update(extra)
    return body


async def signup(client: httpx.AsyncClient, n: int = 0, **extra: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/signup", json=seller_body(n, **extra))
    assert response.status_code == 201, response.text
    return response.json()["data"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_token(client: httpx.AsyncClient) -> str:
    token, _ = issue_token(client.app.state.settings, subject="a" * 24, role="admin", email="admin@example.com")  # type: ignore[attr-defined]
    return token


async def login(client: httpx.AsyncClient, email: str, password: str = "secret123") -> httpx.Response:
    return await client.post(f"{API}/signin", json={"email": email, "password": password})


async def settle(client: httpx.AsyncClient) -> None:
    """Wait for the immediate outbox attempts to finish."""
    outbox = client.app.state.outbox  # type: ignore[attr-defined]
    for _ in range(200):
        if not outbox._background:
            return
        await asyncio.sleep(0.01)


async def drain_due(client: httpx.AsyncClient) -> None:
    """Make every pending outbox row due now (as if the backoff had passed) and drain once."""
    outbox = client.app.state.outbox  # type: ignore[attr-defined]
    await settle(client)
    await outbox.rows.update_many({"status": "pending"}, {"$set": {"nextAttemptAt": "2000-01-01T00:00:00.000Z"}})
    await outbox.drain_once()


async def repoint(client: httpx.AsyncClient, service: str, url: str) -> None:
    """Point ``service`` at ``url`` from now on (a service that was down has come up)."""
    app = client.app  # type: ignore[attr-defined]
    setattr(app.state.settings, f"{service.upper()}_SERVICE_URL", url)
    await app.state.clients.aclose()
