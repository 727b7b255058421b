"""Sellers and products wired together in-process: an admin's deactivation of a seller
reaches the real products app through the sellers outbox and hides the seller's products;
reactivation brings them back. The seller's own token (issued by sellers) manages products."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from fastapi import FastAPI

from products.app import create_app as create_products
from sellers.app import create_app as create_sellers
from shared.auth import issue_token
from shared.testing import lifespan_client, running
from tests.products.conftest import settings_for as products_settings
from tests.sellers.conftest import HEADERS_KEY, bearer, seller_body, settle
from tests.sellers.conftest import settings_for as sellers_settings


@pytest.fixture
async def wired(tmp_path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, FastAPI, httpx.AsyncClient]]:
    """The real products and sellers apps running, sellers delivering to products in-process."""
    products_app = create_products(products_settings(tmp_path / "products"))
    async with lifespan_client(products_app) as products:
        sellers_app = create_sellers(
            sellers_settings(tmp_path / "sellers"),
            transports={"products": httpx.ASGITransport(app=products_app)},
        )
        async with running(sellers_app), lifespan_client(sellers_app) as sellers:
            yield products_app, products, sellers_app, sellers


async def public_names(products: httpx.AsyncClient) -> list[str]:
    response = await products.get("/api/v1/products")
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["data"]]


async def test_deactivated_sellers_products_vanish_and_return(wired):
    products_app, products, sellers_app, sellers = wired
    signup = await sellers.post("/api/v1/sellers/signup", json=seller_body(1))
    assert signup.status_code == 201, signup.text
    token = signup.json()["data"]["token"]
    created = await products.post(
        "/api/v1/products",
        json={"name": "Desk Lamp", "price": 25.5, "category": "home", "stock": 4},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    seller_id = created.json()["data"]["sellerId"]
    assert await public_names(products) == ["Desk Lamp"]

    off = await sellers.patch(
        f"/api/v1/sellers/admin/{seller_id}/status", json={"isActive": False}, headers=HEADERS_KEY
    )
    assert off.status_code == 200 and off.json()["data"]["productsSynced"] is True
    assert await public_names(products) == []

    on = await sellers.patch(
        f"/api/v1/sellers/admin/{seller_id}/status", json={"isActive": True}, headers=HEADERS_KEY
    )
    assert on.status_code == 200
    assert await public_names(products) == ["Desk Lamp"]


async def test_a_recorded_token_version_revokes_older_seller_tokens(wired):
    """The products side of issue 11 item 6: once the sellers service records a newer token
    version here (``seller-status`` with ``tokenVersion``), the seller's older token — issued by
    the real sellers app — is refused on product writes; a token of that version works."""
    products_app, products, sellers_app, sellers = wired
    signup = await sellers.post("/api/v1/sellers/signup", json=seller_body(2))
    assert signup.status_code == 201, signup.text
    token = signup.json()["data"]["token"]
    body = {"name": "Desk Lamp", "price": 25.5}
    created = await products.post("/api/v1/products", json=body, headers=bearer(token))
    assert created.status_code == 201, created.text
    seller_id = created.json()["data"]["sellerId"]
    claims = jwt.decode(token, options={"verify_signature": False})
    newer = int(claims.get("ver", 0)) + 1
    recorded = await products.post(
        "/api/v1/service/products/seller-status",
        json={"sellerId": seller_id, "isActive": True, "tokenVersion": newer},
        headers={"X-Service-Key": products_app.state.settings.service_keys[0]},
    )
    assert recorded.status_code == 200
    refused = await products.post("/api/v1/products", json=body, headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["message"] == "Invalid token"
    settings = products_app.state.settings
    fresh, _ = issue_token(settings, subject=seller_id, role="seller", email="s@example.com", version=newer)
    assert (await products.post("/api/v1/products", json=body, headers=bearer(fresh))).status_code == 201


async def test_old_seller_token_refused_on_product_writes_after_password_change(wired):
    """Issue 11 item 6: the password change bumps the seller's token version, sellers carry
    it to products through the outbox (seller-status), and products refuses older tokens."""
    products_app, products, sellers_app, sellers = wired
    sellers.app = sellers_app  # type: ignore[attr-defined]  (settle reads the outbox)
    signup = await sellers.post("/api/v1/sellers/signup", json=seller_body(2))
    assert signup.status_code == 201, signup.text
    old = signup.json()["data"]["token"]
    product = {"name": "Desk Lamp", "price": 25.5, "category": "home", "stock": 4}
    created = await products.post("/api/v1/products", json=product, headers=bearer(old))
    assert created.status_code == 201, created.text

    body = {"currentPassword": "secret123", "newPassword": "newpass123", "confirmPassword": "newpass123"}
    changed = await sellers.put("/api/v1/sellers/change-password", json=body, headers=bearer(old))
    assert changed.status_code == 200, changed.text
    await settle(sellers)
    row = await sellers_app.state.outbox.rows.find_one({"kind": "seller_status"})
    assert row["status"] == "sent"

    refused = await products.post("/api/v1/products", json={**product, "name": "Old"}, headers=bearer(old))
    assert refused.status_code == 401, refused.text
    new = changed.json()["data"]["token"]
    accepted = await products.post("/api/v1/products", json={**product, "name": "New"}, headers=bearer(new))
    assert accepted.status_code == 201, accepted.text
