"""Customer and notifications wired together in-process, mail delivered to a real SMTP server.

Registration queues the welcome and verification emails in the customer outbox; the drain
calls the real notifications app, which renders the templates and delivers them over SMTP
to aiosmtpd; the link in the received email verifies the address.
"""

from __future__ import annotations

import asyncio
import re

import httpx

from customer.app import create_app as create_customer
from shared.testing import lifespan_client
from tests.customer.conftest import settings_for


async def test_registration_emails_arrive_and_verify_the_address(tmp_path, notifications, inbox):
    customer = create_customer(
        settings_for(tmp_path), transports={"notifications": httpx.ASGITransport(app=notifications)}
    )
    async with lifespan_client(customer) as client:
        body = {"firstName": "Jane", "lastName": "Smith", "email": "jane@example.com", "password": "pass123"}
        response = await client.post("/api/v1/customers/register", json=body)
        assert response.status_code == 201
        token = response.json()["data"]["token"]
        for _ in range(50):
            await customer.state.outbox.drain_once()
            if len(inbox.messages) >= 2:
                break
            await asyncio.sleep(0.1)
        # The mail can arrive before the immediate attempt that sent it has closed its row.
        for _ in range(100):
            if not customer.state.outbox._background:
                break
            await asyncio.sleep(0.01)
        rows = await customer.state.outbox.rows.find({}, sort=[("dedupeKey", 1)])
        assert [r["status"] for r in rows] == ["sent", "sent"]

        assert len(inbox.messages) == 2
        assert all("jane@example.com" in m["To"] and "Jane Smith" in m["To"] for m in inbox.messages)
        text = next(t for t in inbox.texts() if "verify-email/" in t)
        link_token = re.search(r"/customer/verify-email/([A-Za-z0-9_-]+)", text).group(1)

        verified = await client.get(f"/api/v1/customers/verify-email/{link_token}")
        assert verified.status_code == 200
        profile = await client.get("/api/v1/customers/profile", headers={"Authorization": f"Bearer {token}"})
        assert profile.json()["data"]["isVerified"] is True
