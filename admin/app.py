"""``create_app``: wires settings, store, outbox, clients, the proxy and routes of the admin service."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from admin import errors
from admin.api import router
from admin.domain import EMAIL_KIND, PROXY_SERVICES, Admins, BootstrapRefused
from admin.proxy import AdminProxy
from admin.repository import AdminRepository
from admin.settings import AdminSettings
from shared.app import create_service_app
from shared.clients import ServiceClient, ServiceClients
from shared.outbox import Outbox
from shared.ratelimit import RouteLimits
from shared.store import DocumentStore, open_store

log = logging.getLogger("admin.app")


def create_app(
    settings: AdminSettings | None = None,
    *,
    store: DocumentStore | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The admin service app. ``store`` and ``transports`` (by service name, ``gateway``
    included) let tests wire real parts in-process."""
    settings = settings or AdminSettings()
    store = store or open_store(mongodb_uri=settings.MONGODB_URI, data_dir=settings.DATA_DIR, database="admin_db")
    transports = dict(transports or {})
    clients = ServiceClients(settings, transports=transports)
    gateway = ServiceClient(
        "gateway",
        "http://gateway" if "gateway" in transports else settings.GATEWAY_URL,
        service_key=settings.outgoing_service_key,
        transport=transports.get("gateway"),
    )
    repo = AdminRepository(store)
    outbox = Outbox(store, clients, poll_seconds=settings.OUTBOX_POLL_SECONDS)
    admins = Admins(repo=repo, outbox=outbox, settings=settings)
    outbox.register(EMAIL_KIND, admins.build_reset_email)
    proxy = AdminProxy(settings=settings, admins=admins, transports=transports)

    def health_targets() -> dict[str, tuple[ServiceClient, str]]:
        targets = {name: (clients.get(name), settings.service_url(name)) for name in PROXY_SERVICES}
        targets["gateway"] = (gateway, settings.GATEWAY_URL.rstrip("/"))
        return targets

    async def bootstrap(app: FastAPI) -> None:
        try:
            await admins.bootstrap()
        except BootstrapRefused as refused:
            log.error("refusing to start: %s", refused.reason)
            raise  # the lifespan closes what it opened

    app = create_service_app(
        settings,
        service="admin",
        routers=[router],
        store=store,
        parts=[repo, outbox],
        closing=[clients, gateway, proxy],
        on_startup=[bootstrap],
        raw_body_paths=["/api/v1/proxy/"],
    )
    errors.install(app)
    app.state.clients = clients
    app.state.outbox = outbox
    app.state.admins = admins
    app.state.proxy = proxy
    app.state.health_targets = health_targets
    RouteLimits(
        max_hits=settings.LOGIN_RATE_LIMIT_MAX,
        window_seconds=math.ceil(settings.LOGIN_RATE_LIMIT_WINDOW_MS / 1000),
        redis_url=settings.REDIS_URL,
        prefix="admin-login",
    ).install(app)
    return app
