"""The order state machine and its side effects (contract §4.9, §4.12, §5; checklist 22–30)."""

from __future__ import annotations

import asyncio

import pytest

from tests.orders.conftest import API, SVC

ALL = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "failed")
LEGAL = {
    ("pending", "confirmed"), ("pending", "cancelled"), ("pending", "failed"),
    ("confirmed", "processing"), ("confirmed", "cancelled"), ("processing", "shipped"), ("shipped", "delivered"),
}  # fmt: skip
PATH_TO = {
    "pending": [], "confirmed": ["confirmed"], "processing": ["confirmed", "processing"],
    "shipped": ["confirmed", "processing", "shipped"], "delivered": ["confirmed", "processing", "shipped", "delivered"],
    "cancelled": ["cancelled"], "failed": ["failed"],
}  # fmt: skip


async def _order_in(shop, seller, customer, status: str) -> dict:
    order = await shop.placed(customer, (await shop.new_product(seller, stock=5), 1))
    for step in PATH_TO[status]:
        response = await shop.set_status(order["id"], step)
        assert response.status_code == 200, response.text
        order = response.json()["data"]
    return order


async def test_22_confirm(shop, seller, customer):
    product = await shop.new_product(seller, stock=10)
    order = await shop.placed(customer, (product, 2))
    response = await shop.set_status(order["id"], "confirmed", notes="Paid by phone")
    assert response.status_code == 200 and response.json()["message"] == "Order status updated"
    data = response.json()["data"]
    assert data["status"] == "confirmed" and data["confirmedAt"]
    assert {i["status"] for i in data["items"]} == {"confirmed"}
    assert [h["status"] for h in data["statusHistory"]] == ["pending", "confirmed"]
    assert data["statusHistory"][1]["notes"] == "Paid by phone" and data["statusHistory"][1]["by"] == "service"
    state = await shop.product(product)
    assert state["soldStock"] == 2 and state["reservedStock"] == 0 and state["stock"] == 8


async def test_23_illegal_transitions_answer_409(shop, seller, customer):
    pending = await _order_in(shop, seller, customer, "pending")
    skip = await shop.set_status(pending["id"], "shipped")
    assert skip.status_code == 409 and skip.json()["message"] == "Invalid status transition from pending to shipped"
    confirmed = await _order_in(shop, seller, customer, "confirmed")
    same = await shop.set_status(confirmed["id"], "confirmed")
    assert same.json()["message"] == "Invalid status transition from confirmed to confirmed"
    delivered = await _order_in(shop, seller, customer, "delivered")
    late = await shop.set_status(delivered["id"], "cancelled")
    assert late.status_code == 409 and late.json()["message"] == "Invalid status transition from delivered to cancelled"
    unknown = await shop.set_status(pending["id"], "lost")
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["field"] == "status"


async def test_every_illegal_transition_is_refused_and_changes_nothing(shop, seller):
    customers = await shop.new_customers(len(ALL))
    orders = {status: await _order_in(shop, seller, c, status) for status, c in zip(ALL, customers, strict=True)}
    for status, order in orders.items():
        for target in ALL:
            if (status, target) in LEGAL:
                continue
            response = await shop.set_status(order["id"], target)
            assert response.status_code == 409, (status, target)
            assert response.json()["message"] == f"Invalid status transition from {status} to {target}"
        stored = await shop.app.state.repo.get_order(order["id"])
        assert stored["status"] == status and len(stored["statusHistory"]) == len(PATH_TO[status]) + 1


async def test_24_full_path_to_delivered(shop, seller, customer):
    order = await _order_in(shop, seller, customer, "confirmed")
    for status in ("processing", "shipped", "delivered"):
        response = await shop.set_status(order["id"], status)
        assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["deliveredAt"] and data["shippedAt"] and data["paymentStatus"] == "paid"
    assert {i["status"] for i in data["items"]} == {"fulfilled"}
    assert [h["status"] for h in data["statusHistory"]] == [
        "pending",
        "confirmed",
        "processing",
        "shipped",
        "delivered",
    ]
    await shop.settle()
    stats = await shop.customer.get(f"{API}/customers/admin/{customer.id}", headers=SVC)
    assert stats.json()["data"]["totalOrders"] == 1 and stats.json()["data"]["totalSpent"] == data["totalAmount"]


async def test_25_status_alias_paths(shop, seller, customer):
    order = await _order_in(shop, seller, customer, "pending")
    patched = await shop.orders.patch(f"{API}/orders/{order['id']}/status", json={"status": "confirmed"}, headers=SVC)
    assert patched.status_code == 200 and patched.json()["data"]["status"] == "confirmed"
    put = await shop.orders.put(f"{API}/orders/{order['id']}/status", json={"status": "processing"}, headers=SVC)
    assert put.status_code == 200
    admin = shop.token("admin", "a" * 24)
    via_admin = await shop.orders.patch(
        f"{API}/admin/orders/{order['id']}/status", json={"status": "shipped"}, headers=admin
    )
    assert via_admin.status_code == 200 and via_admin.json()["data"]["statusHistory"][-1]["by"] == f"admin:{'a' * 24}"


