"""Lists, seller views, admin search, stats, inventory delegation, outbox endpoints, the
OpenAPI document and hostile input (checklist 31–37)."""

from __future__ import annotations

import asyncio

from tests.orders.conftest import API, SVC


async def test_31_customer_lists_only_own_orders(shop, seller, customer):
    other = await shop.new_customer()
    product = await shop.new_product(seller, stock=50)
    for _ in range(3):
        await shop.placed(customer, (product, 1))
    await shop.placed(other, (product, 1))
    response = await shop.orders.get(f"{API}/orders", params={"limit": 2}, headers=customer.headers)
    assert response.status_code == 200 and response.json()["message"] == "Orders retrieved successfully"
    data = response.json()["data"]
    assert len(data["orders"]) == 2 and {o["customerId"] for o in data["orders"]} == {customer.id}
    assert data["pagination"] == {"page": 1, "limit": 2, "total": 3, "pages": 2, "totalPages": 2}
    assert data["orders"][0]["createdAt"] >= data["orders"][1]["createdAt"]
    default = (await shop.orders.get(f"{API}/orders", headers=customer.headers)).json()["data"]["pagination"]
    assert default["limit"] == 10
    for params in ({"limit": 51}, {"status": "bogus"}, {"page": 0}, {"page": "x"}, {"limit": 2**64}):
        bad = await shop.orders.get(f"{API}/orders", params=params, headers=customer.headers)
        assert bad.status_code == 400, (params, bad.text)
    filtered = await shop.orders.get(f"{API}/orders", params={"status": "delivered"}, headers=customer.headers)
    assert filtered.json()["data"]["orders"] == []
    one = data["orders"][0]
    read = await shop.orders.get(f"{API}/orders/{one['id']}", headers=customer.headers)
    assert read.status_code == 200 and read.json()["message"] == "Order retrieved successfully"
    assert read.json()["data"] == one
    assert (await shop.orders.get(f"{API}/orders/nope", headers=customer.headers)).status_code == 400


