"""Service endpoints: keys, seller status, bulk, stats, analytics, record-sale (checklist 31–34)."""

from __future__ import annotations

from tests.products.conftest import API, SVC, create_product, get_product, reserve, token_for

SERVICE = f"{API}/service"

SERVICE_CALLS = [
    ("POST", "products/bulk"),
    ("POST", "products/validate-seller"),
    ("POST", "products/record-sale"),
    ("PUT", "products/stock"),
    ("POST", "inventory/check-availability"),
    ("POST", "products/inventory-check"),
    ("POST", "inventory/reserve"),
    ("POST", "inventory/confirm"),
    ("POST", "inventory/release"),
    ("POST", "inventory/cleanup-expired"),
    ("POST", "products/seller-status"),
    ("GET", "products/stats"),
    ("POST", "inventory/initialize-all"),
    ("POST", "inventory/sync-products"),
]


async def test_service_endpoints_need_the_key(client):
    for method, path in SERVICE_CALLS:
        missing = await client.request(method, f"{SERVICE}/{path}", json={})
        assert missing.status_code == 401, path
        wrong = await client.request(method, f"{SERVICE}/{path}", json={}, headers={"X-Service-Key": "wrong"})
        assert wrong.status_code == 403, path


async def test_deactivated_seller_products_vanish_and_return(client, seller):
    a = await create_product(client, seller, name="A", stock=5)
    b = await create_product(client, seller, name="B", stock=5, status="inactive")
    url = f"{SERVICE}/products/seller-status"
    off = await client.post(url, json={"sellerId": seller.id, "isActive": False}, headers=SVC)
    assert off.status_code == 200 and off.json()["message"] == "Seller products status updated"
    assert off.json()["data"] == {"sellerId": seller.id, "isActive": False, "modifiedCount": 2}
    assert (await client.get(f"{API}/products")).json()["data"] == []
    assert (await client.get(f"{API}/products/{a['id']}")).status_code == 404
    assert (await client.get(f"{API}/products", params={"search": "A"})).json()["data"] == []
    bulk = await client.post(f"{SERVICE}/products/bulk", json={"productIds": [a["id"]]}, headers=SVC)
    assert bulk.json()["data"] == []
    blocked = await reserve(client, "ord-hidden", [(a["id"], 1)])
    assert blocked.status_code == 409 and blocked.json()["data"]["failed"][0]["reason"] == "Product not available"
    owner = (await client.get(f"{API}/products/seller/{seller.id}", headers=seller.headers)).json()["data"]
    assert {p["id"] for p in owner["products"]} == {a["id"], b["id"]}
    assert (await client.get(f"{API}/products/{a['id']}", headers=seller.headers)).status_code == 200
    assert (await client.get(f"{API}/products/seller/{seller.id}")).json()["data"]["products"] == []
    # Writes by a deactivated seller are refused although its token is still valid.
    denied = await client.post(f"{API}/products", json={"name": "New", "price": 1}, headers=seller.headers)
    assert denied.status_code == 403 and denied.json()["message"] == "Seller account is deactivated"
    for method, path, body in (
        ("PUT", f"products/{a['id']}", {"price": 1}),
        ("PUT", f"products/{a['id']}/stock", {"stock": 1}),
        ("PUT", f"products/{a['id']}/inventory/adjust", {"newStock": 9}),
        ("DELETE", f"products/{a['id']}", None),
    ):
        response = await client.request(method, f"{API}/{path}", json=body, headers=seller.headers)
        assert response.status_code == 403 and response.json()["message"] == "Seller account is deactivated", path
    on = await client.post(url, json={"sellerId": seller.id, "isActive": True}, headers=SVC)
    assert on.json()["data"]["modifiedCount"] == 2
    assert [p["id"] for p in (await client.get(f"{API}/products")).json()["data"]] == [a["id"]]
    assert (await client.get(f"{API}/products/{a['id']}")).status_code == 200
    assert (await reserve(client, "ord-back", [(a["id"], 1)])).status_code == 200
    after = await get_product(client, a["id"])
    assert after["stock"] == 4 and after["name"] == "A" and after["status"] == "active"
    assert (await client.post(url, json={"sellerId": "bad", "isActive": True}, headers=SVC)).status_code == 400
    assert (await client.post(url, json={"sellerId": seller.id}, headers=SVC)).status_code == 400


async def test_products_of_a_seller_known_inactive_are_created_hidden(client, seller):
    await client.post(f"{SERVICE}/products/seller-status", json={"sellerId": seller.id, "isActive": False}, headers=SVC)
    await client.post(f"{SERVICE}/products/seller-status", json={"sellerId": seller.id, "isActive": True}, headers=SVC)
    p = await create_product(client, seller)
    assert p["sellerActive"] is True


async def test_stats(client, seller):
    await create_product(client, seller, stock=0)
    await create_product(client, seller, stock=2)
    await create_product(client, seller, stock=50)
    await create_product(client, seller, stock=0, status="inactive")
    deleted = await create_product(client, seller, stock=0)
    await client.delete(f"{API}/products/{deleted['id']}", headers=seller.headers)
    response = await client.get(f"{SERVICE}/products/stats", headers=SVC)
    assert response.json()["message"] == "Product stats retrieved successfully"
    assert response.json()["data"] == {"total": 4, "active": 3, "outOfStock": 1, "lowStock": 1}
    admin = await client.get(f"{SERVICE}/products/stats", headers=token_for(client, "a" * 24, "admin"))
    assert admin.status_code == 200
    assert (await client.get(f"{SERVICE}/products/stats", headers=seller.headers)).status_code == 403