async def test_26_status_change_needs_the_key_or_an_admin(shop, seller, customer):
    order = await _order_in(shop, seller, customer, "pending")
    url = f"{API}/admin/orders/{order['id']}/status"
    assert (await shop.orders.put(url, json={"status": "confirmed"})).status_code == 401
    wrong = await shop.orders.put(url, json={"status": "confirmed"}, headers={"X-Service-Key": "nope"})
    assert wrong.status_code == 403
    as_customer = await shop.orders.put(url, json={"status": "confirmed"}, headers=customer.headers)
    assert as_customer.status_code == 403
    malformed = await shop.orders.put(f"{API}/admin/orders/xyz/status", json={"status": "confirmed"}, headers=SVC)
    assert malformed.status_code == 400 and malformed.json()["message"] == "Invalid ID format"
    unknown = await shop.orders.put(f"{API}/admin/orders/{'d' * 24}/status", json={"status": "confirmed"}, headers=SVC)
    assert unknown.status_code == 404 and unknown.json()["message"] == "Order not found"


async def test_27_customer_cancels_own_pending_order(shop, seller, customer):
    product = await shop.new_product(seller, stock=10)
    order = await shop.placed(customer, (product, 4))
    response = await shop.orders.put(f"{API}/orders/{order['id']}/cancel", headers=customer.headers)
    assert response.status_code == 200 and response.json()["message"] == "Order cancelled successfully"
    data = response.json()["data"]
    assert data["status"] == "cancelled" and data["cancelledAt"] and data["cancelReason"] == "Customer cancellation"
    assert data["statusHistory"][-1]["by"] == f"customer:{customer.id}"
    assert {i["status"] for i in data["items"]} == {"cancelled"}
    state = await shop.product(product)
    assert state["stock"] == 10 and state["reservedStock"] == 0
    shipped = await _order_in(shop, seller, customer, "shipped")
    refused = await shop.orders.put(
        f"{API}/orders/{shipped['id']}/cancel", json={"reason": "too slow"}, headers=customer.headers
    )
    assert refused.status_code == 409 and refused.json()["message"] == "Order cannot be cancelled in current status"
    with_reason = await _order_in(shop, seller, customer, "pending")
    cancelled = await shop.orders.put(
        f"{API}/orders/{with_reason['id']}/cancel", json={"reason": "Changed my mind"}, headers=customer.headers
    )
    assert cancelled.json()["data"]["cancelReason"] == "Changed my mind"


async def test_28_other_customers_orders_are_not_found(shop, seller, customer):
    order = await _order_in(shop, seller, customer, "pending")
    intruder = await shop.new_customer()
    read = await shop.orders.get(f"{API}/orders/{order['id']}", headers=intruder.headers)
    assert read.status_code == 404 and read.json()["message"] == "Order not found"
    cancel = await shop.orders.put(f"{API}/orders/{order['id']}/cancel", headers=intruder.headers)
    assert cancel.status_code == 404 and cancel.json()["message"] == "Order not found"
    assert (await shop.app.state.repo.get_order(order["id"]))["status"] == "pending"
    as_seller = await shop.orders.put(f"{API}/orders/{order['id']}/cancel", headers=seller.headers)
    assert as_seller.status_code == 403


async def test_29_cancelling_a_confirmed_order_gives_sold_stock_back(shop, seller, customer):
    product = await shop.new_product(seller, stock=10)
    order = await shop.placed(customer, (product, 3))
    await shop.set_status(order["id"], "confirmed")
    assert (await shop.product(product))["soldStock"] == 3
    response = await shop.set_status(order["id"], "cancelled", notes="Out of stock at the warehouse")
    assert response.status_code == 200
    assert response.json()["data"]["cancelReason"] == "Out of stock at the warehouse"
    state = await shop.product(product)
    assert state["soldStock"] == 0 and state["stock"] == 10


async def test_30_expired_reservation(shop_factory):
    async with shop_factory(RESERVATION_MINUTES=0.02, PENDING_GRACE_SECONDS=0) as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        product = await shop.new_product(seller, stock=5)
        order = await shop.placed(customer, (product, 2))
        await asyncio.sleep(1.5)
        confirm = await shop.set_status(order["id"], "confirmed")
        assert confirm.status_code == 409 and confirm.json()["message"] == "Inventory reservation is no longer active"
        assert (await shop.app.state.repo.get_order(order["id"]))["status"] == "pending"
        assert await shop.app.state.orders.fail_expired() == 1
        stored = await shop.app.state.repo.get_order(order["id"])
        assert stored["status"] == "failed"
        assert stored["statusHistory"][-1] == {
            **stored["statusHistory"][-1],
            "by": "system",
            "notes": "Reservation expired",
        }
        assert {i["status"] for i in stored["items"]} == {"cancelled"}
        assert (await shop.product(product))["reservedStock"] == 0


