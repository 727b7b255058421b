"""Two products instances on one SQLite store (one of them with two uvicorn workers), each
running the reservation sweep every 0.1 s: every reservation that runs out is expired and its
units given back exactly once, and the ones still running keep their units."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from products.settings import ProductsSettings
from shared.auth import issue_token
from shared.store import new_id
from shared.store.sqlite import SqliteStore
from tests.multiprocess.conftest import JWT_SECRET, KEY, Processes, wait_until

SVC = {"X-Service-Key": KEY}
SHORT = 30  # reservations that expire (2 units each)
LONG = 5  # reservations that stay active (2 units each)
STOCK = 100


def seller_headers() -> dict[str, str]:
    settings = ProductsSettings(_env_file=None, SERVICE_KEY=KEY, JWT_SECRET=JWT_SECRET)
    token, _ = issue_token(settings, subject=new_id(), role="seller", email="seller@example.com")
    return {"Authorization": f"Bearer {token}"}


def product(url: str, product_id: str) -> dict:
    response = httpx.get(f"{url}/api/v1/products/{product_id}", headers=SVC, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def books(data_dir: Path, product_id: str) -> tuple[dict, dict[str, dict], dict | None]:
    """The product, the reservations by order and the sweep's lease, read from the store file."""
    store = SqliteStore(data_dir / "products_db.sqlite3")
    try:
        found = await store.collection("products").find_one({"_id": product_id})
        docs = {doc["orderId"]: doc for doc in await store.collection("reservations").find({})}
        lease = await store.collection("leases").find_one({"_id": "products.reservation-sweep"})
    finally:
        await store.close()
    assert found is not None
    return found, docs, lease


def test_expired_reservations_are_released_once(processes: Processes, tmp_path: Path) -> None:
    data_dir = tmp_path / "products"
    env = {"DATA_DIR": str(data_dir), "RESERVATION_CLEANUP_SECONDS": "0.1", "MEDIA_SERVICE_URL": "http://127.0.0.1:9"}
    first = processes.start("products", {**env, "WEB_CONCURRENCY": "2"})
    second = processes.start("products", env)
    urls = [first.url, second.url]

    created = httpx.post(
        f"{first.url}/api/v1/products",
        json={"name": "Shared Lamp", "price": 10, "category": "home", "stock": STOCK},
        headers=seller_headers(),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["data"]["id"]

    def reserve(index: int, minutes: float) -> None:
        body = {"orderId": f"ord-{index}", "items": [{"productId": product_id, "quantity": 2}]}
        body["expirationMinutes"] = minutes
        url = urls[index % 2]
        answer = httpx.post(f"{url}/api/v1/service/inventory/reserve", json=body, headers=SVC, timeout=10)
        assert answer.status_code == 200, answer.text

    for index in range(LONG):
        reserve(index, 60)
    for index in range(LONG, LONG + SHORT):
        reserve(index, 0.01)  # runs out after 0.6 s; both instances' sweeps race for it

    def released() -> bool:
        return product(urls[0], product_id)["reservedStock"] <= 2 * LONG  # below it: released twice

    wait_until(released, what="the expired reservations to be released")
    processes.stop_all()  # nothing can still be in flight when the books are read

    after, docs, lease = asyncio.run(books(data_dir, product_id))
    expired = sorted(order for order, doc in docs.items() if doc["status"] == "expired")
    assert expired == sorted(f"ord-{i}" for i in range(LONG, LONG + SHORT))
    assert all(docs[order]["settled"] is True for order in expired)
    active = sorted(order for order, doc in docs.items() if doc["status"] == "active")
    assert active == [f"ord-{i}" for i in range(LONG)]
    # Each expired unit came back once: a second release of any line would show here.
    assert (after["stock"], after["reservedStock"], after["soldStock"]) == (STOCK - 2 * LONG, 2 * LONG, 0)
    assert sorted(r["orderId"] for r in after["reservations"]) == active
    assert lease is not None  # the sweeps ran under the store lease
