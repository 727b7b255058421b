"""Hostile inputs and contract fixes of issues 10 and 11 (products side): each is refused with
a 4xx and stores nothing, and the repaired contract answers hold."""

from __future__ import annotations

from typing import Any

from products.levels import MAX_STOCK
from shared.auth import issue_token
from tests.products.conftest import API, SVC, Seller, create_product, get_product, reserve

LIST = f"{API}/products"
STOCK = f"{API}/service/products/stock"
BULK = f"{API}/service/products/bulk"


def seller_token(client: Any, seller: Seller, version: int) -> dict[str, str]:
    settings = client.app.state.settings
    token, _ = issue_token(settings, subject=seller.id, role="seller", email="s@example.com", version=version)
    return {"Authorization": f"Bearer {token}"}


async def history(client: Any, product_id: str, **params: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/products/{product_id}/history", params=params, headers=SVC)
    assert response.status_code == 200, response.text
    return response.json()["data"]["history"]


async def test_huge_page_is_a_400(client):
    for page in ("99999999999999999999", "1000001", "0", "-1", "x"):
        response = await client.get(LIST, params={"page": page})
        assert response.status_code == 400 and response.json()["message"] == "Validation error", page
        assert response.json()["errors"][0]["field"] == "page"
    assert (await client.get(LIST, params={"page": "1000000"})).status_code == 200


async def test_bulk_with_non_string_ids_is_a_400(client, seller):
    p = await create_product(client, seller)
    for ids in ([{}], [[None]], [None], [1], [p["id"], {"$gt": ""}]):
        response = await client.post(BULK, json={"productIds": ids}, headers=SVC)
        assert response.status_code == 400, ids
        assert response.json()["success"] is False
    # A malformed (or newline-suffixed) string id is simply not found.
    found = await client.post(BULK, json={"productIds": [p["id"] + "\n", "x", p["id"]]}, headers=SVC)
    assert found.status_code == 200 and [d["id"] for d in found.json()["data"]] == [p["id"]]


async def test_stock_change_is_bounded_by_the_maximum(client, seller):
    p = await create_product(client, seller, stock=5)
    for change in (10**20, 9 * 10**18, -(10**20), MAX_STOCK + 1, 9e18, 1.5, "5", True):
        for _ in range(2):
            response = await client.put(
                STOCK, json={"updates": [{"productId": p["id"], "stockChange": change}]}, headers=SVC
            )
            assert response.status_code == 400, change
    assert (await get_product(client, p["id"]))["stock"] == 5
    big = MAX_STOCK - 5
    first = await client.put(STOCK, json={"updates": [{"productId": p["id"], "stockChange": big}]}, headers=SVC)
    assert first.status_code == 200 and first.json()["data"][0]["newStock"] == MAX_STOCK
    second = await client.put(STOCK, json={"updates": [{"productId": p["id"], "stockChange": 1}]}, headers=SVC)
    assert second.status_code == 409
    assert second.json()["message"] == (
        f"Stock for product {p['id']} cannot exceed {MAX_STOCK}: available {MAX_STOCK}, change 1"
    )
    after = await get_product(client, p["id"])
    assert after["stock"] == MAX_STOCK and after["totalStock"] == MAX_STOCK
    entries = await history(client, p["id"])
    assert [(e["type"], e["previousStock"], e["newStock"]) for e in entries] == [("stock_add", 5, MAX_STOCK)]


async def test_stock_change_and_its_history_entry_are_one_write(client, seller):
    """A crash after the stock update leaves the entry on the product; the next clean-up
    (or start-up) writes it, so the change never exists without its entry."""
    p = await create_product(client, seller, stock=10)
    repo = client.app.state.repo
    original = repo.history.insert_one
    calls = {"n": 0}

    async def crash_once(doc: dict[str, Any]) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("process died here")
        return await original(doc)

    repo.history.insert_one = crash_once
    try:
        response = await client.put(STOCK, json={"updates": [{"productId": p["id"], "stockChange": -4}]}, headers=SVC)
    finally:
        repo.history.insert_one = original
    assert response.status_code == 500
    stored = await repo.get_product(p["id"])
    assert stored["stock"] == 6 and stored["historyPending"] == 1
    assert [e["quantity"] for e in stored["pendingHistory"]] == [-4]
    await client.app.state.inventory.cleanup_expired()
    entries = await history(client, p["id"])
    assert [(e["type"], e["previousStock"], e["newStock"]) for e in entries] == [("stock_reduce", 10, 6)]
    stored = await repo.get_product(p["id"])
    assert stored["historyPending"] == 0 and stored["pendingHistory"] == []
    assert "pendingHistory" not in await get_product(client, p["id"])


async def test_failed_bulk_leaves_neither_change_nor_entry(client, seller):
    p1 = await create_product(client, seller, name="One", stock=10)
    p2 = await create_product(client, seller, name="Two", stock=5)
    body = {"updates": [{"productId": p1["id"], "stockChange": 7}, {"productId": p2["id"], "stockChange": -6}]}
    response = await client.put(STOCK, json=body, headers=SVC)
    assert response.status_code == 409
    assert (await get_product(client, p1["id"]))["stock"] == 10
    assert await history(client, p1["id"]) == []
    stored = await client.app.state.repo.get_product(p1["id"])
    assert stored["pendingHistory"] == [] and stored["historyPending"] == 0


async def test_search_without_words_never_scans(client, seller):
    await create_product(client, seller, name="Phone")
    products = client.app.state.repo.products
    seen: list[Any] = []
    find, count = products.find, products.count

    async def spy_find(filter: Any = None, **kw: Any) -> Any:
        seen.append(filter)
        return await find(filter, **kw)

    async def spy_count(filter: Any = None) -> Any:
        seen.append(filter)
        return await count(filter)

    products.find, products.count = spy_find, spy_count
    try:
        for text in ("!!!", "((", ".*", " - "):
            response = await client.get(LIST, params={"search": text})
            assert response.status_code == 200 and response.json()["data"] == [], text
            assert response.json()["pagination"]["total"] == 0
    finally:
        products.find, products.count = find, count
    assert "$regex" not in repr(seen)


async def test_image_urls_are_http_or_site_relative(client, seller):
    for url in ("javascript:alert(1)", "data:text/html,x", "//evil.example/x.png", "ftp://x/y", "/\\evil", "https://"):
        body = {"name": "X", "price": 1, "images": [{"url": url}]}
        response = await client.post(LIST, json=body, headers=seller.headers)
        assert response.status_code == 400, url
        assert response.json()["errors"][0]["field"] == "images.0.url"
    assert (await client.get(LIST, headers=SVC, params={"status": "all"})).json()["pagination"]["total"] == 0
    for url in ("https://cdn.example.com/a.png", "http://x.example/b.jpg", "/uploads/c.png"):
        response = await client.post(
            LIST, json={"name": "X", "price": 1, "images": [{"url": url}]}, headers=seller.headers
        )
        assert response.status_code == 201, url
    p = await create_product(client, seller)
    update = await client.put(
        f"{LIST}/{p['id']}", json={"images": [{"url": "javascript:alert(1)"}]}, headers=seller.headers
    )
    assert update.status_code == 400


async def test_ids_are_matched_whole(client, seller):
    p = await create_product(client, seller)
    for path in (f"{LIST}/{p['id']}%0A", f"{LIST}/{p['id']}%0A/history", f"{API}/products/seller/{seller.id}%0A"):
        response = await client.get(path, headers=SVC)
        assert response.status_code == 400 and response.json()["message"] == "Invalid ID format", path
    body = {"productId": p["id"] + "\n", "sellerId": seller.id}
    assert (await client.post(f"{API}/service/products/validate-seller", json=body, headers=SVC)).status_code == 400


async def test_admin_status_answers_the_contract_message(client, seller):
    p = await create_product(client, seller)
    url = f"{LIST}/admin/{p['id']}/status"
    for body in ({"status": "archived"}, {"status": "deleted"}, {"status": 5}, {}):
        response = await client.patch(url, json=body, headers=SVC)
        assert response.status_code == 400, body
        assert response.json()["message"] == "Invalid status. Must be active, inactive, or draft"
        assert response.json()["errors"][0] == {
            "field": "status", "message": "Invalid status. Must be active, inactive, or draft"
        }  # fmt: skip


async def test_stock_history_types_by_sign(client, seller):
    p = await create_product(client, seller, stock=10)
    await client.put(f"{LIST}/{p['id']}/stock", json={"stock": 4}, headers=seller.headers)
    await client.put(f"{LIST}/{p['id']}/stock", json={"stock": 9}, headers=seller.headers)
    await client.put(f"{LIST}/{p['id']}/inventory/adjust", json={"newStock": 7}, headers=seller.headers)
    types = [e["type"] for e in await history(client, p["id"])]
    assert types == ["stock_reduce", "stock_add", "stock_reduce"]
    assert [e["type"] for e in await history(client, p["id"], type="stock_add")] == ["stock_add"]
    assert len(await history(client, p["id"], type="stock_reduce")) == 2
    assert len(await history(client, p["id"], type="stock_update")) == 3
    movements = await client.get(f"{LIST}/{p['id']}/inventory/movements", params={"type": "stock_add"}, headers=SVC)
    assert [m["type"] for m in movements.json()["data"]["movements"]] == ["stock_add"]


async def test_legacy_stock_update_entries_are_migrated_at_start_up(app_factory, tmp_path):
    async with app_factory() as client:
        seller = Seller(client)
        p = await create_product(client, seller, stock=10)
        repo = client.app.state.repo
        for quantity in (-3, 5):
            await repo.add_history(
                {
                    "productId": p["id"],
                    "sellerId": seller.id,
                    "type": "stock_update",
                    "quantity": quantity,
                    "previousStock": 10,
                    "newStock": 10 + quantity,
                    "notes": "legacy",
                }  # fmt: skip
            )
        assert {e["type"] for e in await history(client, p["id"])} == {"stock_reduce", "stock_add"}  # by sign
    async with app_factory() as client:
        stored = await client.app.state.repo.history.find({"productId": p["id"]})
        assert sorted((e["quantity"], e["type"]) for e in stored) == [(-3, "stock_reduce"), (5, "stock_add")]
        assert len(await history(client, p["id"], type="stock_update")) == 2


async def test_stock_level_is_written_with_the_reservation(client, seller):
    p = await create_product(client, seller, stock=7, lowStockAlert=5)
    products = client.app.state.repo.products
    writes: list[str] = []
    update_one, find_one_and_update = products.update_one, products.find_one_and_update

    async def spy_update_one(*args: Any, **kw: Any) -> Any:
        writes.append("update_one")
        return await update_one(*args, **kw)

    async def spy_fou(*args: Any, **kw: Any) -> Any:
        writes.append("find_one_and_update")
        return await find_one_and_update(*args, **kw)

    products.update_one, products.find_one_and_update = spy_update_one, spy_fou
    try:
        assert (await reserve(client, "ord-level", [(p["id"], 3)])).status_code == 200
    finally:
        products.update_one, products.find_one_and_update = update_one, find_one_and_update
    assert writes == ["find_one_and_update"]
    after = await get_product(client, p["id"])
    assert (after["stock"], after["stockLevel"], after["isLowStock"]) == (4, "low", True)
    await reserve(client, "ord-out", [(p["id"], 4)])
    assert (await get_product(client, p["id"]))["stockLevel"] == "out"
    await client.post(f"{API}/service/inventory/release", json={"orderId": "ord-out"}, headers=SVC)
    await client.post(f"{API}/service/inventory/release", json={"orderId": "ord-level"}, headers=SVC)
    assert (await get_product(client, p["id"]))["stockLevel"] == "ok"


async def test_specifications_hold_only_what_a_product_page_needs(client, seller):
    good = {"Brand": "Example", "Weight grams": 180, "Screen-size": 6.1, "Waterproof": True}
    created = await client.post(LIST, json={"name": "X", "price": 1, "specifications": good}, headers=seller.headers)
    assert created.status_code == 201 and created.json()["data"]["specifications"] == good
    bad_values: list[Any] = [
        {"a": {"nested": 1}}, {"a": [1, 2]}, {"a": None}, {"a": "x" * 501}, {"a": 10**20},
        {"k" * 51: 1}, {"a.b": 1}, {"$where": 1}, {"": 1}, {"a\nb": 1}, {f"k{i}": i for i in range(51)},
        ["not", "an", "object"],
    ]  # fmt: skip
    for specs in bad_values:
        response = await client.post(
            LIST, json={"name": "X", "price": 1, "specifications": specs}, headers=seller.headers
        )
        assert response.status_code == 400, specs
        assert response.json()["errors"][0]["field"] == "specifications"
    update = await client.put(
        f"{LIST}/{created.json()['data']['id']}", json={"specifications": {"a": {"b": 1}}}, headers=seller.headers
    )
    assert update.status_code == 400
    assert (await client.get(LIST, headers=SVC, params={"status": "all"})).json()["pagination"]["total"] == 1


async def test_older_seller_tokens_are_refused_after_a_token_version_is_recorded(client, seller):
    url = f"{API}/service/products/seller-status"
    old, current = seller_token(client, seller, 1), seller_token(client, seller, 2)
    p = await create_product(client, seller)
    recorded = await client.post(url, json={"sellerId": seller.id, "isActive": True, "tokenVersion": 2}, headers=SVC)
    assert recorded.status_code == 200
    for method, path, body in (
        ("POST", LIST, {"name": "X", "price": 1}),
        ("PUT", f"{LIST}/{p['id']}", {"price": 5}),
        ("PUT", f"{LIST}/{p['id']}/stock", {"stock": 5}),
        ("DELETE", f"{LIST}/{p['id']}", None),
        ("GET", f"{LIST}/{p['id']}/history", None),
    ):
        response = await client.request(method, path, json=body, headers=old)
        assert response.status_code == 401 and response.json()["message"] == "Invalid token", (method, path)
    assert (await client.get(LIST, params={"status": "inactive"}, headers=old)).status_code == 401
    assert (await client.post(LIST, json={"name": "Y", "price": 1}, headers=current)).status_code == 201
    assert (await client.put(f"{LIST}/{p['id']}", json={"price": 5}, headers=current)).status_code == 200
    # A smaller version never lowers the recorded one.
    lower = await client.post(url, json={"sellerId": seller.id, "isActive": True, "tokenVersion": 1}, headers=SVC)
    assert lower.status_code == 200
    assert (await client.put(f"{LIST}/{p['id']}", json={"price": 6}, headers=old)).status_code == 401
    for bad in (-1, 2**63, "x", 1.5):
        body = {"sellerId": seller.id, "isActive": True, "tokenVersion": bad}
        assert (await client.post(url, json=body, headers=SVC)).status_code == 400, bad
