"""The cart (contract §4.1–4.5; checklist 1–10)."""

from __future__ import annotations

import asyncio

from tests.orders.conftest import API, SVC

ANY_ID = "a" * 24


async def test_1_cart_needs_a_customer_token(shop, seller):
    missing = await shop.orders.get(f"{API}/cart")
    assert missing.status_code == 401 and missing.json()["message"] == "Access token required"
    wrong_role = await shop.orders.get(f"{API}/cart", headers=seller.headers)
    assert wrong_role.status_code == 403
    service = await shop.orders.post(f"{API}/cart/add", json={"productId": ANY_ID}, headers=SVC)
    assert service.status_code == 401


async def test_2_new_customer_gets_an_empty_cart(shop, customer):
    response = await shop.orders.get(f"{API}/cart", headers=customer.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Cart retrieved successfully"
    data = body["data"]
    assert data["items"] == [] and data["totalItems"] == 0 and data["totalAmount"] == 0
    assert len(data["id"]) == 24 and data["customerId"] == customer.id
    assert shop.links["products"].calls == []  # an empty cart needs no products call


async def test_3_add_and_quantities_add_up(shop, seller, customer):
    product = await shop.new_product(seller, price=99.99, stock=50, name="Wireless Headphones")
    first = await shop.add(customer, product, 2)
    assert first.status_code == 200, first.text
    assert first.json()["message"] == "Item added to cart"
    data = first.json()["data"]
    assert data["totalItems"] == 2 and data["totalAmount"] == 199.98
    item = data["items"][0]
    assert item["productName"] == "Wireless Headphones" and item["price"] == 99.99 and item["totalPrice"] == 199.98
    assert item["sellerId"] == seller.id and item["availableStock"] == 50
    second = await shop.add(customer, product, 3)
    data = second.json()["data"]
    assert len(data["items"]) == 1 and data["items"][0]["quantity"] == 5 and data["totalItems"] == 5


async def test_4_add_validation_and_unknown_product(shop, seller, customer):
    product = await shop.new_product(seller)
    for quantity in (0, 101, -1, 1.5, "x", True, 2**70):
        response = await shop.add(customer, product, quantity)
        assert response.status_code == 400, (quantity, response.text)
        assert response.json()["errors"][0]["field"] == "quantity"
    for bad in ("nope", "a" * 23, "a" * 24 + "\n", 5, None):
        response = await shop.orders.post(
            f"{API}/cart/add", json={"productId": bad, "quantity": 1}, headers=customer.headers
        )
        assert response.status_code == 400, (bad, response.text)
    unknown = await shop.add(customer, ANY_ID, 1)
    assert unknown.status_code == 404 and unknown.json()["message"] == "Product not found"
    default = await shop.orders.post(f"{API}/cart/add", json={"productId": product}, headers=customer.headers)
    assert default.status_code == 200 and default.json()["data"]["totalItems"] == 1


async def test_5_stock_is_checked_against_the_resulting_quantity(shop, seller, customer):
    product = await shop.new_product(seller, stock=4)
    too_many = await shop.add(customer, product, 5)
    assert too_many.status_code == 409
    assert too_many.json()["message"] == "Insufficient stock. Available: 4, Requested: 5"
    assert (await shop.add(customer, product, 3)).status_code == 200
    again = await shop.add(customer, product, 2)
    assert again.status_code == 409
    assert again.json()["message"] == "Insufficient stock. Available: 4, Requested: 5"
    over = await shop.add(customer, product, 98)
    assert over.status_code == 400 and over.json()["message"] == "Quantity per item cannot exceed 100"


async def test_6_fifty_distinct_products_at_most(shop, seller, customer):
    products = [await shop.new_product(seller, stock=5) for _ in range(51)]
    for product in products[:50]:
        assert (await shop.add(customer, product)).status_code == 200
    extra = await shop.add(customer, products[50])
    assert extra.status_code == 400 and extra.json()["message"] == "Cart cannot contain more than 50 items"
    more = await shop.add(customer, products[0])
    assert more.status_code == 200 and more.json()["data"]["totalItems"] == 51


async def test_7_update_sets_or_removes(shop, seller, customer):
    product, other = await shop.new_product(seller, stock=5), await shop.new_product(seller)
    await shop.add(customer, product, 1)
    missing = await shop.orders.put(
        f"{API}/cart/update", json={"productId": other, "quantity": 2}, headers=customer.headers
    )
    assert missing.status_code == 404 and missing.json()["message"] == "Item not found in cart"
    set_three = await shop.orders.put(
        f"{API}/cart/update", json={"productId": product, "quantity": 3}, headers=customer.headers
    )
    assert set_three.status_code == 200 and set_three.json()["message"] == "Cart item updated"
    assert set_three.json()["data"]["items"][0]["quantity"] == 3
    too_many = await shop.orders.put(
        f"{API}/cart/update", json={"productId": product, "quantity": 6}, headers=customer.headers
    )
    assert too_many.status_code == 409
    assert too_many.json()["message"] == "Insufficient stock. Available: 5, Requested: 6"
    removed = await shop.orders.put(
        f"{API}/cart/update", json={"productId": product, "quantity": 0}, headers=customer.headers
    )
    assert removed.status_code == 200 and removed.json()["data"]["items"] == []


async def test_8_get_refreshes_prices_and_drops_deleted_products(shop, seller, customer):
    kept, deleted = await shop.new_product(seller, price=10), await shop.new_product(seller, price=5)
    await shop.add(customer, kept, 2)
    await shop.add(customer, deleted, 1)
    changed = await shop.products.put(f"{API}/products/{kept}", json={"price": 12.5}, headers=seller.headers)
    assert changed.status_code == 200, changed.text
    gone = await shop.products.delete(f"{API}/products/{deleted}", headers=seller.headers)
    assert gone.status_code == 200
    data = (await shop.orders.get(f"{API}/cart", headers=customer.headers)).json()["data"]
    assert data["refreshed"] is True
    assert [(i["productId"], i["price"]) for i in data["items"]] == [(kept, 12.5)]
    assert data["totalAmount"] == 25.0
    stored = await shop.app.state.repo.get_cart(customer.id)
    assert [i["productId"] for i in stored["items"]] == [kept]  # the refreshed cart was saved


async def test_9_products_down(shop, seller, customer):
    product = await shop.new_product(seller, price=3)
    await shop.add(customer, product, 2)
    shop.links["products"].down = True
    cart = await shop.orders.get(f"{API}/cart", headers=customer.headers)
    assert cart.status_code == 200
    assert cart.json()["data"]["refreshed"] is False and cart.json()["data"]["totalItems"] == 2
    add = await shop.add(customer, product, 1)
    assert add.status_code == 503 and add.json()["message"] == "Products service unavailable"


async def test_products_slow_answers_504(shop_factory):
    async with shop_factory(UPSTREAM_TIMEOUT_SECONDS=0.2) as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        product = await shop.new_product(seller)
        shop.links["products"].delay = 1.0
        add = await shop.add(customer, product, 1)
        assert add.status_code == 504 and add.json()["message"] == "Products service timed out"


async def test_10_remove_and_clear_are_idempotent(shop, seller, customer):
    product = await shop.new_product(seller)
    await shop.add(customer, product, 1)
    remove = await shop.orders.request(
        "DELETE", f"{API}/cart/remove", json={"productId": product}, headers=customer.headers
    )
    assert remove.status_code == 200 and remove.json()["message"] == "Item removed from cart"
    again = await shop.orders.delete(f"{API}/cart/remove", params={"productId": product}, headers=customer.headers)
    assert again.status_code == 200
    stranger = await shop.new_customer()  # no cart at all
    assert (
        await shop.orders.delete(f"{API}/cart/remove?productId={product}", headers=stranger.headers)
    ).status_code == 200
    assert (await shop.orders.delete(f"{API}/cart/clear", headers=stranger.headers)).status_code == 200
    await shop.add(customer, product, 1)
    clear = await shop.orders.delete(f"{API}/cart/clear", headers=customer.headers)
    assert clear.status_code == 200 and clear.json()["message"] == "Cart cleared"
    assert (await shop.orders.get(f"{API}/cart", headers=customer.headers)).json()["data"]["items"] == []
    no_id = await shop.orders.delete(f"{API}/cart/remove", headers=customer.headers)
    assert no_id.status_code == 400


async def test_concurrent_adds_all_count(shop, seller, customer):
    """Cart writes are compare-and-set: 10 concurrent adds of 1 end at quantity 10 or a clean 409."""
    product = await shop.new_product(seller, stock=100)
    answers = await asyncio.gather(*(shop.add(customer, product, 1) for _ in range(10)))
    ok = sum(a.status_code == 200 for a in answers)
    assert all(a.status_code in (200, 409) for a in answers)
    assert all(
        a.json()["message"] == "Cart was modified concurrently, please retry" for a in answers if a.status_code == 409
    )
    stored = await shop.app.state.repo.get_cart(customer.id)
    assert stored["items"][0]["quantity"] == ok
