"""The gateway in front of the orders app, both real servers on loopback ports: the frontend's
paths reach orders (`/api/orders/cart`, `/api/orders/orders/place`) and the seller client's
`GET /api/orders?sellerId=undefined` (which the gateway forwards as `GET /api/v1?sellerId=…`)
answers the seller's orders."""

from __future__ import annotations

from contextlib import asynccontextmanager

from shared.testing import uvicorn_served
from tests.gateway.conftest import start_gateway  # noqa: F401  (the real gateway fixture)
from tests.orders.conftest import ADDRESS


@asynccontextmanager
async def served(app):
    """``app`` behind a real uvicorn server on a free port (its lifespan is already running)."""
    async with uvicorn_served(app, access_log=False) as port:
        yield f"http://127.0.0.1:{port}"


async def test_gateway_routes_the_frontend_paths_to_orders(shop, seller, customer, start_gateway):  # noqa: F811
    product = await shop.new_product(seller, price=7, stock=3)
    async with served(shop.app) as url:
        gw = await start_gateway(ORDERS_SERVICE_URL=url)
        async with gw.client() as client:
            empty = await client.get("/api/orders/cart", headers=customer.headers)
            assert empty.status_code == 200 and empty.headers["x-service-name"] == "orders"
            assert empty.json()["data"]["items"] == []
            added = await client.post(
                "/api/orders/cart/add", json={"productId": product, "quantity": 2}, headers=customer.headers
            )
            assert added.status_code == 200 and added.json()["data"]["totalAmount"] == 14.0
            placed = await client.post(
                "/api/orders/orders/place",
                json={"shippingAddress": ADDRESS, "paymentMethod": "COD"},
                headers={**customer.headers, "Idempotency-Key": "gw-1"},
            )
            assert placed.status_code == 201, placed.text
            dashboard = await client.get("/api/orders?sellerId=undefined", headers=seller.headers)
            assert dashboard.status_code == 200, dashboard.text
            body = dashboard.json()
            assert [o["id"] for o in body["data"]] == [placed.json()["data"]["id"]]
            assert body["pagination"]["total"] == 1 and body["data"][0]["sellerView"] is True
            mine = await client.get(f"/api/orders?sellerId={seller.id}", headers=seller.headers)
            assert mine.json()["data"] == body["data"]
            status = await client.get("/api/status")
            orders_status = status.json()["services"]["orders"]
            assert orders_status["status"] == "healthy", orders_status
