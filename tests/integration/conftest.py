"""A real SMTP server (aiosmtpd) and the real notifications app delivering to it."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from notifications.app import create_app as create_notifications
from notifications.settings import NotificationsSettings
from shared.testing import free_port, running

KEY = "test-service-key"


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def texts(self) -> list[str]:
        return [m.get_body(("plain",)).get_content() for m in self.messages]


@pytest.fixture
def inbox() -> AsyncIterator[Inbox]:
    box = Inbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    box.port = smtp.port  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        smtp.stop()


@pytest.fixture
async def notifications(tmp_path, inbox: Inbox) -> AsyncIterator[FastAPI]:
    """The notifications app running, configured to deliver to ``inbox`` over SMTP."""
    app = create_notifications(
        NotificationsSettings(
            _env_file=None,
            DATA_DIR=str(tmp_path / "notifications"),
            SERVICE_KEY=KEY,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(inbox.port),  # type: ignore[attr-defined]
            SMTP_ENCRYPTION="none",
            SMTP_FROM_EMAIL="shop@example.com",
            SMTP_LOCAL_HOSTNAME="tests.local",
            LOG_LEVEL="warning",
        )
    )
    async with running(app):
        yield app
