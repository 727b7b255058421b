"""``create_app``: wires settings, store, outbox, clients and routes of the sellers service."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from sellers.api import router
from sellers.domain import EMAIL_KIND, MEDIA_KIND, SELLER_STATUS_KIND, Sellers
from sellers.repository import SellerRepository
from sellers.settings import SellersSettings
from shared.app import create_service_app
from shared.clients import ServiceClients
from shared.outbox import Outbox
from shared.ratelimit import RateLimiter
from shared.store import DocumentStore, open_store


def create_app(
    settings: SellersSettings | None = None,
    *,
    store: DocumentStore | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The sellers service app. ``store`` and ``transports`` let tests wire real parts."""
    settings = settings or SellersSettings()
    store = store or open_store(mongodb_uri=settings.MONGODB_URI, data_dir=settings.DATA_DIR, database="sellers_db")
    clients = ServiceClients(settings, transports=transports)
    repo = SellerRepository(store)
    outbox = Outbox(store, clients, poll_seconds=settings.OUTBOX_POLL_SECONDS)
    sellers = Sellers(repo=repo, outbox=outbox, settings=settings)
    outbox.register(EMAIL_KIND, sellers.build_email)
    outbox.register(SELLER_STATUS_KIND, sellers.build_seller_status)
    outbox.register(MEDIA_KIND, sellers.build_media_mark_used)

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
        service="sellers",
        routers=[router],
        health_check=store.ping,
        on_startup=[startup],
        on_shutdown=[shutdown],
    )
    app.state.store = store
    app.state.clients = clients
    app.state.outbox = outbox
    app.state.sellers = sellers
    app.state.rate_limiter = RateLimiter.from_settings(settings, prefix="sellers")
    return app
