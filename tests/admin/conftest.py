"""Fixtures of the admin tests: the admin app in-process on a temporary SQLite store, the real
apps of customer, sellers, products, media and notifications wired in through their ASGI
transports, and small real HTTP servers (``Receiver``) standing in for orders or for a
service that must misbehave.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from admin.app import create_app
from admin.settings import AdminSettings
from shared.testing import Receiver, free_port, lifespan_client, running
from tests.integration.conftest import inbox, notifications  # noqa: F401 - fixtures

KEY = "test-service-key"
API = "/api/v1"
SUPER = ("admin@example.com", "admin123")
DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port: connection refused
SERVICES = ("customer", "sellers", "media", "products", "orders", "notifications")


def settings_for(tmp_path, **overrides: Any) -> AdminSettings:
    values: dict[str, Any] = {
        "DATA_DIR": str(tmp_path / "admin"),
        "BCRYPT_ROUNDS": 4,
        "SERVICE_KEY": KEY,
        "OUTBOX_POLL_SECONDS": 3600,
        "LOG_LEVEL": "warning",
        "GATEWAY_URL": DEAD,
        **{f"{s.upper()}_SERVICE_URL": DEAD for s in SERVICES},
    }
    values.update(overrides)
    return AdminSettings(_env_file=None, **values)


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to a real in-process app and notes what arrived (method, raw target,
    headers), so a test can say exactly what the service received."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers.raw}
        self.seen.append((request.method, request.url.raw_path.decode(), headers))
        return await self.inner.handle_async_request(request)


class OrdersStub(Receiver):
    """The orders service (built elsewhere) as its contract answers the stats call."""

    STATS = {
        "total": 42,
        "byStatus": {
            "pending": 3,
            "confirmed": 2,
            "processing": 1,
            "shipped": 4,
            "delivered": 30,
            "cancelled": 1,
            "failed": 1,
        },
        "revenue": 5123.45,
    }

    def __init__(self) -> None:
        super().__init__(status=200)

    async def respond(self, method: str, path: str, body: object) -> tuple[int, object]:
        if path == "/api/v1/service/orders/stats":
            return 200, {"success": True, "message": "Order stats retrieved successfully", "data": self.STATS}
        if path == "/health":
            return 200, {"success": True, "service": "orders-service", "status": "healthy", "timestamp": "x"}
        return self.status, {"success": True, "message": "recorded", "data": {"path": path}}


@dataclass
class Stack:
    """The admin app (``client``) and the real services it is wired to."""

    client: httpx.AsyncClient
    app: FastAPI
    apps: dict[str, FastAPI] = field(default_factory=dict)
    transports: dict[str, RecordingTransport] = field(default_factory=dict)
    orders: OrdersStub | None = None

    async def login(self, email: str, password: str, **headers: str) -> httpx.Response:
        return await self.client.post(f"{API}/login", json={"email": email, "password": password}, headers=headers)

    async def token(self, email: str = SUPER[0], password: str = SUPER[1]) -> str:
        response = await self.login(email, password)
        assert response.status_code == 200, response.text
        return response.json()["data"]["token"]

    async def make_admin(
        self, super_token: str, n: int, role: str = "admin", permissions: list[str] | None = None
    ) -> tuple[str, str]:
        """Create an admin through the API; answer (id, its token)."""
        body: dict[str, Any] = {
            "firstName": "Test",
            "lastName": f"Admin{n}",
            "email": f"admin{n}@example.com",
            "password": "password123",
            "role": role,
        }
        if permissions is not None:
            body["permissions"] = permissions
        response = await self.client.post(f"{API}/admins", json=body, headers=bearer(super_token))
        assert response.status_code == 201, response.text
        return response.json()["data"]["admin"]["id"], await self.token(body["email"], "password123")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _service_settings(tmp_path, name: str) -> Any:
    if name == "customer":
        from tests.customer.conftest import settings_for as customer_settings

        return customer_settings(tmp_path / "customer", DATA_DIR=str(tmp_path / "customer"))
    if name == "sellers":
        from tests.sellers.conftest import settings_for as sellers_settings

        return sellers_settings(tmp_path / "sellers", DATA_DIR=str(tmp_path / "sellers"))
    if name == "products":
        from tests.products.conftest import settings_for as products_settings

        return products_settings(tmp_path / "products", DATA_DIR=str(tmp_path / "products"), MEDIA_SERVICE_URL=DEAD)
    if name == "media":
        from media.settings import MediaSettings

        return MediaSettings(
            _env_file=None,
            ENV="test",
            DATA_DIR=str(tmp_path / "media"),
            MEDIA_ROOT=str(tmp_path / "media" / "files"),
            SERVICE_KEY=KEY,
            MEDIA_CLEANUP_INTERVAL_SECONDS=0,
            LOG_LEVEL="warning",
        )
    if name == "notifications":
        from notifications.settings import NotificationsSettings

        return NotificationsSettings(
            _env_file=None, DATA_DIR=str(tmp_path / "notifications"), SERVICE_KEY=KEY, LOG_LEVEL="warning"
        )
    raise ValueError(name)


def _service_app(tmp_path, name: str) -> FastAPI:
    settings = _service_settings(tmp_path, name)
    if name == "customer":
        from customer.app import create_app as make
    elif name == "sellers":
        from sellers.app import create_app as make
    elif name == "products":
        from products.app import create_app as make
    elif name == "media":
        from media.app import create_app as make
    else:
        from notifications.app import create_app as make
    return make(settings)


@pytest.fixture
def make_stack(tmp_path) -> Callable[..., Any]:
    """``async with make_stack(services=("customer",), orders=True, **settings) as stack``.

    ``services`` are started as real in-process apps; ``urls`` points others at real HTTP
    servers (Receivers); ``apps`` passes already running apps (e.g. notifications with SMTP).
    """

    @asynccontextmanager
    async def factory(
        *,
        services: tuple[str, ...] = (),
        orders: bool = False,
        urls: Mapping[str, str] | None = None,
        apps: Mapping[str, FastAPI] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[Stack]:
        async with AsyncExitStack() as stack:
            started: dict[str, FastAPI] = dict(apps or {})
            for name in services:
                app = _service_app(tmp_path, name)
                await stack.enter_async_context(running(app))
                started[name] = app
            transports = {name: RecordingTransport(app) for name, app in started.items()}
            values = {f"{name.upper()}_SERVICE_URL": url for name, url in (urls or {}).items()}
            stub = None
            if orders:
                stub = await stack.enter_async_context(OrdersStub())
                values["ORDERS_SERVICE_URL"] = stub.url
            values.update(overrides)
            admin = create_app(settings_for(tmp_path, **values), transports=transports)
            client = await stack.enter_async_context(lifespan_client(admin))
            yield Stack(client=client, app=admin, apps=started, transports=transports, orders=stub)

    return factory


async def settle(app: FastAPI) -> None:
    """Wait for the immediate outbox attempts to finish."""
    outbox = app.state.outbox
    for _ in range(300):
        if not outbox._background:
            return
        await asyncio.sleep(0.01)


__all__ = ["free_port"]
