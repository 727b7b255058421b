"""``create_app``: wires settings, store, media client, domain, reservation cleanup and routes."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from products.api import router
from products.domain import Catalogue
from products.inventory import Inventory
from products.repository import ProductRepository
from products.settings import ProductsSettings
from shared.app import create_service_app
from shared.clients import ServiceClients
from shared.store import DocumentStore, open_store


def create_app(
    settings: ProductsSettings | None = None,
    *,
    store: DocumentStore | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The products service app. ``store`` and ``transports`` let tests wire real parts."""
    settings = settings or ProductsSettings()
    store = store or open_store(mongodb_uri=settings.MONGODB_URI, data_dir=settings.DATA_DIR, database="products_db")
    clients = ServiceClients(settings, transports=transports, timeout=settings.MEDIA_TIMEOUT_SECONDS)
    repo = ProductRepository(store)
    catalogue = Catalogue(repo=repo, clients=clients, settings=settings)
    inventory = Inventory(repo=repo, catalogue=catalogue, settings=settings)

    async def migrate(app: FastAPI) -> None:
        await repo.migrate_history_types()

    app = create_service_app(
        settings,
        service="products",
        routers=[router],
        store=store,
        parts=[repo, catalogue, inventory],  # catalogue: the search-key backfill task
        closing=[clients],
        on_startup=[migrate],
    )
    app.state.clients = clients
    app.state.repo = repo
    app.state.catalogue = catalogue
    app.state.inventory = inventory
    return app
