"""Stock and reservations: never oversell, all-or-nothing, idempotent, expiry (checklist 21–30)."""

from __future__ import annotations

import asyncio

from tests.products.conftest import API, SVC, Seller, create_product, get_product, reserve

SERVICE = f"{API}/service"


async def test_concurrent_reservations_never_oversell(client, seller):
    for round_ in range(5):
        p = await create_product(client, seller, name=f"Hot item {round_}", stock=10)
        responses = await asyncio.gather(*[reserve(client, f"ord-{round_}-{i}", [(p["id"], 1)]) for i in range(200)])
        statuses = [r.status_code for r in responses]
        assert statuses.count(200) == 10 and statuses.count(409) == 190, round_
        after = await get_product(client, p["id"])
        assert after["stock"] == 0 and after["reservedStock"] == 10 and after["totalStock"] == 10
        assert after["isOutOfStock"] is True
        inventory = (await client.get(f"{API}/products/{p['id']}/inventory", headers=SVC)).json()["data"]
        assert inventory["activeReservations"] == 10 and inventory["availableStock"] == 0


async def test_short_item_leaves_others_untouched(client, seller):
    p1 = await create_product(client, seller, name="Phone X1", stock=10)
    p2 = await create_product(client, seller, name="Case", stock=5)
    response = await reserve(client, "ord-short", [(p1["id"], 2), (p2["id"], 999)])
    assert response.status_code == 409
    body = response.json()
    assert body["message"] == "Some items are not available: Case (requested: 999, available: 5)"
    assert body["errors"] == [
        {"field": "items.1.quantity", "message": "Insufficient stock. Available: 5, Requested: 999"}
    ]
    assert body["data"]["failed"][0] == {
        "productId": p2["id"], "productName": "Case", "requestedQuantity": 999, "availableStock": 5,
        "reason": "Insufficient stock",
    }  # fmt: skip
    for product, stock in ((p1, 10), (p2, 5)):
        after = await get_product(client, product["id"])
        assert after["stock"] == stock and after["reservedStock"] == 0
    # A failed reservation may be tried again with a feasible request.
    retry = await reserve(client, "ord-short", [(p1["id"], 2), (p2["id"], 5)])
    assert retry.status_code == 200 and (await get_product(client, p2["id"]))["stock"] == 0


async def test_unknown_and_hidden_products_fail_the_reservation(client, seller):
    p = await create_product(client, seller, stock=10)
    hidden = await create_product(client, seller, name="Draft", stock=10, status="draft")
    unknown = "b" * 24
    response = await reserve(client, "ord-unknown", [(p["id"], 1), (unknown, 1), (hidden["id"], 1)])
    assert response.status_code == 409
    failed = response.json()["data"]["failed"]
    assert [(f["productName"], f["reason"]) for f in failed] == [
        (unknown, "Product not found"),
        ("Draft", "Product not available"),
    ]
    assert (await get_product(client, p["id"]))["stock"] == 10


async def test_reserve_is_idempotent_per_order(client, seller):
    p = await create_product(client, seller, stock=10, price=99.99)
    first = await reserve(client, "ord-1", [(p["id"], 2)], customerId="cust-1")
    assert first.status_code == 200 and first.json()["message"] == "All items reserved successfully"
    data = first.json()["data"]
    assert data["status"] == "active" and data["expirationMinutes"] == 30 and data["customerId"] == "cust-1"
    assert data["items"][0]["unitPrice"] == 99.99 and data["failed"] == []
    assert data["successful"] == [
        {"productId": p["id"], "reserved": 2, "availableAfterReservation": 8, "expiresAt": data["expiresAt"]}
    ]
    again = await reserve(client, "ord-1", [(p["id"], 5)])
    assert again.status_code == 200 and again.json()["message"] == "Reservation already exists"
    assert again.json()["data"]["reservationId"] == data["reservationId"]
    together = await asyncio.gather(*[reserve(client, "ord-2", [(p["id"], 1)]) for _ in range(10)])
    assert {r.status_code for r in together} == {200}
    assert len({r.json()["data"]["reservationId"] for r in together}) == 1
    after = await get_product(client, p["id"])
    assert after["stock"] == 7 and after["reservedStock"] == 3


