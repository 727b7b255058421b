"""Faults, with the eight real processes behind the real gateway: a peer stopped while users
work delays what depends on it and loses nothing; the gateway's breaker opens and closes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.system.conftest import SERVICES, Stack, running_stack
from tests.system.test_journeys import ADDRESS, Inbox, bearer, inbox  # noqa: F401 (module fixture)
from tests.system.test_through_gateway import jpeg, wait_for

pytestmark = pytest.mark.skipif(
    not {"orders", "admin"} <= set(SERVICES), reason="the fault tests need the orders and admin services"
)

# How long notifications stays down while people sign up and order.
NOTIFICATIONS_DOWN_SECONDS = 60


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[Stack]:  # noqa: F811
    smtp = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(inbox.port),  # type: ignore[attr-defined]
        "SMTP_ENCRYPTION": "none",
        "SMTP_FROM_EMAIL": "shop@example.com",
        "SMTP_LOCAL_HOSTNAME": "tests.local",
    }
    gateway = {"CIRCUIT_FAILURE_THRESHOLD": "3", "CIRCUIT_COOLDOWN_MS": "1500"}
    with running_stack(
        tmp_path_factory.mktemp("faults"), service_env={"notifications": smtp, "gateway": gateway}
    ) as running:
        yield running


def seller_body(n: int) -> dict:
    return {
        "firstName": "Fay", "lastName": "Seller", "email": f"fault.seller{n}@example.com", "password": "secret123",
        "confirmPassword": "secret123", "phone": "1234567890", "businessName": f"Fault Shop {n}",
        "businessType": "individual",
        "address": {"street": "1 Main St", "city": "Austin", "state": "TX", "country": "USA", "postalCode": "73301"},
    }  # fmt: skip


async def new_seller(gw: httpx.AsyncClient, n: int) -> tuple[dict[str, str], str]:
    signup = await gw.post("/api/sellers/sellers/signup", json=seller_body(n))
    assert signup.status_code == 201, signup.text
    return bearer(signup.json()["data"]["token"]), signup.json()["data"]["seller"]["id"]


async def new_customer(gw: httpx.AsyncClient, email: str) -> dict[str, str]:
    body = {"firstName": "Cal", "lastName": "Buyer", "email": email, "password": "secret123"}
    assert (await gw.post("/api/customer/customers/register", json=body)).status_code == 201
    login = await gw.post("/api/customer/customers/login", json={"email": email, "password": "secret123"})
    return bearer(login.json()["data"]["token"])


async def test_notifications_down_for_a_minute_loses_and_doubles_no_email(fault_stack: Stack, inbox: Inbox):  # noqa: F811
    async with httpx.AsyncClient(base_url=fault_stack.gateway, timeout=15) as gw:
        seller, _ = await new_seller(gw, 1)
        product = {"name": "Quiet Fan", "price": 30, "category": "home", "stock": 20}
        product_id = (await gw.post("/api/products/products", json=product, headers=seller)).json()["data"]["id"]
        fault_stack.stop("notifications")
        down_since = time.monotonic()
        shoppers = [f"outage{i}@example.com" for i in range(3)]
        for email_address in shoppers:
            shopper = await new_customer(gw, email_address)
            item = {"productId": product_id, "quantity": 1}
            added = await gw.post("/api/orders/cart/add", json=item, headers=shopper)
            assert added.status_code == 200, added.text
            placed = await gw.post("/api/orders/orders/place", json={"shippingAddress": ADDRESS}, headers=shopper)
            assert placed.status_code == 201, placed.text  # an outage never affects an answer
        await asyncio.sleep(max(0.0, NOTIFICATIONS_DOWN_SECONDS - (time.monotonic() - down_since)))
        assert not any(inbox.to(address) for address in shoppers)
        fault_stack.start("notifications")

    # each shopper: welcome + verification + order confirmation; the seller: welcome + 3 new orders
    owed = {**{address: 3 for address in shoppers}, "fault.seller1@example.com": 4}

    async def delivered() -> bool:
        return all(len(inbox.to(address)) >= count for address, count in owed.items())

    # retries back off up to 5 minutes per entry; a minute's outage is retried within ~40 s
    await wait_for(delivered, seconds=90)
    await asyncio.sleep(2)
    assert {address: len(inbox.to(address)) for address in owed} == owed


async def test_media_down_refuses_products_with_images_only(fault_stack: Stack):
    async with httpx.AsyncClient(base_url=fault_stack.gateway, timeout=15) as gw:
        seller, seller_id = await new_seller(gw, 2)
        upload = await gw.post(
            "/api/media/media/upload", files={"file": ("a.jpg", jpeg(), "image/jpeg")},
            data={"type": "product"}, headers=seller,
        )  # fmt: skip
        media_id = upload.json()["data"]["id"]
        fault_stack.stop("media")
        try:
            with_image = {"name": "Pictured", "price": 1, "stock": 1, "images": [{"media_id": media_id}]}
            refused = await gw.post("/api/products/products", json=with_image, headers=seller)
            assert refused.status_code == 503 and refused.json()["message"] == "Media service unavailable"
            plain_body = {"name": "Plain", "price": 1, "stock": 1}
            plain = await gw.post("/api/products/products", json=plain_body, headers=seller)
            assert plain.status_code == 201, plain.text
            mine = (await gw.get(f"/api/products/products/seller/{seller_id}", headers=seller)).json()["data"]
            assert [p["name"] for p in mine["products"]] == ["Plain"]  # nothing half-written
        finally:
            fault_stack.start("media")


async def test_products_down_cart_readable_and_seller_state_catches_up(fault_stack: Stack):
    async with httpx.AsyncClient(base_url=fault_stack.gateway, timeout=15) as gw:
        seller, seller_id = await new_seller(gw, 3)
        kettle = {"name": "Kettle", "price": 12, "stock": 3}
        created = await gw.post("/api/products/products", json=kettle, headers=seller)
        product_id = created.json()["data"]["id"]
        shopper = await new_customer(gw, "cart.keeper@example.com")
        await gw.post("/api/orders/cart/add", json={"productId": product_id, "quantity": 1}, headers=shopper)
        admin_login = await gw.post("/api/admin/login", json={"email": "admin@example.com", "password": "admin123"})
        admin = bearer(admin_login.json()["data"]["token"])
        status_path = f"/api/admin/proxy/sellers/api/v1/sellers/admin/{seller_id}/status"

        fault_stack.stop("products")
        try:
            cart = await gw.get("/api/orders/cart", headers=shopper)
            assert cart.status_code == 200 and cart.json()["data"]["refreshed"] is False
            assert [i["productId"] for i in cart.json()["data"]["items"]] == [product_id]
            add = await gw.post("/api/orders/cart/add", json={"productId": product_id, "quantity": 1}, headers=shopper)
            assert add.status_code == 503
            for active in (False, True, False):  # the last state must win once products is back
                flipped = await gw.patch(status_path, json={"isActive": active}, headers=admin)
                assert flipped.status_code == 200, flipped.text
        finally:
            fault_stack.start("products")

        async def hidden() -> bool:
            public = await gw.get(f"/api/products/products/{product_id}")
            return public.status_code == 404

        await wait_for(hidden, seconds=40)
        await asyncio.sleep(2)
        assert (await gw.get(f"/api/products/products/{product_id}")).status_code == 404


async def test_breaker_opens_answers_fast_and_closes_again(fault_stack: Stack):
    async with httpx.AsyncClient(base_url=fault_stack.gateway, timeout=15) as gw:

        async def circuit() -> str:
            return (await gw.get("/api/status")).json()["services"]["sellers"]["circuit"]["state"]

        assert await circuit() == "closed"
        fault_stack.stop("sellers")
        try:
            for _ in range(3):
                assert (await gw.get("/api/sellers/sellers/service/stats")).status_code == 503
            assert await circuit() == "open"
            # refused by the open breaker itself (no connection tried): it says when to retry
            fast = await gw.get("/api/sellers/sellers/service/stats")
            assert fast.status_code == 503 and "retry-after" in fast.headers
            status = (await gw.get("/api/status")).json()["services"]["sellers"]
            assert status["status"] == "unhealthy"
        finally:
            fault_stack.start("sellers")
        await asyncio.sleep(1.6)  # the cooldown passes: the next call is the trial

        async def closed_again() -> bool:
            await gw.get("/api/sellers/sellers/service/stats")
            return await circuit() == "closed"

        await wait_for(closed_again, seconds=10)
        assert (await gw.get("/api/status")).json()["services"]["sellers"]["status"] == "healthy"
