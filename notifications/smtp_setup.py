"""Start-up SMTP set-up: the EHLO name and R8 (SMTP settings from the environment)."""

from __future__ import annotations

import asyncio
import logging
import socket

from notifications.domain import Notifier
from notifications.schemas import parse_smtp
from notifications.settings import NotificationsSettings
from shared.responses import ValidationFailed

log = logging.getLogger("notifications")


class StartupError(RuntimeError):
    """The service cannot start with this configuration."""


async def local_hostname(settings: NotificationsSettings) -> str:
    """The EHLO name: ``SMTP_LOCAL_HOSTNAME``, else the machine's FQDN looked up once (bounded:
    DNS may be unreachable)."""
    if settings.SMTP_LOCAL_HOSTNAME:
        return settings.SMTP_LOCAL_HOSTNAME
    try:
        return await asyncio.wait_for(asyncio.to_thread(socket.getfqdn), timeout=2.0)
    except (TimeoutError, OSError):
        return socket.gethostname() or "localhost"


async def apply_smtp_environment(notifier: Notifier, settings: NotificationsSettings) -> None:
    """R8: with ``SMTP_HOST`` set and no stored settings, store the ``SMTP_*`` ones; bad values stop the start."""
    if not settings.SMTP_HOST or await notifier.has_smtp():
        return
    try:
        data = parse_smtp(
            {
                "host": settings.SMTP_HOST,
                "port": settings.SMTP_PORT,
                "username": settings.SMTP_USERNAME,
                "password": settings.SMTP_PASSWORD,
                "encryption": settings.SMTP_ENCRYPTION,
                "from_email": settings.SMTP_FROM_EMAIL,
                "from_name": settings.SMTP_FROM_NAME,
            }
        )
    except ValidationFailed as exc:
        problems = "; ".join(f"SMTP_{e['field'].upper()}: {e['message']}" for e in exc.errors or [])
        raise StartupError(f"Invalid SMTP settings in the environment: {problems}") from None
    await notifier.save_smtp(data=data, only_if_empty=True)
    log.info("SMTP settings created from the environment (host %s, port %s)", data.host, data.port)