async def test_reserve_validation(client, seller):
    p = await create_product(client, seller)
    url = f"{SERVICE}/inventory/reserve"
    cases = [
        {"items": [{"productId": p["id"], "quantity": 1}]},
        {"orderId": "o", "items": []},
        {"orderId": "o", "items": [{"productId": p["id"], "quantity": 0}]},
        {"orderId": "o", "items": [{"productId": "nope", "quantity": 1}]},
        {"orderId": "o", "items": [{"productId": p["id"], "quantity": 1}], "expirationMinutes": 0},
        {"orderId": "o", "items": [{"productId": p["id"], "quantity": 1}], "expirationMinutes": 1441},
        {"orderId": "x" * 65, "items": [{"productId": p["id"], "quantity": 1}]},
    ]
    for body in cases:
        response = await client.post(url, json=body, headers=SVC)
        assert response.status_code == 400, body
    dup = await client.post(
        url, json={"orderId": "o", "items": [{"productId": p["id"], "quantity": 1}] * 2}, headers=SVC
    )
    assert dup.status_code == 400 and dup.json()["errors"][0]["field"] == "items.1.productId"
    assert (await get_product(client, p["id"]))["stock"] == 10


async def test_confirm_moves_reserved_to_sold_once(client, seller):
    p = await create_product(client, seller, stock=10, price=25.5)
    await reserve(client, "ord-c", [(p["id"], 3)], customerId="cust-9")
    url = f"{SERVICE}/inventory/confirm"
    first = await client.post(url, json={"orderId": "ord-c", "items": [{"ignored": True}]}, headers=SVC)
    assert first.status_code == 200 and first.json()["message"] == "Reservations confirmed successfully"
    assert first.json()["data"] == {
        "orderId": "ord-c",
        "status": "confirmed",
        "successful": [{"productId": p["id"], "confirmed": 3, "newSoldStock": 3}],
        "failed": [],
    }
    after = await get_product(client, p["id"])
    assert (after["stock"], after["reservedStock"], after["soldStock"], after["totalSold"]) == (7, 0, 3, 3)
    assert after["revenue"] == 76.5
    again = await client.post(url, json={"orderId": "ord-c"}, headers=SVC)
    assert again.status_code == 200 and again.json()["message"] == "Reservations already confirmed"
    assert await get_product(client, p["id"]) == after
    sales = (await client.get(f"{API}/products/{p['id']}/history", params={"type": "sale"}, headers=SVC)).json()
    assert sales["pagination"]["total"] == 1
    sale = sales["data"]["history"][0]
    assert sale["orderId"] == "ord-c" and sale["customerId"] == "cust-9" and sale["quantity"] == 3
    assert sale["metadata"] == {
        "unitPrice": 25.5,
        "totalPrice": 76.5,
        "productName": "Phone X1",
        "category": "electronics",
    }
    unknown = await client.post(url, json={"orderId": "nope"}, headers=SVC)
    assert unknown.status_code == 404 and unknown.json()["message"] == "Reservation not found"


async def test_concurrent_confirm_and_release_count_once(client, seller):
    p = await create_product(client, seller, stock=10)
    await reserve(client, "ord-race", [(p["id"], 4)])
    calls = [client.post(f"{SERVICE}/inventory/confirm", json={"orderId": "ord-race"}, headers=SVC) for _ in range(5)]
    calls += [client.post(f"{SERVICE}/inventory/release", json={"orderId": "ord-race"}, headers=SVC) for _ in range(5)]
    await asyncio.gather(*calls)
    after = await get_product(client, p["id"])
    assert after["reservedStock"] == 0
    assert after["stock"] + after["soldStock"] == 10
    assert after["totalSold"] == after["soldStock"]


