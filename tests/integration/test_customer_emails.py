"""Customer and notifications wired together in-process, mail delivered to a real SMTP server.

Registration queues the welcome and verification emails in the customer outbox; the drain
calls the real notifications app, which renders the templates and delivers them over SMTP
to aiosmtpd; the link in the received email verifies the address.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re

import httpx
from aiosmtpd.controller import Controller

from customer.app import create_app as create_customer
from notifications.app import create_app as create_notifications
from notifications.settings import NotificationsSettings
from shared.testing import free_port, lifespan_client, running
from tests.customer.conftest import settings_for

KEY = "test-service-key"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


async def test_registration_emails_arrive_and_verify_the_address(tmp_path):
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        notifications = create_notifications(
            NotificationsSettings(
                _env_file=None,
                DATA_DIR=str(tmp_path / "notifications"),
                SERVICE_KEY=KEY,
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(smtp.port),
                SMTP_ENCRYPTION="none",
                SMTP_FROM_EMAIL="shop@example.com",
                SMTP_LOCAL_HOSTNAME="tests.local",
                LOG_LEVEL="warning",
            )
        )
        async with running(notifications):
            customer = create_customer(
                settings_for(tmp_path),
                transports={"notifications": httpx.ASGITransport(app=notifications)},
            )
            async with lifespan_client(customer) as client:
                response = await client.post(
                    "/api/v1/customers/register",
                    json={"firstName": "Jane", "lastName": "Smith", "email": "jane@example.com", "password": "pass123"},
                )
                assert response.status_code == 201
                token = response.json()["data"]["token"]
                for _ in range(50):
                    await customer.state.outbox.drain_once()
                    if len(inbox.messages) >= 2:
                        break
                    await asyncio.sleep(0.1)
                rows = await customer.state.outbox.rows.find({}, sort=[("dedupeKey", 1)])
                assert [r["status"] for r in rows] == ["sent", "sent"]

                assert len(inbox.messages) == 2
                assert all("jane@example.com" in m["To"] and "Jane Smith" in m["To"] for m in inbox.messages)
                verification = next(
                    m for m in inbox.messages if "verify-email/" in m.get_body(("plain",)).get_content()
                )
                text = verification.get_body(("plain",)).get_content()
                link_token = re.search(r"/customer/verify-email/([A-Za-z0-9_-]+)", text).group(1)

                verified = await client.get(f"/api/v1/customers/verify-email/{link_token}")
                assert verified.status_code == 200
                profile = await client.get("/api/v1/customers/profile", headers={"Authorization": f"Bearer {token}"})
                assert profile.json()["data"]["isVerified"] is True
    finally:
        smtp.stop()
