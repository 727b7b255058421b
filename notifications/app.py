"""``create_app(settings)``: the notifications app with its database, renderer, worker and routes."""

from __future__ import annotations

import asyncio
import logging
import socket

from fastapi import FastAPI

from notifications import db
from notifications.api import router
from notifications.crypto import PasswordBox
from notifications.domain import DeliveryMetrics, Notifier
from notifications.rendering import Renderer
from notifications.repository import Repository
from notifications.schemas import parse_smtp
from notifications.settings import NotificationsSettings
from notifications.worker import RetryWorker
from shared.app import create_service_app
from shared.responses import ValidationFailed

log = logging.getLogger("notifications")


class StartupError(RuntimeError):
    """The service cannot start with this configuration."""


async def _local_hostname() -> str:
    """The EHLO name: the machine's FQDN, looked up once (bounded: DNS may be unreachable)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(socket.getfqdn), timeout=2.0)
    except (TimeoutError, OSError):
        return socket.gethostname() or "localhost"


async def apply_smtp_environment(notifier: Notifier, settings: NotificationsSettings) -> None:
    """R8: with ``SMTP_HOST`` set and no stored settings, store the ``SMTP_*`` ones; bad values stop the start."""
    if not settings.SMTP_HOST or await notifier.repo.get_smtp() is not None:
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
    await notifier.save_smtp(data, only_if_empty=True)
    log.info("SMTP settings created from the environment (host %s, port %s)", data.host, data.port)


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()

    async def startup(app: FastAPI) -> None:
        conn = await db.connect(settings.database_path)
        try:
            applied = await db.migrate(conn)
            if applied:
                log.info("database %s: applied migrations %s", settings.database_path, applied)
            settings.outbox_dir.mkdir(parents=True, exist_ok=True)
            notifier = Notifier(
                settings=settings,
                repo=Repository(conn),
                renderer=Renderer(),
                box=PasswordBox(settings.NOTIFICATIONS_SECRET),
                metrics=app.state.delivery_metrics,
                local_hostname=settings.SMTP_LOCAL_HOSTNAME or await _local_hostname(),
            )
            await apply_smtp_environment(notifier, settings)
            await notifier.refresh_pending_gauge()
        except BaseException:
            await conn.close()
            raise
        worker = RetryWorker(
            notifier, interval=settings.NOTIFY_WORKER_INTERVAL_SECONDS, batch=settings.NOTIFY_WORKER_BATCH
        )
        app.state.db, app.state.notifier, app.state.worker = conn, notifier, worker
        worker.start()

    async def shutdown(app: FastAPI) -> None:
        await app.state.worker.stop()
        await app.state.db.close()

    async def health() -> dict[str, object]:
        try:
            pending, has_smtp = await app.state.notifier.repo.health()
        except Exception:
            return {"healthy": False, "database": "disconnected"}
        return {"database": "connected", "transport": "smtp" if has_smtp else "file", "pending": pending}

    app = create_service_app(
        settings,
        service="notifications",
        routers=[router],
        health_check=health,
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
    app.state.delivery_metrics = DeliveryMetrics(app.state.metrics_registry)

    return app
