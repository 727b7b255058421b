from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from products.app import create_app
from products.settings import ProductsSettings
from shared.auth import issue_token
from shared.store import new_id
from shared.testing import Receiver, free_port, lifespan_client

KEY = "test-service-key"
SVC = {"X-Service-Key": KEY}
API = "/api/v1"


def settings_for(tmp_path, **overrides: Any) -> ProductsSettings:
    values: dict[str, Any] = {
        "DATA_DIR": str(tmp_path / "data"),
        "SERVICE_KEY": KEY,
        "RESERVATION_CLEANUP_SECONDS": 3600,
        "MEDIA_TIMEOUT_SECONDS": 2,
        "LOG_LEVEL": "warning",
    }
    values.update(overrides)
    return ProductsSettings(_env_file=None, **values)


class MediaStub(Receiver):
    """A real HTTP server answering validate / bulk-mark-used per id as the media contract says.

    Ids in ``known`` are valid; ``marked`` collects the ids marked used.
    """

    def __init__(self) -> None:
        super().__init__(status=200)
        self.known: set[str] = set()
        self.marked: list[str] = []

    def new_image(self) -> str:
        media_id = str(uuid.uuid4())
        self.known.add(media_id)
        return media_id

    async def respond(self, method: str, path: str, body: object) -> tuple[int, object]:
        ids = (body or {}).get("fileIds") or []  # type: ignore[union-attr]
        if path == "/api/v1/media/validate":
            files = [
                {"id": i, "valid": i in self.known, "exists": i in self.known}
                | ({} if i in self.known else {"reason": "File not found"})
                for i in ids
            ]
            data = {"files": files, "summary": {"total": len(ids)}}
            return 200, {"success": True, "message": "File validation completed", "data": data}
        if path == "/api/v1/media/bulk-mark-used":
            self.marked.extend(i for i in ids if i in self.known)
            results = [{"id": i, "success": i in self.known, "message": "Marked as used"} for i in ids]
            return 200, {"success": True, "data": {"results": results}}
        return 404, {"success": False, "message": "Route not found"}


@pytest.fixture
async def media() -> AsyncIterator[MediaStub]:
    async with MediaStub() as stub:
        yield stub


@pytest.fixture
def app_factory(tmp_path, media: MediaStub) -> Callable[..., Any]:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        overrides.setdefault("MEDIA_SERVICE_URL", media.url)
        app = create_app(settings_for(tmp_path, **overrides))
        async with lifespan_client(app) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

    return factory


@pytest.fixture
async def client(app_factory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_factory() as c:
        yield c


def dead_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


def token_for(client: httpx.AsyncClient, user_id: str, role: str = "seller") -> dict[str, str]:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    token, _ = issue_token(settings, subject=user_id, role=role, email=f"{role}-{user_id[:6]}@example.com")  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


class Seller:
    """A seller id with its bearer header."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.id = new_id()
        self.headers = token_for(client, self.id)


@pytest.fixture
def seller(client) -> Seller:
    return Seller(client)


@pytest.fixture
def other_seller(client) -> Seller:
    return Seller(client)


async def create_product(client: httpx.AsyncClient, seller: Seller, **fields: Any) -> dict[str, Any]:
    body = {"name": "Phone X1", "price": 99.99, "category": "electronics", "stock": 10, **fields}
    response = await client.post(f"{API}/products", json=body, headers=seller.headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def get_product(client: httpx.AsyncClient, product_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/products/{product_id}", headers=SVC)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def reserve(
    client: httpx.AsyncClient, order_id: str, items: list[tuple[str, int]], **extra: Any
) -> httpx.Response:
    body = {"orderId": order_id, "items": [{"productId": p, "quantity": q} for p, q in items], **extra}
    return await client.post(f"{API}/service/inventory/reserve", json=body, headers=SVC)
