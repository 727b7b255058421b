"""``create_app``: wires settings, store, outbox, clients and routes of the customer service."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from customer.api import router
from customer.domain import EMAIL_KIND, MEDIA_KIND, Customers
from customer.repository import CustomerRepository
from customer.settings import CustomerSettings
from shared.app import create_service_app
from shared.clients import ServiceClients
from shared.outbox import Outbox
from shared.ratelimit import RateLimiter
from shared.store import DocumentStore, open_store


def create_app(
    settings: CustomerSettings | None = None,
    *,
    store: DocumentStore | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The customer service app. ``store`` and ``transports`` let tests wire real parts."""
    settings = settings or CustomerSettings()
    store = store or open_store(mongodb_uri=settings.MONGODB_URI, data_dir=settings.DATA_DIR, database="customer_db")
    clients = ServiceClients(settings, transports=transports)
    repo = CustomerRepository(store)
    outbox = Outbox(store, clients, poll_seconds=settings.OUTBOX_POLL_SECONDS)
    customers = Customers(repo=repo, outbox=outbox, settings=settings)
    outbox.register(EMAIL_KIND, customers.build_email)
    outbox.register(MEDIA_KIND, customers.build_media_mark_used)

    async def startup(app: FastAPI) -> None:
        await store.connect()
        await repo.create_indexes()
        await outbox.create_indexes()
        await outbox.start()

    async def shutdown(app: FastAPI) -> None:
        await outbox.stop()
        await clients.aclose()
        await store.close()

    app = create_service_app(
        settings,
        service="customer",
        routers=[router],
        health_check=store.ping,
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
    app.state.store = store
    app.state.clients = clients
    app.state.outbox = outbox
    app.state.customers = customers
    app.state.rate_limiter = RateLimiter.from_settings(settings, prefix="customer")
    return app
