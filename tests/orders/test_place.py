"""Placement (contract §4.6, §5 idempotency, §6; checklist 11–20) and its failure modes."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from shared.timeutil import parse_iso, utcnow
from tests.orders.conftest import ADDRESS, API, SVC

ANY_ID = "b" * 24


async def test_11_empty_cart(shop, customer):
    response = await shop.place(customer)
    assert response.status_code == 400 and response.json()["message"] == "Cart is empty"


async def test_12_address_is_required_and_checked_field_by_field(shop, seller, customer):
    product = await shop.new_product(seller)
    await shop.add(customer, product)
    none = await shop.orders.post(f"{API}/orders/place", json={}, headers=customer.headers)
    assert none.status_code == 400
    assert none.json()["errors"] == [
        {"field": "shippingAddress", "message": "shippingAddress or shippingAddressId is required"}
    ]
    no_city = await shop.place(customer, shippingAddress={k: v for k, v in ADDRESS.items() if k != "city"})
    assert no_city.status_code == 400
    assert [e["field"] for e in no_city.json()["errors"]] == ["shippingAddress.city"]
    blank = await shop.place(customer, shippingAddress={**ADDRESS, "country": " ", "postalCode": ""})
    assert {e["field"] for e in blank.json()["errors"]} == {"shippingAddress.country", "shippingAddress.postalCode"}
    both = await shop.place(customer, shippingAddressId=ANY_ID)
    assert both.status_code == 400 and both.json()["errors"][0]["field"] == "shippingAddressId"
    long_notes = await shop.place(customer, notes="x" * 501)
    assert long_notes.status_code == 400 and long_notes.json()["errors"][0]["field"] == "notes"
    bad_key = await shop.place(customer, key="has space")
    assert bad_key.status_code == 400
    bad_key = await shop.place(customer, key="k" * 256)
    assert bad_key.status_code == 400
    assert await shop.order_count() == 0


async def test_13_payment_method_any_case(shop, seller, customer):
    product = await shop.new_product(seller)
    await shop.add(customer, product)
    cash = await shop.place(customer, paymentMethod="cash")
    assert cash.status_code == 400 and cash.json()["errors"][0]["field"] == "paymentMethod"
    cod = await shop.place(customer, paymentMethod="COD")
    assert cod.status_code == 201 and cod.json()["data"]["paymentMethod"] == "cod"
    await shop.add(customer, product)
    wallet = await shop.place(customer, paymentMethod=" Wallet ")
    assert wallet.json()["data"]["paymentMethod"] == "wallet"


async def test_14_successful_placement(shop, seller, customer):
    a = await shop.new_product(seller, price=99.99, stock=10, name="Wireless Headphones")
    b = await shop.new_product(seller, price=0.5, stock=10)
    await shop.add(customer, a, 2)
    await shop.add(customer, b, 3)
    response = await shop.place(customer, notes="Deliver 9-5")
    assert response.status_code == 201, response.text
    assert response.json()["message"] == "Order placed successfully"
    order = response.json()["data"]
    assert order["status"] == "pending" and re.fullmatch(r"ORD\d{16}", order["orderNumber"])
    assert order["id"] == order["_id"]
    assert [i["status"] for i in order["items"]] == ["reserved", "reserved"]
    assert order["items"][0]["unitPrice"] == order["items"][0]["price"] == 99.99
    assert order["items"][0]["totalPrice"] == 199.98 and order["items"][0]["productName"] == "Wireless Headphones"
    assert order["subtotal"] == 201.48 and order["totalAmount"] == 201.48
    assert order["tax"] == 0 and order["shippingFee"] == 0 and order["itemCount"] == 5
    assert order["customerName"].startswith("Jane Smith")
    assert order["customerEmail"] == customer.email == order["customerInfo"]["email"]
    assert order["sellers"] == [seller.id] and order["notes"] == "Deliver 9-5"
    assert order["shippingAddress"]["city"] == "New York" and order["shippingAddress"]["addressLine2"] is None
    expiry = parse_iso(order["reservationExpiry"]) - utcnow()
    assert timedelta(minutes=29) < expiry <= timedelta(minutes=30)
    assert order["statusHistory"][0]["status"] == "pending" and len(order["statusHistory"]) == 1
    assert order["statusHistory"][0]["by"] == f"customer:{customer.id}"
    assert "idempotencyKey" not in order and "outboxPending" not in order
    cart = (await shop.orders.get(f"{API}/cart", headers=customer.headers)).json()["data"]
    assert cart["items"] == []
    assert (await shop.product(a))["reservedStock"] == 2 and (await shop.product(a))["stock"] == 8
    assert (await shop.product(b))["reservedStock"] == 3


async def test_15_tax_and_shipping(shop_factory):
    async with shop_factory(TAX_RATE="0.1", SHIPPING_FEE="5") as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        product = await shop.new_product(seller, price=19.99)
        order = await shop.placed(customer, (product, 1))
        assert order["subtotal"] == 19.99 and order["tax"] == 2.0
        assert order["shippingFee"] == 5.0 and order["totalAmount"] == 26.99


async def test_16_stock_lowered_after_adding(shop, seller, customer):
    product = await shop.new_product(seller, stock=10, name="Wireless Headphones")
    await shop.add(customer, product, 10)
    lowered = await shop.products.put(f"{API}/products/{product}/stock", json={"stock": 5}, headers=seller.headers)
    assert lowered.status_code == 200, lowered.text
    response = await shop.place(customer)
    assert response.status_code == 409
    assert (
        response.json()["message"] == "Some items are not available: Wireless Headphones (requested: 10, available: 5)"
    )
    assert await shop.order_count() == 0
    cart = await shop.app.state.repo.get_cart(customer.id)
    assert cart["items"][0]["quantity"] == 10
    state = await shop.product(product)
    assert state["stock"] == 5 and state["reservedStock"] == 0


async def test_product_gone_is_reported_without_reserving(shop, seller, customer):
    product = await shop.new_product(seller, stock=10, name="Lamp")
    await shop.add(customer, product, 2)
    await shop.products.delete(f"{API}/products/{product}", headers=seller.headers)
    shop.links["products"].calls.clear()
    response = await shop.place(customer)
    assert response.status_code == 409
    assert response.json()["message"] == "Some items are not available: Lamp (requested: 2, available: 0)"
    assert "/api/v1/service/inventory/reserve" not in shop.links["products"].calls


async def test_17_address_book(shop, seller, customer):
    product = await shop.new_product(seller)
    await shop.add(customer, product)
    unknown = await shop.orders.post(
        f"{API}/orders/place", json={"shippingAddressId": ANY_ID}, headers=customer.headers
    )
    assert unknown.status_code == 404 and unknown.json()["message"] == "Shipping address not found"
    body = {"street": "5 Elm St", "city": "Austin", "state": "TX", "country": "USA", "postalCode": "73301",
            "firstName": "Jane", "lastName": "Smith", "phone": "1234567890"}  # fmt: skip
    added = await shop.customer.post(f"{API}/customers/addresses", json=body, headers=customer.headers)
    assert added.status_code == 201, added.text
    address_id = added.json()["data"]["id"]
    placed = await shop.orders.post(
        f"{API}/orders/place", json={"shippingAddressId": address_id}, headers=customer.headers
    )
    assert placed.status_code == 201, placed.text
    address = placed.json()["data"]["shippingAddress"]
    assert address["addressLine1"] == "5 Elm St" and address["city"] == "Austin" and address["postalCode"] == "73301"
    assert address["contactPhone"] == "1234567890" and address["contactName"]


async def test_18_inactive_customer(shop, seller, customer):
    product = await shop.new_product(seller)
    await shop.add(customer, product)
    off = await shop.customer.patch(
        f"{API}/customers/admin/{customer.id}/status", json={"isActive": False}, headers=SVC
    )
    assert off.status_code == 200, off.text
    response = await shop.place(customer)
    assert response.status_code == 403 and response.json()["message"] == "Customer account is not active"
    assert await shop.order_count() == 0 and (await shop.product(product))["reservedStock"] == 0


async def test_19_same_key_sequential_and_concurrent(shop, seller, customer):
    product = await shop.new_product(seller, stock=20)
    await shop.add(customer, product, 2)
    first = await shop.place(customer, key="key-1")
    second = await shop.place(customer, key="key-1")
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert first.json() == second.json()
    await shop.add(customer, product, 1)
    answers = await asyncio.gather(*(shop.place(customer, key="key-2") for _ in range(5)))
    assert [a.status_code for a in answers] == [201] * 5
    assert len({a.json()["data"]["id"] for a in answers}) == 1
    assert await shop.order_count() == 2
    assert (await shop.product(product))["reservedStock"] == 3


async def test_20_keys_are_per_customer(shop, seller, customer):
    other = await shop.new_customer()
    product = await shop.new_product(seller)
    await shop.add(customer, product)
    await shop.add(other, product)
    mine, theirs = await shop.place(customer, key="shared"), await shop.place(other, key="shared")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["data"]["id"] != theirs.json()["data"]["id"]
    assert theirs.json()["data"]["customerId"] == other.id


async def test_fifty_concurrent_replays_place_one_order(shop, seller, customer):
    product = await shop.new_product(seller, stock=100)
    await shop.add(customer, product, 3)
    answers = await asyncio.gather(*(shop.place(customer, key="checkout-7f3a") for _ in range(50)))
    assert [a.status_code for a in answers] == [201] * 50, {a.status_code: a.text for a in answers}
    assert len({a.text for a in answers}) == 1  # identical answers
    assert await shop.order_count() == 1
    reservations = await shop.apps["products"].state.repo.reservations.count({})
    assert reservations == 1
    assert (await shop.product(product))["reservedStock"] == 3


async def test_same_key_with_another_body_replays_the_first_order(shop, seller, customer):
    """Contract §5: a completed key answers its order as it is now; the body is not looked at."""
    product = await shop.new_product(seller)
    await shop.add(customer, product, 1)
    first = await shop.place(customer, key="k", notes="first")
    await shop.add(customer, product, 2)
    again = await shop.place(customer, key="k", notes="second", paymentMethod="wallet")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    assert again.json()["data"]["notes"] == "first" and await shop.order_count() == 1
    assert (await shop.app.state.repo.get_cart(customer.id))["items"][0]["quantity"] == 2  # cart not touched


async def test_failed_key_is_tried_afresh(shop, seller, customer):
    product = await shop.new_product(seller)
    refused = await shop.place(customer, key="retry-me")
    assert refused.status_code == 400  # empty cart: the key is marked failed
    await shop.add(customer, product)
    placed = await shop.place(customer, key="retry-me")
    assert placed.status_code == 201 and "idempotent-replayed" not in placed.headers


async def test_key_in_progress_answers_409_after_waiting(shop_factory):
    async with shop_factory(IDEMPOTENCY_WAIT_SECONDS=0.3) as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        product = await shop.new_product(seller)
        await shop.add(customer, product)
        shop.links["products"].delay = 1.0
        slow = asyncio.create_task(shop.place(customer, key="busy"))
        await asyncio.sleep(0.2)
        busy = await shop.place(customer, key="busy")
        assert busy.status_code == 409
        assert busy.json()["message"] == "A request with this Idempotency-Key is already in progress"
        assert (await slow).status_code == 201


async def test_stale_in_progress_key_is_taken_over_with_the_same_order_id(shop_factory):
    async with shop_factory(IDEMPOTENCY_STALE_SECONDS=0.1) as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        product = await shop.new_product(seller)
        await shop.add(customer, product, 2)
        repo = shop.app.state.repo
        # a crashed request: key claimed, reservation made, nothing else
        await repo.claim_idempotency_key(customer_id=customer.id, key="crash", order_id="c" * 24)
        reserved = await shop.products.post(
            f"{API}/service/inventory/reserve",
            json={"orderId": "c" * 24, "items": [{"productId": product, "quantity": 2}]},
            headers=SVC,
        )
        assert reserved.status_code == 200
        await asyncio.sleep(0.2)
        response = await shop.place(customer, key="crash")
        assert response.status_code == 201, response.text
        assert response.json()["data"]["id"] == "c" * 24
        assert (await shop.product(product))["reservedStock"] == 2  # the reservation was reused


async def test_fifty_customers_race_for_the_last_five_units(shop):
    """Five rounds: exactly five orders, 45 clean 409s, reservedStock 5."""
    seller = await shop.new_seller()
    customers = await shop.new_customers(50)
    for _ in range(5):
        product = await shop.new_product(seller, stock=5, name="Last Lamp")
        for c in customers:
            await shop.fill_cart(c, product, 1)
        answers = await asyncio.gather(*(shop.place(c) for c in customers))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201] * 5 + [409] * 45, codes
        for a in answers:
            if a.status_code == 409:
                assert a.json()["message"].startswith("Some items are not available: Last Lamp (requested: 1")
        state = await shop.product(product)
        assert state["reservedStock"] == 5 and state["stock"] == 0
        refused = [c for c, a in zip(customers, answers, strict=True) if a.status_code == 409]
        for c in refused:  # a refused placement leaves the cart as it was
            assert (await shop.app.state.repo.get_cart(c.id))["items"][0]["productId"] == product


async def test_products_down_during_placement(shop, seller, customer):
    product = await shop.new_product(seller)
    await shop.add(customer, product, 2)
    before = await shop.app.state.repo.get_cart(customer.id)
    shop.links["products"].down = True
    response = await shop.place(customer)
    assert response.status_code == 503 and response.json()["message"] == "Products service unavailable"
    shop.links["products"].down = False
    assert await shop.order_count() == 0
    assert await shop.app.state.repo.get_cart(customer.id) == before
    assert (await shop.product(product))["reservedStock"] == 0


async def test_customer_service_down_or_slow(shop_factory):
    async with shop_factory(UPSTREAM_TIMEOUT_SECONDS=0.3) as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        product = await shop.new_product(seller)
        await shop.add(customer, product)
        shop.links["customer"].down = True
        down = await shop.place(customer)
        assert down.status_code == 503 and down.json()["message"] == "Customer service unavailable"
        shop.links["customer"].down = False
        shop.links["customer"].delay = 1.0
        slow = await shop.place(customer)
        assert slow.status_code == 504 and slow.json()["message"] == "Customer service timed out"
        assert await shop.order_count() == 0


async def test_reserve_timeout_queues_a_release(shop_factory):
    async with shop_factory(INVENTORY_TIMEOUT_SECONDS=0.3) as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        product = await shop.new_product(seller)
        await shop.add(customer, product, 2)
        shop.links["products"].late["/inventory/reserve"] = 1.0  # it reserves, but answers too late
        response = await shop.place(customer)
        shop.links["products"].late.clear()
        assert response.status_code == 504 and response.json()["message"] == "Products service timed out"
        assert await shop.order_count() == 0
        rows = await shop.app.state.outbox.rows.find({"kind": "inventory_release"})
        assert len(rows) == 1
        assert (await shop.product(product))["reservedStock"] == 2
        drained = await shop.orders.post(f"{API}/service/outbox/drain", headers=SVC)
        assert drained.json()["data"]["sent"] == 1
        assert (await shop.product(product))["reservedStock"] == 0


async def test_order_write_failing_after_reserving_releases_the_stock(shop, seller, customer):
    product = await shop.new_product(seller, stock=5)
    await shop.add(customer, product, 3)
    repo = shop.app.state.repo

    async def broken_insert(doc):
        raise RuntimeError("disk full")

    original, repo.insert_order = repo.insert_order, broken_insert
    response = await shop.place(customer, key="doomed")
    repo.insert_order = original
    assert response.status_code == 500 and response.json()["message"] == "Failed to place order"
    assert await shop.order_count() == 0
    state = await shop.product(product)
    assert state["reservedStock"] == 0 and state["stock"] == 5
    assert (await repo.get_cart(customer.id))["items"][0]["quantity"] == 3
    key = await repo.get_idempotency_key(customer_id=customer.id, key="doomed")
    assert key["status"] == "failed"
    retried = await shop.place(customer, key="doomed")
    assert retried.status_code == 201


async def test_order_number_collision_draws_a_new_number(shop, seller, customer, monkeypatch):
    import orders.domain as domain

    first = await shop.placed(customer, (await shop.new_product(seller), 1))
    numbers = iter([first["orderNumber"], first["orderNumber"], "ORD0000000000000777"])
    monkeypatch.setattr(domain, "order_number", lambda: next(numbers))
    second = await shop.placed(customer, (await shop.new_product(seller), 1))
    assert second["orderNumber"] == "ORD0000000000000777"


async def test_unique_order_numbers_under_load(shop, seller):
    product = await shop.new_product(seller, stock=100)
    customers = await shop.new_customers(20)
    for c in customers:
        await shop.add(c, product)
    answers = await asyncio.gather(*(shop.place(c) for c in customers))
    numbers = [a.json()["data"]["orderNumber"] for a in answers]
    assert len(set(numbers)) == 20
