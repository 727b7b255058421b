"""``create_app``: the customer service (the account-service wiring of ``shared.account_app``)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from customer.api import router
from customer.domain import Customers
from customer.repository import CustomerRepository
from customer.settings import CustomerSettings
from shared.account_app import create_account_app
from shared.store import DocumentStore


def create_app(
    settings: CustomerSettings | None = None,
    *,
    store: DocumentStore | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The customer service app. ``store`` and ``transports`` let tests wire real parts."""
    return create_account_app(
        settings or CustomerSettings(),
        service="customer",
        database="customer_db",
        routers=[router],
        repository=CustomerRepository,
        domain=Customers,
        state_name="customers",
        store=store,
        transports=transports,
    )
