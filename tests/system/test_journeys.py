"""The three journeys, through the real gateway, against the eight real processes, with a
real SMTP server (aiosmtpd) receiving every email: a shopper's, a seller's and an admin's,
and the emails each journey owes, each exactly once."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest
from aiosmtpd.controller import Controller

from shared.testing import free_port
from tests.system.conftest import SERVICES, Stack, running_stack
from tests.system.test_through_gateway import jpeg, wait_for

pytestmark = pytest.mark.skipif(
    not {"orders", "admin"} <= set(SERVICES), reason="the journeys need the orders and admin services"
)

SELLER = {
    "firstName": "Sam", "lastName": "Seller", "email": "sam.seller@example.com", "password": "secret123",
    "confirmPassword": "secret123", "phone": "1234567890", "businessName": "Sam's Lamps",
    "businessType": "individual",
    "address": {"street": "1 Main St", "city": "Austin", "state": "TX", "country": "USA", "postalCode": "73301"},
}  # fmt: skip
SHOPPER = {"firstName": "Jane", "lastName": "Shopper", "email": "jane.shopper@example.com", "password": "secret123"}
ADDRESS = {"addressLine1": "5 Elm St", "city": "Springfield", "state": "IL", "country": "USA", "postalCode": "62701"}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    @staticmethod
    def text(message: EmailMessage) -> str:
        return message.get_body(("plain", "html")).get_content()


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    box.port = smtp.port  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        smtp.stop()


@pytest.fixture(scope="module")
def journey_stack(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[Stack]:
    smtp = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(inbox.port),  # type: ignore[attr-defined]
        "SMTP_ENCRYPTION": "none",
        "SMTP_FROM_EMAIL": "shop@example.com",
        "SMTP_LOCAL_HOSTNAME": "tests.local",
    }
    with running_stack(tmp_path_factory.mktemp("journeys"), service_env={"notifications": smtp}) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_shopper_seller_and_admin_journeys(journey_stack: Stack, inbox: Inbox):
    async with httpx.AsyncClient(base_url=journey_stack.gateway, timeout=15) as gw:
        # the seller lists two products, one with an uploaded image
        signup = await gw.post("/api/sellers/sellers/signup", json=SELLER)
        assert signup.status_code == 201, signup.text
        seller = bearer(signup.json()["data"]["token"])
        upload = await gw.post(
            "/api/media/media/upload", files={"file": ("lamp.jpg", jpeg(), "image/jpeg")},
            data={"type": "product"}, headers=seller,
        )  # fmt: skip
        assert upload.status_code == 201, upload.text
        lamp = {"name": "Brass Lamp", "price": 20, "category": "home", "stock": 10,
                "images": [{"media_id": upload.json()["data"]["id"]}]}  # fmt: skip
        bulb = {"name": "Spare Bulb", "price": 5.5, "category": "home", "stock": 5}
        lamp_id = (await gw.post("/api/products/products", json=lamp, headers=seller)).json()["data"]["id"]
        bulb_id = (await gw.post("/api/products/products", json=bulb, headers=seller)).json()["data"]["id"]

        # the shopper registers and verifies the email address from the mail received
        registered = await gw.post("/api/customer/customers/register", json=SHOPPER)
        assert registered.status_code == 201, registered.text

        async def verification_mail() -> bool:
            return any("verify-email/" in Inbox.text(m) for m in inbox.to(SHOPPER["email"]))

        await wait_for(verification_mail)
        mail = next(Inbox.text(m) for m in inbox.to(SHOPPER["email"]) if "verify-email/" in Inbox.text(m))
        token = re.search(r"verify-email/([A-Za-z0-9_\-]+)", mail).group(1)  # type: ignore[union-attr]
        assert (await gw.get(f"/api/customer/customers/verify-email/{token}")).status_code == 200
        credentials = {"email": SHOPPER["email"], "password": "secret123"}
        login = await gw.post("/api/customer/customers/login", json=credentials)
        shopper = bearer(login.json()["data"]["token"])
        address = await gw.post("/api/customer/customers/addresses", json=ADDRESS, headers=shopper)
        assert address.status_code == 201, address.text
        address_id = address.json()["data"]["id"]

        # browse and search, cart, place with an Idempotency-Key (replayed once), a second order
        listing = (await gw.get("/api/products/products")).json()["data"]
        assert {p["name"] for p in listing} == {"Brass Lamp", "Spare Bulb"}
        found = (await gw.get("/api/products/products", params={"search": "lamp"})).json()["data"]
        assert [p["id"] for p in found] == [lamp_id]
        added = await gw.post("/api/orders/cart/add", json={"productId": lamp_id, "quantity": 2}, headers=shopper)
        assert added.status_code == 200 and added.json()["data"]["totalItems"] == 2
        keyed = {**shopper, "Idempotency-Key": "journey-order-1"}
        body = {"shippingAddressId": address_id, "paymentMethod": "COD"}
        placed, replayed = [await gw.post("/api/orders/orders/place", json=body, headers=keyed) for _ in range(2)]
        assert placed.status_code == 201 and replayed.status_code == 201, placed.text
        kept = placed.json()["data"]
        assert replayed.json()["data"]["id"] == kept["id"] and kept["shippingAddress"]["city"] == "Springfield"
        await gw.post("/api/orders/cart/add", json={"productId": bulb_id, "quantity": 1}, headers=shopper)
        second = await gw.post("/api/orders/orders/place", json={"shippingAddress": ADDRESS}, headers=shopper)
        assert second.status_code == 201, second.text
        cancelled = second.json()["data"]
        seen = await gw.get(f"/api/orders/orders/{kept['id']}", headers=shopper)
        assert seen.json()["data"]["status"] == "pending"
        cancel = await gw.put(f"/api/orders/orders/{cancelled['id']}/cancel", json={}, headers=shopper)
        assert cancel.status_code == 200 and cancel.json()["data"]["status"] == "cancelled"

        # the seller sees stock fall and the order in the seller view
        product = (await gw.get(f"/api/products/products/{lamp_id}")).json()["data"]
        assert product["stock"] == 8 and product["reservedStock"] == 2
        bulb_now = (await gw.get(f"/api/products/products/{bulb_id}")).json()["data"]
        assert bulb_now["stock"] == 5 and bulb_now["reservedStock"] == 0  # released by the cancel
        view = await gw.get("/api/orders/seller/orders", headers=seller)
        assert view.status_code == 200, view.text
        ids = {o["id"] for o in view.json()["data"]}
        assert kept["id"] in ids and all(o.get("sellerView") for o in view.json()["data"])

        # the admin: dashboard figures match, then confirm → ship → deliver through the proxy
        admin_login = await gw.post("/api/admin/login", json={"email": "admin@example.com", "password": "admin123"})
        assert admin_login.status_code == 200, admin_login.text
        admin = bearer(admin_login.json()["data"]["token"])
        overview = (await gw.get("/api/admin/dashboard/stats", headers=admin)).json()["data"]["overview"]
        assert overview["customers"]["total"] == 1 and overview["sellers"]["total"] == 1
        assert overview["products"]["total"] == 2
        assert overview["orders"]["total"] == 2
        assert overview["orders"]["byStatus"]["pending"] == 1 and overview["orders"]["byStatus"]["cancelled"] == 1
        for status in ("confirmed", "processing", "shipped", "delivered"):
            moved = await gw.put(
                f"/api/admin/proxy/orders/api/v1/admin/orders/{kept['id']}/status",
                json={"status": status}, headers=admin,
            )  # fmt: skip
            assert moved.status_code == 200 and moved.json()["data"]["status"] == status, moved.text
        sold = (await gw.get(f"/api/products/products/{lamp_id}")).json()["data"]
        assert sold["soldStock"] == 2 and sold["reservedStock"] == 0 and sold["stock"] == 8

        # the customer's order stats follow (through the orders outbox)
        async def stats_applied() -> bool:
            profile = (await gw.get("/api/customer/customers/profile", headers=shopper)).json()["data"]
            return profile["totalOrders"] == 1 and profile["totalSpent"] == kept["totalAmount"]

        await wait_for(stats_applied)

        # the audit log shows each status change
        audit = (await gw.get("/api/admin/audit", params={"service": "orders"}, headers=admin)).json()["data"]
        changes = [e for e in audit["entries"] if e["method"] == "PUT" and kept["id"] in e["path"]]
        assert len(changes) == 4 and {e["status"] for e in changes} == {200}

    # every email each journey owes arrives, and none twice
    owed = {
        # welcome, verification, 2 confirmations, status: cancelled + confirmed/processing/shipped/delivered
        SHOPPER["email"]: 2 + 2 + 5,
        # welcome, one new-order email per order
        SELLER["email"]: 1 + 2,
    }

    async def all_arrived() -> bool:
        return all(len(inbox.to(address)) >= count for address, count in owed.items())

    await wait_for(all_arrived, seconds=30)
    await asyncio.sleep(2)  # several drain intervals: a duplicate would arrive by now
    for address, count in owed.items():
        subjects = Counter(str(m["Subject"]) for m in inbox.to(address))
        assert len(inbox.to(address)) == count, (address, subjects)