async def test_release_after_reserve(client, seller):
    p = await create_product(client, seller, stock=10)
    await reserve(client, "ord-r", [(p["id"], 4)])
    url = f"{SERVICE}/inventory/release"
    first = await client.post(url, json={"orderId": "ord-r"}, headers=SVC)
    assert first.status_code == 200 and first.json()["message"] == "Reservations released successfully"
    assert first.json()["data"] == {
        "orderId": "ord-r", "reason": "Order cancelled", "status": "cancelled",
        "results": [{"productId": p["id"], "released": True, "newAvailableStock": 10}],
    }  # fmt: skip
    after = await get_product(client, p["id"])
    assert after["stock"] == 10 and after["reservedStock"] == 0
    again = await client.post(url, json={"orderId": "ord-r"}, headers=SVC)
    assert again.status_code == 200 and again.json()["data"]["results"] == []
    assert (await client.post(url, json={"orderId": "never"}, headers=SVC)).json()["data"]["results"] == []
    gone = await reserve(client, "ord-r", [(p["id"], 1)])
    assert gone.status_code == 409 and gone.json()["message"] == "Reservation for this order is no longer active"
    confirm = await client.post(f"{SERVICE}/inventory/confirm", json={"orderId": "ord-r"}, headers=SVC)
    assert confirm.status_code == 409


async def test_release_after_confirm(client, seller):
    p = await create_product(client, seller, stock=10, price=10)
    await reserve(client, "ord-rc", [(p["id"], 2)])
    await client.post(f"{SERVICE}/inventory/confirm", json={"orderId": "ord-rc"}, headers=SVC)
    response = await client.post(
        f"{SERVICE}/inventory/release", json={"orderId": "ord-rc", "reason": "Refunded"}, headers=SVC
    )
    assert response.json()["data"]["results"] == [{"productId": p["id"], "released": True, "newAvailableStock": 10}]
    after = await get_product(client, p["id"])
    assert (after["stock"], after["soldStock"], after["totalSold"], after["revenue"]) == (10, 0, 0, 0)
    history = (await client.get(f"{API}/products/{p['id']}/history", headers=SVC)).json()["data"]["history"]
    assert history[0]["type"] == "stock_add" and "Refunded" in history[0]["notes"]
    assert history[0]["previousStock"] == 8 and history[0]["newStock"] == 10
    again = await client.post(f"{SERVICE}/inventory/release", json={"orderId": "ord-rc"}, headers=SVC)
    assert again.json()["data"]["results"] == [] and (await get_product(client, p["id"]))["stock"] == 10


async def test_expired_reservation_cleanup_endpoint(client, seller):
    p = await create_product(client, seller, stock=10)
    response = await reserve(client, "ord-exp", [(p["id"], 3)], expirationMinutes=0.05)
    assert response.status_code == 200 and response.json()["data"]["expirationMinutes"] == 0.05
    assert (await get_product(client, p["id"]))["stock"] == 7
    await asyncio.sleep(4)
    cleaned = await client.post(f"{SERVICE}/inventory/cleanup-expired", headers=SVC)
    assert cleaned.status_code == 200 and cleaned.json()["data"]["cleanedCount"] >= 1
    assert cleaned.json()["message"].startswith("Cleaned ")
    after = await get_product(client, p["id"])
    assert after["stock"] == 10 and after["reservedStock"] == 0
    confirm = await client.post(f"{SERVICE}/inventory/confirm", json={"orderId": "ord-exp"}, headers=SVC)
    assert confirm.status_code == 409 and confirm.json()["message"] == "Reservation is no longer active"


async def test_confirm_after_expiry_expires_on_the_spot(client, seller):
    p = await create_product(client, seller, stock=10)
    await reserve(client, "ord-late", [(p["id"], 3)], expirationMinutes=0.01)
    await asyncio.sleep(1)
    confirm = await client.post(f"{SERVICE}/inventory/confirm", json={"orderId": "ord-late"}, headers=SVC)
    assert confirm.status_code == 409
    assert (await get_product(client, p["id"]))["stock"] == 10