async def test_32_seller_views(shop, customer):
    s1, s2 = await shop.new_seller(), await shop.new_seller()
    p1, p2 = await shop.new_product(s1, price=10, stock=9), await shop.new_product(s2, price=3, stock=9)
    order = await shop.placed(customer, (p1, 2), (p2, 1))
    assert sorted(order["sellers"]) == sorted([s1.id, s2.id])
    response = await shop.orders.get(f"{API}/seller/orders", headers=s1.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Orders retrieved successfully" and body["pagination"]["total"] == 1
    view = body["data"][0]
    assert view["id"] == order["id"] and view["sellerView"] is True
    assert [i["productId"] for i in view["items"]] == [p1]
    assert view["totalAmount"] == view["subtotal"] == 20.0 and view["tax"] == 0 and view["itemCount"] == 2
    assert "customerEmail" not in view and "email" not in view["customerInfo"]
    service = await shop.orders.get(f"{API}/orders", params={"sellerId": s1.id}, headers=SVC)
    assert service.json()["data"]["orders"] == [view]
    forbidden = await shop.orders.get(f"{API}/seller/orders", params={"sellerId": s2.id}, headers=s1.headers)
    assert forbidden.status_code == 403
    ignored = await shop.orders.get(f"{API}/seller/orders", params={"sellerId": "undefined"}, headers=s1.headers)
    assert ignored.status_code == 200 and ignored.json()["data"] == [view]
    on_orders = await shop.orders.get(f"{API}/orders", params={"sellerId": "undefined"}, headers=s1.headers)
    assert on_orders.json()["data"]["orders"] == [view]
    root = await shop.orders.get(f"{API}", params={"sellerId": s1.id}, headers=s1.headers)  # the gateway's /api/orders
    assert root.status_code == 200 and root.json()["data"] == [view] and root.json()["pagination"]["total"] == 1
    one = await shop.orders.get(f"{API}/orders/{order['id']}", headers=s2.headers)
    assert [i["productId"] for i in one.json()["data"]["items"]] == [p2]
    stranger = await shop.new_seller()
    assert (await shop.orders.get(f"{API}/orders/{order['id']}", headers=stranger.headers)).status_code == 404


async def test_33_admin_search_and_filters(shop, seller, customer):
    product = await shop.new_product(seller, stock=50)
    orders = [await shop.placed(customer, (product, 1)) for _ in range(3)]
    await shop.set_status(orders[0]["id"], "confirmed")
    found = await shop.orders.get(f"{API}/admin/orders", params={"search": orders[1]["orderNumber"]}, headers=SVC)
    assert [o["id"] for o in found.json()["data"]["orders"]] == [orders[1]["id"]]
    by_mail = await shop.orders.get(f"{API}/admin/orders", params={"search": customer.email.upper()}, headers=SVC)
    assert by_mail.json()["data"]["pagination"]["total"] == 3
    tricky = await shop.orders.get(f"{API}/admin/orders", params={"search": ".*("}, headers=SVC)
    assert tricky.status_code == 200 and tricky.json()["data"]["orders"] == []
    pending = await shop.orders.get(f"{API}/admin/orders", params={"status": "pending"}, headers=SVC)
    assert pending.json()["data"]["pagination"]["total"] == 2
    assert pending.json()["data"]["pagination"]["limit"] == 20
    mine = await shop.orders.get(
        f"{API}/admin/orders", params={"sellerId": seller.id, "customerId": customer.id}, headers=SVC
    )
    assert mine.json()["data"]["pagination"]["total"] == 3 and "customerEmail" in mine.json()["data"]["orders"][0]
    admin = await shop.orders.get(f"{API}/admin/orders", headers=shop.token("admin", "a" * 24))
    assert admin.status_code == 200
    assert (await shop.orders.get(f"{API}/admin/orders", headers=customer.headers)).status_code == 403
    assert (await shop.orders.get(f"{API}/admin/orders", params={"sellerId": "x"}, headers=SVC)).status_code == 400


async def test_34_stats(shop, seller, customer):
    product = await shop.new_product(seller, price=10, stock=50)
    a, b, c = [await shop.placed(customer, (product, 1)) for _ in range(3)]
    await shop.set_status(a["id"], "confirmed")
    await shop.set_status(b["id"], "cancelled")
    response = await shop.orders.get(f"{API}/service/orders/stats", headers=SVC)
    assert response.status_code == 200 and response.json()["message"] == "Order stats retrieved successfully"
    data = response.json()["data"]
    assert data["byStatus"] == {
        "pending": 1, "confirmed": 1, "processing": 0, "shipped": 0, "delivered": 0, "cancelled": 1, "failed": 0,
    }  # fmt: skip
    assert data["total"] == 3 and data["revenue"] == 10.0
    assert (await shop.orders.get(f"{API}/service/orders/stats", headers=customer.headers)).status_code == 403


async def test_35_inventory_check(shop, seller):
    product = await shop.new_product(seller, stock=4)
    body = {"items": [{"productId": product, "quantity": 5}]}
    response = await shop.orders.post(f"{API}/inventory/check", json=body, headers=SVC)
    assert response.status_code == 200 and response.json()["message"] == "Inventory availability checked"
    data = response.json()["data"]
    assert data["allAvailable"] is False
    assert data["items"][0] | {"requestedQuantity": 5, "availableStock": 4, "available": False} == data["items"][0]
    assert (await shop.orders.post(f"{API}/inventory/check", json=body)).status_code == 401
    admin = await shop.orders.post(f"{API}/inventory/check", json=body, headers=shop.token("admin", "a" * 24))
    assert admin.status_code == 401  # inventory is for services only
    empty = await shop.orders.post(f"{API}/inventory/check", json={"items": []}, headers=SVC)
    assert empty.status_code == 400


async def test_36_inventory_reserve_and_release(shop, seller):
    product = await shop.new_product(seller, stock=6)
    body = {"orderId": "ext-1", "items": [{"productId": product, "quantity": 2}], "expirationMinutes": 5}
    reserved = await shop.orders.post(f"{API}/inventory/reserve", json=body, headers=SVC)
    assert reserved.status_code == 200 and reserved.json()["message"] == "Inventory reserved"
    data = reserved.json()["data"]
    assert data["status"] == "reserved" and data["reservationId"] and data["orderId"] == "ext-1"
    assert data["items"][0]["expiresAt"] and data["items"][0]["quantity"] == 2
    assert (await shop.product(product))["reservedStock"] == 2
    too_many = await shop.orders.post(
        f"{API}/inventory/reserve",
        json={"orderId": "ext-2", "items": [{"productId": product, "quantity": 9}]},
        headers=SVC,
    )
    assert too_many.status_code == 409 and too_many.json()["message"].startswith("Some items are not available")
    released = await shop.orders.post(f"{API}/inventory/release", json={"orderId": "ext-1"}, headers=SVC)
    assert released.status_code == 200 and released.json() == {
        "success": True, "message": "Inventory released", "data": None,
    }  # fmt: skip
    assert (await shop.product(product))["stock"] == 6
    shop.links["products"].down = True
    down = await shop.orders.post(f"{API}/inventory/release", json={"orderId": "ext-1"}, headers=SVC)
    assert down.status_code == 503


async def test_37_twenty_customers_five_units(shop, seller):
    product = await shop.new_product(seller, stock=5)
    customers = await shop.new_customers(20)
    await asyncio.gather(*(shop.add(c, product, 1) for c in customers))
    answers = await asyncio.gather(*(shop.place(c) for c in customers))
    assert sorted(a.status_code for a in answers) == [201] * 5 + [409] * 15
    assert (await shop.product(product))["reservedStock"] == 5


async def test_outbox_endpoints(shop, seller, customer):
    order = await shop.placed(customer, (await shop.new_product(seller), 1))
    listed = await shop.orders.get(f"{API}/service/outbox", params={"orderId": order["id"]}, headers=SVC)
    assert listed.status_code == 200 and listed.json()["message"] == "Outbox retrieved successfully"
    entries = listed.json()["data"]["entries"]
    assert {e["kind"] for e in entries} == {"notification", "seller_notification"}
    assert all("payload" not in e for e in entries)
    assert {e.get("template") for e in entries} == {"order_confirmation", "new_order_seller"}
    assert (await shop.orders.get(f"{API}/service/outbox", headers=customer.headers)).status_code == 403
    assert (await shop.orders.get(f"{API}/service/outbox")).status_code == 401
    admin = await shop.orders.get(f"{API}/service/outbox", headers=shop.token("admin", "a" * 24))
    assert admin.status_code == 200  # admin is accepted wherever the service key is, except inventory
    assert (await shop.orders.get(f"{API}/service/outbox", params={"status": "x"}, headers=SVC)).status_code == 400
    drained = await shop.orders.post(f"{API}/service/outbox/drain", headers=SVC)
    assert drained.status_code == 200 and set(drained.json()["data"]) == {"sent", "retrying", "failed"}


async def test_openapi_document_is_typed(shop):
    document = (await shop.orders.get("/openapi.json")).json()
    assert "422" not in str(document["paths"])
    place = document["paths"]["/api/v1/orders/place"]["post"]
    assert set(place["responses"]) >= {"201", "400", "401", "403", "404", "409", "500", "503", "504"}
    schemas = document["components"]["schemas"]
    assert "OrderPublic" in schemas and "CartPublic" in schemas
    assert "Any" not in str(schemas.get("PlaceOrderIn"))
    assert (await shop.orders.get("/docs")).status_code == 200


async def test_hostile_input_never_answers_500(shop, seller, customer):
    product = await shop.new_product(seller)
    await shop.add(customer, product)
    bodies = [
        [],
        "text",
        {"productId": {"$gt": ""}},
        {"productId": product, "quantity": 10**30},
        {"productId": product, "quantity": "1e3"},
        {"productId": product * 2},
    ]
    for body in bodies:
        for method, path in (("POST", "/cart/add"), ("PUT", "/cart/update")):
            response = await shop.orders.request(method, f"{API}{path}", json=body, headers=customer.headers)
            assert response.status_code == 400, (path, body, response.text)
    weird = [{"shippingAddress": "x"}, {"shippingAddress": {**{"city": ["a"]}}}, {"shippingAddressId": {"$ne": 1}},
             {"shippingAddress": {"addressLine1": "a" * 201}}, {"paymentMethod": 5}]  # fmt: skip
    for body in weird:
        response = await shop.orders.post(f"{API}/orders/place", json=body, headers=customer.headers)
        assert response.status_code == 400, (body, response.text)
    for path in ("/orders/" + "a" * 25, "/orders/%00", "/orders/" + "ａ" * 24):
        assert (await shop.orders.get(f"{API}{path}", headers=customer.headers)).status_code in (400, 404)
    assert (
        await shop.orders.get(f"{API}/orders", params={"page": "9" * 40}, headers=customer.headers)
    ).status_code == 400
    assert await shop.order_count() == 0
