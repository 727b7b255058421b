"""Answers match what the OpenAPI document publishes: every route's response model validates
the real answers of a full flow (strict types), and the document lists its query parameters
and the bodies of ``service/products/bulk`` and ``service/products/stock``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from products.schemas import (
    AnalyticsPublic,
    AvailabilityPublic,
    BulkProductPublic,
    ConfirmPublic,
    HistoryPagePublic,
    InventoryPublic,
    MovementsPublic,
    ProductPagePublic,
    ProductPublic,
    ReleasePublic,
    ReservationPublic,
    SellerInventoryPublic,
    SellerProductsPublic,
    StatsPublic,
    StockChangePublic,
    StockSetPublic,
)
from shared.responses import Envelope, PagedEnvelope
from tests.products.conftest import API, SVC, create_product, reserve


def check(model: type[BaseModel], response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body = response.json()
    model.model_validate(body, strict=True)
    return body


async def test_answers_validate_against_their_documented_models(client, seller, media):
    image = media.new_image()
    p = await create_product(
        client, seller, images=[{"media_id": image}], specifications={"Brand": "X", "Watts": 40}, tags=["lamp"]
    )
    pid = p["id"]
    check(Envelope[ProductPublic], await client.get(f"{API}/products/{pid}"))
    check(PagedEnvelope[ProductPublic], await client.get(f"{API}/products", params={"search": "phone"}))
    check(
        Envelope[SellerProductsPublic], await client.get(f"{API}/products/seller/{seller.id}", headers=seller.headers)
    )
    check(Envelope[ProductPagePublic], await client.get(f"{API}/products/admin", headers=SVC))
    check(
        Envelope[StockSetPublic],
        await client.put(f"{API}/products/{pid}/stock", json={"stock": 20}, headers=seller.headers),
    )
    reserved = await reserve(client, "ord-doc", [(pid, 2)])
    check(Envelope[ReservationPublic], reserved)
    check(Envelope[ReservationPublic], await reserve(client, "ord-doc", [(pid, 2)]))
    check(Envelope[InventoryPublic], await client.get(f"{API}/products/{pid}/inventory", headers=seller.headers))
    confirm = await client.post(f"{API}/service/inventory/confirm", json={"orderId": "ord-doc"}, headers=SVC)
    check(Envelope[ConfirmPublic], confirm)
    check(Envelope[AnalyticsPublic], await client.get(f"{API}/products/seller/{seller.id}/analytics", headers=SVC))
    release = await client.post(f"{API}/service/inventory/release", json={"orderId": "ord-doc"}, headers=SVC)
    check(Envelope[ReleasePublic], release)
    check(Envelope[HistoryPagePublic], await client.get(f"{API}/products/{pid}/history", headers=SVC))
    check(Envelope[MovementsPublic], await client.get(f"{API}/products/{pid}/inventory/movements", headers=SVC))
    check(Envelope[SellerInventoryPublic], await client.get(f"{API}/inventory/seller/{seller.id}", headers=SVC))
    bulk = await client.post(f"{API}/service/products/bulk", json={"productIds": [pid]}, headers=SVC)
    check(Envelope[list[BulkProductPublic]], bulk)
    stock = await client.put(
        f"{API}/service/products/stock", json={"updates": [{"productId": pid, "stockChange": 3}]}, headers=SVC
    )
    check(Envelope[list[StockChangePublic]], stock)
    body = {"items": [{"productId": pid, "quantity": 1}]}
    check(
        Envelope[AvailabilityPublic],
        await client.post(f"{API}/service/inventory/check-availability", json=body, headers=SVC),
    )
    check(Envelope[StatsPublic], await client.get(f"{API}/service/products/stats", headers=SVC))


async def test_document_declares_queries_and_service_bodies(client):
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    listed = {p["name"] for p in paths["/api/v1/products"]["get"]["parameters"]}
    assert {"page", "limit", "category", "subcategory", "sellerId", "search", "minPrice", "maxPrice", "status",
            "sortBy", "sortOrder", "sort"} <= listed  # fmt: skip
    for path, method in (("/api/v1/service/products/bulk", "post"), ("/api/v1/service/products/stock", "put")):
        operation = paths[path][method]
        assert "requestBody" in operation, path
        assert {"400", "401", "403"} <= set(operation["responses"]), path
        assert "422" not in operation["responses"]
    stock_change = document["components"]["schemas"]["StockDeltaIn"]["properties"]["stockChange"]
    assert stock_change["maximum"] == 1_000_000_000 and stock_change["minimum"] == -1_000_000_000
