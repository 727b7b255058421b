"""``create_app``: wires settings, store, clients, outbox, cart, domain, background tasks and routes."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from orders.api import router
from orders.cart import Cart
from orders.domain import Orders
from orders.effects import OrderEffects
from orders.repository import OrdersRepository
from orders.settings import OrdersSettings
from orders.upstream import Customers, Products, Sellers
from shared.app import create_service_app
from shared.clients import ServiceClients
from shared.outbox import Outbox
from shared.store import DocumentStore, open_store


def create_app(
    settings: OrdersSettings | None = None,
    *,
    store: DocumentStore | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The orders service app. ``store`` and ``transports`` let tests wire real parts."""
    settings = settings or OrdersSettings()
    store = store or open_store(mongodb_uri=settings.MONGODB_URI, data_dir=settings.DATA_DIR, database="orders_db")
    clients = ServiceClients(settings, transports=transports, timeout=settings.UPSTREAM_TIMEOUT_SECONDS)
    outbox = Outbox(store, clients, poll_seconds=settings.OUTBOX_POLL_SECONDS)
    repo = OrdersRepository(store, outbox.rows)
    timeout = settings.UPSTREAM_TIMEOUT_SECONDS
    products = Products(clients, timeout=timeout, inventory_timeout=settings.INVENTORY_TIMEOUT_SECONDS)
    effects = OrderEffects(repo=repo, outbox=outbox, sellers=Sellers(clients, timeout=timeout))
    cart = Cart(repo=repo, products=products)
    orders = Orders(
        repo=repo,
        cart=cart,
        products=products,
        customers=Customers(clients, timeout=timeout),
        effects=effects,
        settings=settings,
    )

    app = create_service_app(
        settings,
        service="orders",
        routers=[router],
        store=store,
        parts=[repo, outbox, orders],
        closing=[clients],
    )
    app.state.clients = clients
    app.state.outbox = outbox
    app.state.repo = repo
    app.state.cart = cart
    app.state.orders = orders
    return app
