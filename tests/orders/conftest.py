"""The orders app wired in-process to the real products, customer, sellers and notifications
apps (each on its own SQLite store in a temporary folder). Every link goes through a
:class:`Switch`, a transport that can be turned off (connection refused) or slowed down to
play a peer that is down or slow; nothing of our services is mocked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from customer.app import create_app as create_customer
from customer.settings import CustomerSettings
from notifications.app import create_app as create_notifications
from notifications.settings import NotificationsSettings
from orders.app import create_app as create_orders
from orders.settings import OrdersSettings
from products.app import create_app as create_products
from products.settings import ProductsSettings
from sellers.app import create_app as create_sellers
from sellers.settings import SellersSettings
from shared.auth import issue_token
from shared.testing import lifespan_client, running

KEY = "test-service-key"
SVC = {"X-Service-Key": KEY}
API = "/api/v1"
ADDRESS = {
    "addressLine1": "123 Main Street",
    "city": "New York",
    "state": "NY",
    "country": "USA",
    "postalCode": "10001",
}
DEAD = "http://127.0.0.1:9"


class Switch(httpx.AsyncBaseTransport):
    """An in-process link to a real app that a test can take down (``down``: connection
    refused) or slow down (``delay`` seconds before the request reaches the app)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.down = False
        self.delay = 0.0
        self.calls: list[str] = []
        self.late: dict[str, float] = {}
        """path suffix → seconds the answer comes late (after the app did the work)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("Connection refused", request=request)
        if self.delay:
            limit = (request.extensions.get("timeout") or {}).get("read")
            if limit is not None and self.delay > limit:  # the client gives up, as a socket read would
                await asyncio.sleep(limit)
                raise httpx.ReadTimeout("timed out", request=request)
            await asyncio.sleep(self.delay)
        self.calls.append(request.url.path)
        response = await self.inner.handle_async_request(request)
        for suffix, late in self.late.items():
            if request.url.path.endswith(suffix):
                limit = (request.extensions.get("timeout") or {}).get("read")
                if limit is not None and late > limit:
                    await asyncio.sleep(limit)
                    raise httpx.ReadTimeout("timed out", request=request)
                await asyncio.sleep(late)
        return response


def common(path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "_env_file": None,
        "DATA_DIR": str(path),
        "SERVICE_KEY": KEY,
        "LOG_LEVEL": "warning",
        "NOTIFICATIONS_SERVICE_URL": DEAD,
        "PRODUCTS_SERVICE_URL": DEAD,
        "MEDIA_SERVICE_URL": DEAD,
        "CUSTOMER_SERVICE_URL": DEAD,
        "SELLERS_SERVICE_URL": DEAD,
        **extra,
    }


def orders_settings(path: Path, **overrides: Any) -> OrdersSettings:
    values = common(path, OUTBOX_POLL_SECONDS=3600, EXPIRY_TASK_SECONDS=0, HOUSEKEEPING_SECONDS=0)
    values.update(overrides)
    return OrdersSettings(**values)


@dataclass
class Account:
    id: str
    headers: dict[str, str]
    email: str


@dataclass
class Shop:
    """The wired apps and a client for each."""

    orders: httpx.AsyncClient
    products: httpx.AsyncClient
    customer: httpx.AsyncClient
    sellers: httpx.AsyncClient
    notifications: httpx.AsyncClient
    links: dict[str, Switch]
    apps: dict[str, Any]
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def app(self) -> Any:
        return self.apps["orders"]

    def _next(self) -> int:
        self.counter[0] += 1
        return self.counter[0]

    async def new_customer(self) -> Account:
        n = self._next()
        body = {"firstName": "Jane", "lastName": f"Smith{n}", "email": f"jane{n}@example.com", "password": "secret123"}
        response = await self.customer.post(f"{API}/customers/register", json=body)
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        return Account(data["customer"]["id"], {"Authorization": f"Bearer {data['token']}"}, body["email"])

    async def new_customers(self, count: int) -> list[Account]:
        """``count`` customers written straight into the customer service's store (no password
        hashing: a race test needs many buyers fast), each with an access token."""
        from shared.store import new_id
        from shared.timeutil import now_iso

        accounts, docs = [], []
        for _ in range(count):
            n, customer_id = self._next(), new_id()
            email = f"buyer{n}@example.com"
            docs.append({"_id": customer_id, "firstName": "Buyer", "lastName": f"No{n}", "email": email,
                         "passwordHash": "-", "isActive": True, "tokenVersion": 0, "createdAt": now_iso()})  # fmt: skip
            accounts.append(Account(customer_id, self.token("customer", customer_id, email), email))
        await self.apps["customer"].state.store.collection("customers").insert_many(docs)
        return accounts

    async def new_seller(self) -> Account:
        n = self._next()
        body = {
            "firstName": "John", "lastName": "Doe", "email": f"seller{n}@example.com", "password": "secret123",
            "confirmPassword": "secret123", "phone": "1234567890", "businessName": f"Shop {n}",
            "businessType": "individual", "businessDescription": "Things",
            "address": {"street": "1 Market St", "city": "Boston", "state": "MA", "country": "USA",
                        "postalCode": "02101"},
        }  # fmt: skip
        response = await self.sellers.post(f"{API}/sellers/signup", json=body)
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        seller_id = data.get("id") or data.get("_id") or data["seller"]["id"]
        return Account(seller_id, {"Authorization": f"Bearer {data['token']}"}, body["email"])

    def token(self, role: str, user_id: str, email: str = "someone@example.com") -> dict[str, str]:
        token, _ = issue_token(self.app.state.settings, subject=user_id, role=role, email=email)  # type: ignore[arg-type]
        return {"Authorization": f"Bearer {token}"}

    async def new_product(
        self, seller: Account, *, price: float = 10.0, stock: int = 10, name: str | None = None
    ) -> str:
        body = {"name": name or f"Product {self._next()}", "price": price, "category": "things", "stock": stock}
        response = await self.products.post(f"{API}/products", json=body, headers=seller.headers)
        assert response.status_code == 201, response.text
        return response.json()["data"]["id"]

    async def product(self, product_id: str) -> dict[str, Any]:
        response = await self.products.get(f"{API}/products/{product_id}", headers=SVC)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    async def fill_cart(self, customer: Account, product_id: str, quantity: int) -> None:
        """Put one line into the cart through the repository (setup for races, not under test)."""
        repo = self.app.state.repo
        cart = await repo.get_or_create_cart(customer.id)
        item = {"productId": product_id, "sellerId": None, "productName": None, "productImage": None,
                "priceCents": 0, "availableStock": 0, "quantity": quantity,
                "addedAt": None, "updatedAt": None}  # fmt: skip
        assert await repo.replace_cart_items(cart, [item]) is not None

    async def add(self, customer: Account, product_id: str, quantity: int = 1) -> httpx.Response:
        return await self.orders.post(
            f"{API}/cart/add", json={"productId": product_id, "quantity": quantity}, headers=customer.headers
        )

    async def place(self, customer: Account, key: str | None = None, **body: Any) -> httpx.Response:
        headers = dict(customer.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        body.setdefault("shippingAddress", dict(ADDRESS))
        return await self.orders.post(f"{API}/orders/place", json=body, headers=headers)

    async def placed(self, customer: Account, *items: tuple[str, int], **body: Any) -> dict[str, Any]:
        """Add ``items`` to the cart and place; the new order."""
        for product_id, quantity in items:
            assert (await self.add(customer, product_id, quantity)).status_code == 200
        response = await self.place(customer, **body)
        assert response.status_code == 201, response.text
        return response.json()["data"]

    async def set_status(self, order_id: str, status: str, **body: Any) -> httpx.Response:
        return await self.orders.put(
            f"{API}/admin/orders/{order_id}/status", json={"status": status, **body}, headers=SVC
        )

    async def order_count(self) -> int:
        return await self.app.state.repo.orders.count({})

    async def settle(self) -> None:
        """Wait for the immediate outbox attempts of the orders app to finish."""
        outbox = self.app.state.outbox
        for _ in range(500):
            if not outbox._background:
                return
            await asyncio.sleep(0.01)

    async def outbox_rows(self, order_id: str) -> list[dict[str, Any]]:
        await self.settle()
        response = await self.orders.get(f"{API}/service/outbox", params={"orderId": order_id}, headers=SVC)
        assert response.status_code == 200, response.text
        return response.json()["data"]["entries"]


@asynccontextmanager
async def open_shop(
    base: Path,
    *,
    notifications_settings: dict[str, Any] | None = None,
    products_settings: dict[str, Any] | None = None,
    **overrides: Any,
):
    async with AsyncExitStack() as stack:
        apps: dict[str, Any] = {}
        apps["notifications"] = create_notifications(
            NotificationsSettings(**common(base / "notifications", **(notifications_settings or {})))
        )
        links: dict[str, Switch] = {"notifications": Switch(apps["notifications"])}
        apps["products"] = create_products(
            ProductsSettings(
                **common(base / "products", **{"RESERVATION_CLEANUP_SECONDS": 3600, **(products_settings or {})})
            )
        )
        links["products"] = Switch(apps["products"])
        apps["customer"] = create_customer(
            CustomerSettings(**common(base / "customer", BCRYPT_ROUNDS=4, RATE_LIMIT_MAX=0, OUTBOX_POLL_SECONDS=3600)),
            transports={"notifications": links["notifications"]},
        )
        links["customer"] = Switch(apps["customer"])
        apps["sellers"] = create_sellers(
            SellersSettings(**common(base / "sellers", BCRYPT_ROUNDS=4, RATE_LIMIT_MAX=0, OUTBOX_POLL_SECONDS=3600)),
            transports={"notifications": links["notifications"], "products": links["products"]},
        )
        links["sellers"] = Switch(apps["sellers"])
        apps["orders"] = create_orders(orders_settings(base / "orders", **overrides), transports=links)
        for name in ("notifications", "products", "customer", "sellers"):
            await stack.enter_async_context(running(apps[name]))
        clients = {}
        for name in ("notifications", "products", "customer", "sellers"):
            transport = httpx.ASGITransport(app=apps[name], client=("127.0.0.1", 50000))
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )
        clients["orders"] = await stack.enter_async_context(lifespan_client(apps["orders"]))
        clients["orders"].timeout = httpx.Timeout(60)
        yield Shop(links=links, apps=apps, **clients)


@pytest.fixture
def shop_factory(tmp_path: Path) -> Callable[..., Any]:
    counter = [0]

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[Shop]:
        counter[0] += 1
        async with open_shop(tmp_path / f"shop{counter[0]}", **overrides) as shop:
            yield shop

    return factory


@pytest.fixture
async def shop(shop_factory) -> AsyncIterator[Shop]:
    async with shop_factory() as s:
        yield s


@pytest.fixture
async def seller(shop: Shop) -> Account:
    return await shop.new_seller()


@pytest.fixture
async def customer(shop: Shop) -> Account:
    return await shop.new_customer()
