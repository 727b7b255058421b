"""A shopper's and a seller's first steps, through the gateway, against the real processes."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
from PIL import Image

from tests.system.conftest import Stack


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (30, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


async def wait_for(check, *, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def test_status_lists_every_service(stack: Stack):
    async with httpx.AsyncClient(base_url=stack.gateway) as gw:
        health = await gw.get("/health")
        assert health.status_code == 200 and health.json()["service"] == "api-gateway"
        status = (await gw.get("/api/status")).json()
        text = str(status)
        for name in ("customer", "sellers", "media", "products", "notifications"):
            assert name in text
        assert (await gw.get("/api/customer/nope")).status_code == 404


async def test_customer_signs_up_and_gets_welcome_email(stack: Stack):
    async with httpx.AsyncClient(base_url=stack.gateway) as gw:
        body = {"firstName": "Jane", "lastName": "Smith", "email": "jane@example.com", "password": "secret123"}
        registered = await gw.post("/api/customer/customers/register", json=body)
        assert registered.status_code == 201, registered.text
        assert registered.headers["x-service-name"] == "customer"
        login = await gw.post("/api/customer/customers/login", json={"email": body["email"], "password": "secret123"})
        token = login.json()["data"]["token"]
        profile = await gw.get("/api/customer/customers/profile", headers={"Authorization": f"Bearer {token}"})
        assert profile.status_code == 200 and profile.json()["data"]["email"] == "jane@example.com"
        # a client cannot smuggle a service key through the gateway
        smuggled = await gw.get("/api/customer/customers/service/stats", headers={"X-Service-Key": "system-test-key"})
        assert smuggled.status_code == 401

    outbox = stack.data_dir / "notifications" / "outbox"

    async def welcome_written() -> bool:
        return any("jane@example.com" in p.read_text(errors="replace") for p in outbox.glob("*.eml"))

    # customer's outbox -> notifications (real HTTP) -> .eml file (no SMTP configured)
    await wait_for(welcome_written)


async def test_seller_lists_a_product_with_an_uploaded_image(stack: Stack):
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=10) as gw:
        seller = {
            "firstName": "John", "lastName": "Doe", "email": "john@example.com", "password": "secret123",
            "confirmPassword": "secret123", "phone": "1234567890", "businessName": "John's Lamps",
            "businessType": "individual",
            "address": {"street": "1 Main St", "city": "Austin", "state": "TX", "country": "USA",
                        "postalCode": "73301"},
        }  # fmt: skip
        signup = await gw.post("/api/sellers/sellers/signup", json=seller)
        assert signup.status_code == 201, signup.text
        auth = {"Authorization": f"Bearer {signup.json()['data']['token']}"}

        image = jpeg()
        uploaded = await gw.post(
            "/api/media/media/upload",
            files={"file": ("lamp.jpg", image, "image/jpeg")},
            data={"type": "product"},
            headers=auth,
        )
        assert uploaded.status_code == 201, uploaded.text
        image_id = uploaded.json()["data"]["id"]

        product = {
            "name": "Desk Lamp",
            "price": 25.5,
            "category": "home",
            "stock": 4,
            "images": [{"media_id": image_id}],
        }
        created = await gw.post("/api/products/products", json=product, headers=auth)
        assert created.status_code == 201, created.text

        listing = await gw.get("/api/products/products", params={"search": "lamp"})
        assert [p["name"] for p in listing.json()["data"]] == ["Desk Lamp"]

        served = await gw.get(f"/media/{image_id}")
        assert served.status_code == 200 and served.content == image
        thumb = await gw.get(f"/thumb/{image_id}")
        assert thumb.status_code == 200 and thumb.headers["content-type"].startswith("image/")
