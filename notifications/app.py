"""``create_app``: wires settings, database, renderer, domain, retry worker and routes."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from notifications.api import router
from notifications.crypto import PasswordBox
from notifications.db import Database
from notifications.deps import SERVICE_KEY_MESSAGE
from notifications.domain import DeliveryMetrics, Notifier
from notifications.rendering import Renderer
from notifications.repository import Repository
from notifications.schemas import NOT_AN_OBJECT
from notifications.settings import NotificationsSettings
from notifications.smtp_setup import StartupError, apply_smtp_environment, local_hostname
from notifications.worker import RetryWorker
from shared.app import create_service_app
from shared.auth import SERVICE_KEY_HEADER, check_service_key
from shared.responses import AppError, error_response, validation_errors

__all__ = ["StartupError", "create_app"]

log = logging.getLogger("notifications")

_WHOLE_BODY_ERRORS = {"json_invalid", "missing", "model_attributes_type", "dict_type", "model_type"}


def create_app(
    settings: NotificationsSettings | None = None,
    *,
    store: Database | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The notifications app. ``store`` is its SQLite database (default ``DATA_DIR/notifications.db``);
    ``transports`` is accepted for the common shape and unused: this service calls no other
    service (its only outgoing connection is SMTP)."""
    settings = settings or NotificationsSettings()
    database = store or Database(settings.database_path)
    repo = Repository(database)
    renderer = Renderer(seconds=settings.NOTIFY_RENDER_TIMEOUT_SECONDS)

    async def startup(app: FastAPI) -> None:
        applied = await database.open()
        if applied:
            log.info("database %s: applied migrations %s", settings.database_path, applied)
        try:
            settings.outbox_dir.mkdir(parents=True, exist_ok=True)
            notifier.local_hostname = await local_hostname(settings)
            await apply_smtp_environment(notifier, settings)
            await notifier.refresh_pending_gauge()
        except BaseException:
            await database.close()
            raise
        worker.start()

    async def shutdown(app: FastAPI) -> None:
        await worker.stop()
        renderer.close()
        await database.close()

    async def health() -> dict[str, object]:
        try:
            pending, has_smtp = await repo.health()
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
    notifier = Notifier(
        settings=settings,
        repo=repo,
        renderer=renderer,
        box=PasswordBox(settings.NOTIFICATIONS_SECRET),
        metrics=DeliveryMetrics(app.state.metrics_registry),
    )
    worker = RetryWorker(notifier, interval=settings.NOTIFY_WORKER_INTERVAL_SECONDS, batch=settings.NOTIFY_WORKER_BATCH)
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.state.db, app.state.notifier, app.state.worker = database, notifier, worker
    return app


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The contract's order is auth, then body: a bad body from a caller without a valid key is
    still 401/403. A body that is no JSON object at all (malformed, empty, ``null``, an array)
    answers the contract's ``Body must be a JSON object``; anything else the shared translation."""
    try:
        check_service_key(
            request.app.state.settings,
            request.headers.get(SERVICE_KEY_HEADER),
            missing_message=SERVICE_KEY_MESSAGE,
            invalid_message=SERVICE_KEY_MESSAGE,
        )
    except AppError as refused:
        return error_response(refused.status_code, refused.message)
    whole_body = any(
        err.get("type") in _WHOLE_BODY_ERRORS and tuple(err.get("loc", ())) == ("body",)
        or err.get("type") == "json_invalid"
        for err in exc.errors()
    )
    if whole_body:
        return error_response(400, "Validation error", errors=[{"field": "body", "message": NOT_AN_OBJECT}])
    message, errors = validation_errors(exc)
    return error_response(400, message, errors=errors)
