"""Sellers and notifications wired together in-process, mail delivered to a real SMTP server:
the welcome email on signup, and a password reset done with the link from the email."""

from __future__ import annotations

import asyncio
import re

import httpx

from sellers.app import create_app as create_sellers
from shared.testing import lifespan_client
from tests.sellers.conftest import seller_body, settings_for


async def wait_for_mail(app, inbox, count: int) -> None:
    for _ in range(50):
        await app.state.outbox.drain_once()
        if len(inbox.messages) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} emails, got {len(inbox.messages)}")


async def test_welcome_and_password_reset_emails(tmp_path, notifications, inbox):
    sellers = create_sellers(
        settings_for(tmp_path / "sellers"), transports={"notifications": httpx.ASGITransport(app=notifications)}
    )
    async with lifespan_client(sellers) as client:
        body = seller_body(1)
        assert (await client.post("/api/v1/sellers/signup", json=body)).status_code == 201
        await wait_for_mail(sellers, inbox, 1)
        assert body["email"] in inbox.messages[0]["To"]

        forgot = await client.post("/api/v1/sellers/forgot-password", json={"email": body["email"]})
        assert forgot.status_code == 200
        await wait_for_mail(sellers, inbox, 2)
        token = re.search(r"reset-password\?token=([A-Za-z0-9_-]+)", inbox.texts()[1]).group(1)
        reset = await client.post(
            "/api/v1/sellers/reset-password",
            json={"token": token, "newPassword": "brandnew1", "confirmPassword": "brandnew1"},
        )
        assert reset.status_code == 200, reset.text
        login = await client.post("/api/v1/sellers/signin", json={"email": body["email"], "password": "brandnew1"})
        assert login.status_code == 200