async def test_analytics(client, seller, other_seller):
    phone = await create_product(client, seller, name="Phone X1", price=99.99, stock=50)
    case = await create_product(client, seller, name="Case", price=10, stock=6, category="accessories")
    await reserve(client, "o-1", [(phone["id"], 3), (case["id"], 1)])
    await reserve(client, "o-2", [(phone["id"], 1)])
    for order in ("o-1", "o-2"):
        await client.post(f"{SERVICE}/inventory/confirm", json={"orderId": order}, headers=SVC)
    url = f"{API}/products/seller/{seller.id}/analytics"
    assert (await client.get(url, headers=other_seller.headers)).status_code == 403
    response = await client.get(url, headers=seller.headers)
    assert response.status_code == 200 and response.json()["message"] == "Analytics retrieved successfully"
    data = response.json()["data"]
    summary = data["summary"]
    assert data["period"] == 30
    assert summary["totalSold"] == 5 and summary["totalRevenue"] == 409.96 and summary["orderCount"] == 2
    assert summary["totalProducts"] == 2 and summary["activeProducts"] == 2 and summary["lowStockProducts"] == 1
    assert data["topProducts"][0] == {"productId": phone["id"], "name": "Phone X1", "unitsSold": 4, "revenue": 399.96}
    assert data["lowStockProducts"] == [{"productId": case["id"], "name": "Case", "stock": 5, "lowStockAlert": 5}]
    assert len(data["recentSales"]) == 3 and data["salesAnalytics"][0]["totalSales"] == 5
    assert {c["id"]: c["totalSales"] for c in data["salesByCategory"]} == {"electronics": 4, "accessories": 1}
    assert (await client.get(url, params={"period": 0}, headers=seller.headers)).status_code == 400
    assert (await client.get(url, params={"period": 366}, headers=SVC)).status_code == 400


async def test_bulk(client, seller):
    a = await create_product(client, seller, name="A")
    b = await create_product(client, seller, name="B", status="draft")
    c = await create_product(client, seller, name="C")
    url = f"{SERVICE}/products/bulk"
    response = await client.post(url, json={"productIds": [c["id"], "junk", b["id"], "f" * 24, a["id"]]}, headers=SVC)
    data = response.json()["data"]
    assert [p["id"] for p in data] == [c["id"], a["id"]]
    assert set(data[0]) == {"id", "_id", "name", "price", "stock", "sellerId", "primaryImageId", "category",
                            "lowStockAlert", "images"}  # fmt: skip
    for body in ({}, {"productIds": "x"}):
        bad = await client.post(url, json=body, headers=SVC)
        assert bad.status_code == 400 and bad.json()["message"] == "productIds array is required"
    assert (await client.post(url, json={"productIds": ["a"] * 101}, headers=SVC)).status_code == 400


async def test_validate_seller(client, seller, other_seller):
    p = await create_product(client, seller)
    url = f"{SERVICE}/products/validate-seller"
    mine = await client.post(url, json={"productId": p["id"], "sellerId": seller.id}, headers=SVC)
    assert mine.json()["message"] == "Validation completed"
    assert mine.json()["data"] == {
        "productId": p["id"],
        "sellerId": seller.id,
        "isValid": True,
        "actualSellerId": seller.id,
    }
    theirs = await client.post(url, json={"productId": p["id"], "sellerId": other_seller.id}, headers=SVC)
    assert theirs.json()["data"]["isValid"] is False
    assert (await client.post(url, json={"productId": "a" * 24, "sellerId": seller.id}, headers=SVC)).status_code == 404


async def test_record_sale_skips_recorded_lines(client, seller):
    p = await create_product(client, seller, price=20, stock=10)
    await reserve(client, "o-conf", [(p["id"], 2)])
    await client.post(f"{SERVICE}/inventory/confirm", json={"orderId": "o-conf"}, headers=SVC)
    url = f"{SERVICE}/products/record-sale"
    body = {"orderId": "o-conf", "customerId": "c1", "items": [{"productId": p["id"], "quantity": 2, "unitPrice": 20}]}
    skipped = await client.post(url, json=body, headers=SVC)
    assert skipped.json()["message"] == "Sales recorded successfully"
    assert skipped.json()["data"][0]["skipped"] is True
    fresh = {"orderId": "o-legacy", "items": [{"productId": p["id"], "quantity": 3, "unitPrice": 20, "totalPrice": 55}]}
    first = await client.post(url, json=fresh, headers=SVC)
    assert first.json()["data"] == [{"productId": p["id"], "success": True, "quantity": 3, "totalPrice": 55.0}]
    await client.post(url, json=fresh, headers=SVC)
    after = await get_product(client, p["id"])
    assert after["totalSold"] == 5 and after["revenue"] == 95 and after["stock"] == 8
    unknown = {"orderId": "o-x", "items": [{"productId": "a" * 24, "quantity": 1}]}
    assert (await client.post(url, json=unknown, headers=SVC)).json()["data"][0]["success"] is False