async def test_background_task_releases_expired_reservations(app_factory):
    async with app_factory(RESERVATION_CLEANUP_SECONDS=0.2) as client:
        s = Seller(client)
        p = await create_product(client, s, stock=5)
        assert (await reserve(client, "ord-bg", [(p["id"], 5)], expirationMinutes=0.01)).status_code == 200
        assert (await get_product(client, p["id"]))["stock"] == 0
        for _ in range(100):
            if (await get_product(client, p["id"]))["stock"] == 5:
                break
            await asyncio.sleep(0.1)
        after = await get_product(client, p["id"])
        assert after["stock"] == 5 and after["reservedStock"] == 0
        doc = await client.app.state.repo.get_reservation("ord-bg")
        assert doc["status"] == "expired" and doc["settled"] is True


async def test_set_stock_keeps_reserved_units(client, seller):
    p = await create_product(client, seller, stock=10)
    url = f"{API}/products/{p['id']}/stock"
    bad = await client.put(url, json={"stock": -1}, headers=seller.headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["message"] == "Stock must be a non-negative number"
    assert (await client.put(url, json={"stock": "x"}, headers=seller.headers)).status_code == 400
    await reserve(client, "ord-s", [(p["id"], 5)])
    await reserve(client, "ord-sold", [(p["id"], 1)])
    await client.post(f"{SERVICE}/inventory/confirm", json={"orderId": "ord-sold"}, headers=SVC)
    response = await client.put(url, json={"stock": 50, "notes": "restock"}, headers=seller.headers)
    assert response.status_code == 200 and response.json()["message"] == "Stock updated successfully"
    assert response.json()["data"] == {
        "productId": p["id"], "previousStock": 4, "newStock": 50, "stockChange": 46, "notes": "restock"
    }  # fmt: skip
    after = await get_product(client, p["id"])
    assert after["stock"] == 50 and after["reservedStock"] == 5 and after["totalStock"] == 55 + after["soldStock"]
    entry = (await client.get(f"{API}/products/{p['id']}/history", headers=SVC)).json()["data"]["history"][0]
    assert (entry["type"], entry["previousStock"], entry["newStock"], entry["notes"]) == (
        "stock_add",
        4,
        50,
        "restock",
    )
    assert (await client.put(url, json={"stock": 1}, headers=SVC)).status_code == 401


async def test_adjust_total_stock(client, seller):
    p = await create_product(client, seller, stock=10)
    await reserve(client, "ord-a", [(p["id"], 5)])
    url = f"{API}/products/{p['id']}/inventory/adjust"
    low = await client.put(url, json={"newStock": 3}, headers=seller.headers)
    assert low.status_code == 409 and low.json()["message"] == "Total stock cannot be less than reserved plus sold (5)"
    ok = await client.put(url, json={"newStock": 20, "reason": "count"}, headers=seller.headers)
    assert ok.status_code == 200 and ok.json()["message"] == "Stock adjusted successfully"
    data = ok.json()["data"]
    assert data["totalStock"] == 20 and data["availableStock"] == 15 and "reservations" not in data


async def test_bulk_stock_is_all_or_nothing(client, seller):
    p1 = await create_product(client, seller, stock=10)
    p2 = await create_product(client, seller, stock=5)
    url = f"{SERVICE}/products/stock"
    updates = [{"productId": p1["id"], "stockChange": -2}, {"productId": p2["id"], "stockChange": -100}]
    fail = await client.put(url, json={"updates": updates}, headers=SVC)
    assert fail.status_code == 409
    assert fail.json()["message"] == f"Insufficient stock for product {p2['id']}: available 5, change -100"
    assert (await get_product(client, p1["id"]))["stock"] == 10
    updates = [{"productId": p1["id"], "stockChange": 3}, {"productId": "c" * 24, "stockChange": 1}]
    missing = await client.put(url, json={"updates": updates}, headers=SVC)
    assert missing.status_code == 404 and missing.json()["message"] == f"Product not found: {'c' * 24}"
    after = await get_product(client, p1["id"])
    assert after["stock"] == 10 and after["totalStock"] == 10
    ok = await client.put(url, json={"updates": [{"productId": p1["id"], "stockChange": -2},
                                                 {"productId": p2["id"], "stockChange": 4}]}, headers=SVC)  # fmt: skip
    assert ok.status_code == 200 and ok.json()["message"] == "Bulk stock update completed"
    assert ok.json()["data"][0] == {
        "productId": p1["id"],
        "success": True,
        "previousStock": 10,
        "newStock": 8,
        "stockChange": -2,
    }
    assert (await get_product(client, p2["id"]))["totalStock"] == 9
    for body in ({"updates": "x"}, {}, {"updates": [{"productId": p1["id"], "stockChange": 0}]}):
        response = await client.put(url, json=body, headers=SVC)
        assert response.status_code == 400, body
    assert (await client.put(url, json={"updates": {}}, headers=SVC)).json()["message"] == "updates array is required"


async def test_check_availability(client, seller):
    p = await create_product(client, seller, name="Phone X1", stock=5)
    hidden = await create_product(client, seller, stock=5, status="inactive")
    items = [{"productId": p["id"], "quantity": 10}, {"productId": p["id"], "quantity": 5},
             {"productId": "e" * 24, "quantity": 1}, {"productId": hidden["id"], "quantity": 1}]  # fmt: skip
    for path in ("inventory/check-availability", "products/inventory-check"):
        response = await client.post(f"{SERVICE}/{path}", json={"items": items}, headers=SVC)
        data = response.json()["data"]
        assert response.status_code == 200 and data["allAvailable"] is False
        assert [i["reason"] for i in data["items"]] == [
            "Insufficient stock", "Available", "Product not found", "Product not available"
        ]  # fmt: skip
        assert data["items"][0]["availableStock"] == 5 and data["items"][3]["availableStock"] == 0
        assert data["summary"] == {"total": 4, "available": 1, "unavailable": 3}


async def test_inventory_views(client, seller, other_seller):
    p = await create_product(client, seller, stock=10)
    await reserve(client, "ord-v", [(p["id"], 2)], customerId="cust")
    url = f"{API}/products/{p['id']}/inventory"
    data = (await client.get(url, headers=seller.headers)).json()["data"]
    assert data["availableStock"] == 8 and data["reservedStock"] == 2 and data["activeReservations"] == 1
    line = data["reservations"][0]
    assert line["orderId"] == "ord-v" and line["quantity"] == 2 and line["status"] == "active" and not line["isExpired"]
    assert (await client.get(url, headers=other_seller.headers)).status_code == 403
    assert (await client.get(url)).status_code == 401
    synced = await client.post(url, json={"lowStockThreshold": 9}, headers=seller.headers)
    assert synced.json()["message"] == "Inventory created/synced successfully"
    assert synced.json()["data"]["lowStockThreshold"] == 9 and synced.json()["data"]["isLowStock"] is True
    moves = (await client.get(f"{url}/movements", headers=SVC)).json()["data"]
    assert moves["currentStock"]["availableStock"] == 8 and moves["pagination"]["limit"] == 20
    overview = await client.get(f"{API}/inventory/seller/{seller.id}", params={"status": "low"}, headers=seller.headers)
    body = overview.json()["data"]
    assert [row["productId"] for row in body["inventories"]] == [p["id"]]
    assert body["summary"]["totalReserved"] == 2 and body["summary"]["lowStockCount"] == 1
    assert (await client.get(f"{API}/inventory/seller/{seller.id}", headers=other_seller.headers)).status_code == 403
    for path in ("initialize-all", "sync-products"):
        response = await client.post(f"{SERVICE}/inventory/{path}", headers=SVC)
        assert response.status_code == 200 and list(response.json()["data"].values()) == [0]
