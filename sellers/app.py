"""``create_app``: the sellers service (the account-service wiring of ``shared.account_app``
plus the ``seller_status`` outbox kind that tells products)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from sellers.api import router
from sellers.domain import SELLER_STATUS_KIND, Sellers
from sellers.repository import SellerRepository
from sellers.settings import SellersSettings
from shared.account_app import create_account_app
from shared.store import DocumentStore


def create_app(
    settings: SellersSettings | None = None,
    *,
    store: DocumentStore | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The sellers service app. ``store`` and ``transports`` let tests wire real parts."""
    return create_account_app(
        settings or SellersSettings(),
        service="sellers",
        database="sellers_db",
        routers=[router],
        repository=SellerRepository,
        domain=Sellers,
        state_name="sellers",
        store=store,
        transports=transports,
        handlers=lambda sellers: {SELLER_STATUS_KIND: lambda row: sellers.build_seller_status(row=row)},  # type: ignore[attr-defined]
    )