async def test_expiry_task_runs_by_itself(shop_factory):
    async with shop_factory(RESERVATION_MINUTES=0.01, PENDING_GRACE_SECONDS=0, EXPIRY_TASK_SECONDS=0.2) as shop:
        seller, customer = await shop.new_seller(), await shop.new_customer()
        order = await shop.placed(customer, (await shop.new_product(seller), 1))
        for _ in range(60):
            if (await shop.app.state.repo.get_order(order["id"]))["status"] == "failed":
                break
            await asyncio.sleep(0.1)
        assert (await shop.app.state.repo.get_order(order["id"]))["status"] == "failed"


async def test_confirm_with_products_down_leaves_the_order_pending(shop, seller, customer):
    order = await _order_in(shop, seller, customer, "pending")
    shop.links["products"].down = True
    response = await shop.set_status(order["id"], "confirmed")
    assert response.status_code == 503 and response.json()["message"] == "Products service unavailable"
    assert (await shop.app.state.repo.get_order(order["id"]))["status"] == "pending"


async def test_cancel_with_products_down_still_answers_200_and_releases_later(shop, seller, customer):
    product = await shop.new_product(seller, stock=5)
    order = await shop.placed(customer, (product, 5))
    shop.links["products"].down = True
    response = await shop.orders.put(f"{API}/orders/{order['id']}/cancel", headers=customer.headers)
    assert response.status_code == 200
    rows = {r["kind"]: r for r in await shop.outbox_rows(order["id"])}
    assert rows["inventory_release"]["status"] == "pending" and rows["inventory_release"]["attempts"] == 1
    shop.links["products"].down = False
    await shop.app.state.outbox.rows.update_many(
        {"status": "pending"}, {"$set": {"nextAttemptAt": "2000-01-01T00:00:00.000Z"}}
    )
    drained = await shop.orders.post(f"{API}/service/outbox/drain", headers=SVC)
    assert drained.status_code == 200 and drained.json()["data"]["sent"] >= 1
    assert (await shop.product(product))["stock"] == 5


async def test_concurrent_transitions_one_wins(shop, seller, customer):
    product = await shop.new_product(seller, stock=5)
    order = await shop.placed(customer, (product, 2))
    answers = await asyncio.gather(
        *(shop.set_status(order["id"], "confirmed") for _ in range(3)),
        *(shop.set_status(order["id"], "cancelled") for _ in range(3)),
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 5
    stored = await shop.app.state.repo.get_order(order["id"])
    assert len(stored["statusHistory"]) == 2
    state = await shop.product(product)
    if stored["status"] == "confirmed":
        assert state["soldStock"] == 2 and state["stock"] == 3
    else:
        assert state["soldStock"] == 0 and state["reservedStock"] == 0 and state["stock"] == 5


@pytest.mark.parametrize("retries", [3])
async def test_each_side_effect_once_even_when_retried(shop, seller, customer, retries):
    """Every transition queues its rows once; delivering them again (the outbox retrying after a
    lost answer) changes nothing: customer stats count the order once, the release gives back once."""
    product = await shop.new_product(seller, stock=10)
    delivered = await _order_in(shop, seller, customer, "delivered")
    cancelled = await shop.placed(customer, (product, 4))
    await shop.set_status(cancelled["id"], "cancelled")
    await shop.settle()
    outbox = shop.app.state.outbox
    keys = {r["dedupeKey"] for r in await outbox.rows.find({})}
    for order_id, status in [(delivered["id"], s) for s in PATH_TO["delivered"]] + [(cancelled["id"], "cancelled")]:
        assert f"{order_id}:status:{status}" in keys
    assert f"{delivered['id']}:order_stats" in keys and f"{cancelled['id']}:release" in keys
    assert sum(1 for k in keys if k.endswith(":release")) == 1
    for _ in range(retries):  # deliver every row again
        await outbox.rows.update_many({}, {"$set": {"status": "pending", "nextAttemptAt": "2000-01-01T00:00:00.000Z"}})
        await outbox.drain_once()
    profile = (await shop.customer.get(f"{API}/customers/admin/{customer.id}", headers=SVC)).json()["data"]
    assert profile["totalOrders"] == 1
    state = await shop.product(product)
    assert state["stock"] == 10 and state["reservedStock"] == 0
    rows = await outbox.rows.find({})
    assert {r["status"] for r in rows} == {"sent"}, [(r["dedupeKey"], r["status"], r["lastError"]) for r in rows]


async def test_crash_between_status_change_and_queuing_is_repaired(shop, seller, customer):
    order = await _order_in(shop, seller, customer, "pending")
    effects = shop.app.state.orders.effects
    original = effects.queue

    async def crash(*args, **kwargs):
        raise RuntimeError("killed")

    effects.queue = crash
    response = await shop.set_status(order["id"], "cancelled")
    effects.queue = original
    assert response.status_code == 200
    assert (await shop.app.state.repo.get_order(order["id"]))["outboxPending"]
    assert await effects.repair(older_than_seconds=-1) == 1
    stored = await shop.app.state.repo.get_order(order["id"])
    assert stored["outboxPending"] == []
    keys = {r["dedupeKey"] for r in await shop.app.state.outbox.rows.find({"payload.orderId": order["id"]})}
    assert {f"{order['id']}:status:cancelled", f"{order['id']}:release"} <= keys
