"""Catalogue: listing, search, detail, create/update/delete, media, history, admin (checklist 1–22, 35–37)."""

from __future__ import annotations

from tests.products.conftest import API, SVC, Seller, create_product, dead_url, get_product, token_for

LIST = f"{API}/products"


async def test_empty_catalogue(client):
    response = await client.get(LIST)
    body = response.json()
    assert response.status_code == 200 and body["message"] == "Products retrieved successfully"
    assert body["data"] == []
    assert body["pagination"] == {"page": 1, "limit": 10, "total": 0, "pages": 0, "totalPages": 0}


async def test_paging_limits_are_validated(client):
    for params in ({"limit": 101}, {"limit": 0}, {"page": 0}, {"limit": "x"}):
        response = await client.get(LIST, params=params)
        assert response.status_code == 400, params
        assert response.json()["message"] == "Validation error"


async def test_sorting_whitelist_and_alias(client, seller):
    for price in (50, 10, 30):
        await create_product(client, seller, name=f"P{price}", price=price)
    bad = await client.get(LIST, params={"sortBy": "revenue"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "sortBy"
    assert (await client.get(LIST, params={"sort": "-password"})).json()["errors"][0]["field"] == "sortBy"
    asc = (await client.get(LIST, params={"sortBy": "price", "sortOrder": "asc"})).json()["data"]
    assert [p["price"] for p in asc] == [10, 30, 50]
    desc = (await client.get(LIST, params={"sort": "-price"})).json()["data"]
    assert [p["price"] for p in desc] == [50, 30, 10]
    by_name = (await client.get(LIST, params={"sort": "name"})).json()["data"]
    assert [p["name"] for p in by_name] == ["P10", "P30", "P50"]
    paged = (await client.get(LIST, params={"sort": "price", "limit": 2, "page": 2})).json()
    assert [p["price"] for p in paged["data"]] == [50]
    assert paged["pagination"] == {"page": 2, "limit": 2, "total": 3, "pages": 2, "totalPages": 2}


async def test_search_matches_name_tag_and_description(client, seller):
    a = await create_product(client, seller, name="phone x1")
    b = await create_product(client, seller, name="Case", tags=["phone"])
    c = await create_product(client, seller, name="Charger", description="Fits every Phone model")
    await create_product(client, seller, name="Laptop", description="no match here")
    found = (await client.get(LIST, params={"search": "PHONE"})).json()
    assert {p["id"] for p in found["data"]} == {a["id"], b["id"], c["id"]}
    assert found["pagination"]["total"] == 3
    prefix = (await client.get(LIST, params={"search": "char"})).json()["data"]
    assert [p["id"] for p in prefix] == [c["id"]]
    both = (await client.get(LIST, params={"search": "phone model"})).json()["data"]
    assert [p["id"] for p in both] == [c["id"]]
    # Regex metacharacters are literal, never a server error.
    for text in ("a (", "((", ".*", "[", "phone\\"):
        response = await client.get(LIST, params={"search": text})
        assert response.status_code == 200, text
    assert (await client.get(LIST, params={"search": ".*"})).json()["data"] == []
    assert (await client.get(LIST, params={"search": "x" * 101})).status_code == 400


async def test_search_falls_back_to_scan_with_the_same_answers(app_factory, seller):
    async with app_factory(SEARCH_CANDIDATE_LIMIT=1) as client:
        s = Seller(client)
        a = await create_product(client, s, name="phone x1")
        b = await create_product(client, s, name="Case", tags=["phone"])
        await create_product(client, s, name="Laptop")
        found = (await client.get(LIST, params={"search": "PHONE", "sort": "name"})).json()
        assert [p["id"] for p in found["data"]] == [b["id"], a["id"]]
        assert found["pagination"]["total"] == 2


async def test_search_follows_updates(client, seller):
    p = await create_product(client, seller, name="Old name")
    await client.put(f"{LIST}/{p['id']}", json={"name": "Brand new"}, headers=seller.headers)
    assert (await client.get(LIST, params={"search": "old"})).json()["data"] == []
    assert [x["id"] for x in (await client.get(LIST, params={"search": "brand"})).json()["data"]] == [p["id"]]


async def test_price_range(client, seller):
    for price in (40, 50, 75, 100, 120):
        await create_product(client, seller, name=f"P{price}", price=price)
    data = (await client.get(LIST, params={"minPrice": 50, "maxPrice": 100, "sort": "price"})).json()["data"]
    assert [p["price"] for p in data] == [50, 75, 100]
    bad = await client.get(LIST, params={"minPrice": 10, "maxPrice": 5})
    assert bad.status_code == 400 and bad.json()["message"] == "Validation error"
    assert (await client.get(LIST, params={"minPrice": -1})).status_code == 400


async def test_category_and_subcategory_filters(client, seller):
    a = await create_product(client, seller, category="Electronics", subcategory="Phones")
    await create_product(client, seller, category="Books")
    data = (await client.get(LIST, params={"category": "ELECTRONICS", "subcategory": "phones"})).json()["data"]
    assert [p["id"] for p in data] == [a["id"]]
    assert data[0]["category"] == "electronics" and data[0]["subcategory"] == "phones"
    assert (await client.get(LIST, params={"sellerId": "nope"})).status_code == 400


async def test_non_active_statuses_need_owner_or_service(client, seller, other_seller):
    active = await create_product(client, seller, name="Active")
    hidden = await create_product(client, seller, name="Hidden", status="inactive")
    await create_product(client, other_seller, name="Other hidden", isActive=False)
    public = await client.get(LIST, params={"status": "inactive"})
    assert public.status_code == 403 and public.json()["message"] == "Not allowed to view inactive products"
    mine = await client.get(LIST, params={"status": "inactive", "sellerId": seller.id}, headers=seller.headers)
    assert mine.status_code == 200 and [p["id"] for p in mine.json()["data"]] == [hidden["id"]]
    implicit = await client.get(LIST, params={"status": "inactive"}, headers=seller.headers)
    assert [p["id"] for p in implicit.json()["data"]] == [hidden["id"]]
    theirs = await client.get(LIST, params={"status": "inactive", "sellerId": other_seller.id}, headers=seller.headers)
    assert theirs.status_code == 403
    service = await client.get(LIST, params={"status": "all"}, headers=SVC)
    assert service.json()["pagination"]["total"] == 3
    assert [p["id"] for p in (await client.get(LIST)).json()["data"]] == [active["id"]]
    assert (await client.get(LIST, headers={"Authorization": "Bearer junk"})).status_code == 401
    assert (await client.get(LIST, headers={"X-Service-Key": "wrong"})).status_code == 403


async def test_inactive_product_detail(client, seller, other_seller):
    p = await create_product(client, seller, status="inactive")
    url = f"{LIST}/{p['id']}"
    assert (await client.get(url)).status_code == 404
    assert (await client.get(url, headers=other_seller.headers)).status_code == 404
    assert (await client.get(url, headers=seller.headers)).status_code == 200
    assert (await client.get(url, headers=SVC)).status_code == 200


async def test_malformed_and_unknown_ids(client):
    bad = await client.get(f"{LIST}/abc")
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid ID format"
    unknown = await client.get(f"{LIST}/{'a' * 24}")
    assert unknown.status_code == 404 and unknown.json()["message"] == "Product not found"


async def test_create_requires_a_seller_token(client):
    body = {"name": "X", "price": 1}
    missing = await client.post(LIST, json=body)
    assert missing.status_code == 401 and missing.json()["message"] == "Access token required"
    customer = await client.post(LIST, json=body, headers=token_for(client, "c" * 24, "customer"))
    assert customer.status_code == 403


async def test_create_validation_and_readme_body(client, seller):
    response = await client.post(LIST, json={}, headers=seller.headers)
    assert response.status_code == 400 and response.json()["message"] == "Validation error"
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert fields == {"name": "Product name is required", "price": "Price is required"}
    readme = await client.post(
        LIST, json={"name": "Lamp", "price": 19.999, "description": "A desk lamp"}, headers=seller.headers
    )
    assert readme.status_code == 201
    data = readme.json()["data"]
    assert data["category"] == "uncategorized" and data["price"] == 20.0 and data["sellerId"] == seller.id
    for bad in (
        {"name": "X", "price": -1},
        {"name": "X", "price": "abc"},
        {"name": "X", "price": 1, "stock": -1},
        {"name": "X", "price": 1, "stock": 1.5},
        {"name": "X" * 201, "price": 1},
        {"name": "X", "price": 1, "tags": ["ok", ""]},
        {"name": "X", "price": 1, "specifications": {"a.b": 1}},
        {"name": "X", "price": 1, "specifications": {"a": {"nested": 1}}},
        {"name": "X", "price": 1, "status": "deleted"},
        {"name": "X", "price": 1, "images": [{"media_id": "not-a-uuid"}]},
    ):
        response = await client.post(LIST, json=bad, headers=seller.headers)
        assert response.status_code == 400, bad
    bad_image = await client.post(
        LIST, json={"name": "X", "price": 1, "images": [{"media_id": "x"}]}, headers=seller.headers
    )
    assert bad_image.json()["errors"][0]["field"] == "images.0.media_id"
    assert (
        await client.post(LIST, content=b"[1]", headers={**seller.headers, "Content-Type": "application/json"})
    ).status_code == 400


async def test_cannot_create_for_another_seller(client, seller, other_seller):
    response = await client.post(
        LIST, json={"name": "X", "price": 1, "sellerId": other_seller.id}, headers=seller.headers
    )
    assert response.status_code == 403 and response.json()["message"] == "Cannot create products for another seller"
    own = await client.post(LIST, json={"name": "X", "price": 1, "sellerId": seller.id}, headers=seller.headers)
    assert own.status_code == 201


async def test_images_validated_and_marked_used(client, seller, media):
    a, b = media.new_image(), media.new_image()
    p = await create_product(client, seller, images=[{"media_id": a}, {"media_id": b.upper()}])
    assert [i["isPrimary"] for i in p["images"]] == [True, False]
    assert p["primaryImage"]["media_id"] == a and p["images"][1]["media_id"] == b
    assert media.bodies("/api/v1/media/validate") == [{"fileIds": [a, b]}]
    assert sorted(media.marked) == sorted([a, b])
    assert {k.lower(): v for k, v in media.requests[0][2].items()}["x-service-key"] == "test-service-key"
    chosen = await create_product(
        client,
        seller,
        images=[
            {"media_id": a},
            {"media_id": b, "isPrimary": True},
            {"url": "https://x.test/c.jpg", "isPrimary": True},
        ],
    )
    assert [i["isPrimary"] for i in chosen["images"]] == [False, True, False]
    assert (await create_product(client, seller))["primaryImage"] is None


async def test_invalid_media_id_writes_nothing(client, seller, media):
    good, unknown = media.new_image(), "550e8400-e29b-41d4-a716-446655440099"
    response = await client.post(
        LIST,
        json={"name": "X", "price": 1, "images": [{"media_id": good}, {"media_id": unknown}]},
        headers=seller.headers,
    )
    assert response.status_code == 400 and response.json()["message"] == f"Invalid media files: {unknown}"
    assert media.marked == []
    assert (await client.get(LIST, headers=SVC, params={"status": "all"})).json()["pagination"]["total"] == 0


async def test_media_down(app_factory, media):
    async with app_factory(MEDIA_SERVICE_URL=dead_url()) as client:
        s = Seller(client)
        response = await client.post(
            LIST, json={"name": "X", "price": 1, "images": [{"media_id": media.new_image()}]}, headers=s.headers
        )
        assert response.status_code == 503 and response.json()["message"] == "Media service unavailable"
        assert (await client.get(LIST, headers=SVC, params={"status": "all"})).json()["pagination"]["total"] == 0
        legacy = await client.post(
            LIST, json={"name": "X", "price": 1, "images": [{"url": "https://x.test/a.png"}]}, headers=s.headers
        )
        assert legacy.status_code == 201
        assert (await client.post(LIST, json={"name": "Y", "price": 1}, headers=s.headers)).status_code == 201


async def test_created_product_shape(client, seller):
    p = await create_product(client, seller, stock=7, comparePrice=129.99, specifications={"Brand": "Example"})
    assert p["_id"] == p["id"] and p["stock"] == p["totalStock"] == 7
    assert p["isActive"] is True and p["status"] == "active" and p["sellerActive"] is True
    assert p["reservedStock"] == 0 and p["soldStock"] == 0 and p["revenue"] == 0 and p["comparePrice"] == 129.99
    for hidden in ("searchText", "revenueCents", "reservations", "priceCents"):
        assert hidden not in p
    assert p["isLowStock"] is False and p["isOutOfStock"] is False
    low = await create_product(client, seller, stock=3)
    assert low["isLowStock"] is True
    assert (await create_product(client, seller, stock=0))["isOutOfStock"] is True


async def test_other_seller_cannot_modify(client, seller, other_seller):
    p = await create_product(client, seller)
    url = f"{LIST}/{p['id']}"
    put = await client.put(url, json={"price": 1}, headers=other_seller.headers)
    assert put.status_code == 403 and put.json()["message"] == "You can only modify your own products"
    assert (await client.delete(url, headers=other_seller.headers)).status_code == 403
    assert (await client.put(f"{url}/stock", json={"stock": 1}, headers=other_seller.headers)).status_code == 403
    assert (await get_product(client, p["id"]))["price"] == 99.99


async def test_update_writes_history(client, seller):
    p = await create_product(client, seller, price=100)
    url = f"{LIST}/{p['id']}"
    response = await client.put(url, json={"price": 120}, headers=seller.headers)
    assert response.status_code == 200 and response.json()["data"]["price"] == 120
    history = (await client.get(f"{url}/history", headers=seller.headers)).json()["data"]["history"]
    assert len(history) == 1
    entry = history[0]
    assert entry["type"] == "price_change" and entry["previousValue"] == 100 and entry["newValue"] == 120
    assert entry["previousPrice"] == 100 and entry["newPrice"] == 120 and entry["id"]
    await client.put(url, json={"isActive": False}, headers=seller.headers)
    await client.put(url, json={"stock": 25}, headers=seller.headers)
    types = [h["type"] for h in (await client.get(f"{url}/history", headers=seller.headers)).json()["data"]["history"]]
    assert types == ["stock_add", "status_change", "price_change"]
    unchanged = await client.put(url, json={}, headers=seller.headers)
    assert unchanged.status_code == 200 and unchanged.json()["data"]["stock"] == 25
    assert (await client.put(url, json={"status": "deleted"}, headers=seller.headers)).status_code == 400


async def test_delete_is_soft(client, seller):
    p = await create_product(client, seller)
    url = f"{LIST}/{p['id']}"
    response = await client.delete(url, headers=seller.headers)
    assert response.status_code == 200 and response.json()["message"] == "Product deleted successfully"
    assert (await client.get(url)).status_code == 404
    assert (await client.get(url, headers=seller.headers)).status_code == 404
    admin = await client.get(f"{LIST}/admin", params={"status": "deleted"}, headers=SVC)
    assert [x["id"] for x in admin.json()["data"]["products"]] == [p["id"]]
    assert (await client.delete(url, headers=seller.headers)).status_code == 404
    assert (await client.get(url, headers=SVC)).json()["data"]["status"] == "deleted"
    other = await create_product(client, seller)
    assert (await client.delete(f"{LIST}/{other['id']}", headers=SVC)).status_code == 200


async def test_history_auth_and_type_filter(client, seller):
    p = await create_product(client, seller, price=10)
    url = f"{LIST}/{p['id']}/history"
    assert (await client.get(url)).status_code == 401
    await client.put(f"{LIST}/{p['id']}", json={"price": 11}, headers=seller.headers)
    reserve = {"orderId": "h-1", "items": [{"productId": p["id"], "quantity": 2}]}
    await client.post(f"{API}/service/inventory/reserve", json=reserve, headers=SVC)
    await client.post(f"{API}/service/inventory/confirm", json={"orderId": "h-1"}, headers=SVC)
    sales = (await client.get(url, params={"type": "sale"}, headers=seller.headers)).json()
    assert [h["type"] for h in sales["data"]["history"]] == ["sale"]
    assert sales["data"]["history"][0]["metadata"]["totalPrice"] == 22.0
    assert sales["pagination"]["total"] == 1 and sales["data"]["pagination"]["total"] == 1
    assert (await client.get(url, params={"type": "bogus"}, headers=seller.headers)).status_code == 400
    assert (await client.get(url, headers=SVC)).json()["pagination"]["total"] == 2


async def test_seller_listing(client, seller):
    await create_product(client, seller, name="A", stock=3)
    await create_product(client, seller, name="B")
    hidden = await create_product(client, seller, name="C", status="inactive")
    url = f"{LIST}/seller/{seller.id}"
    public = await client.get(url)
    body = public.json()
    assert public.status_code == 200 and body["message"] == "Seller products retrieved successfully"
    assert sorted(p["name"] for p in body["data"]["products"]) == ["A", "B"]
    assert body["data"]["summary"] == {"total": 3, "active": 2, "inactive": 1, "lowStock": 1, "outOfStock": 0}
    assert (await client.get(url, params={"status": "all"})).status_code == 403
    owner = (await client.get(url, headers=seller.headers)).json()["data"]
    assert owner["pagination"]["total"] == 3
    only_hidden = (await client.get(url, params={"status": "inactive"}, headers=seller.headers)).json()["data"]
    assert [p["id"] for p in only_hidden["products"]] == [hidden["id"]]
    assert (await client.get(url, params={"sort": "-revenue"}, headers=SVC)).status_code == 200
    assert (await client.get(f"{LIST}/seller/xyz")).status_code == 400


async def test_admin_status_and_list(client, seller):
    p = await create_product(client, seller, name="Blue Lamp", category="lighting")
    url = f"{LIST}/admin/{p['id']}/status"
    bad = await client.patch(url, json={"status": "archived"}, headers=SVC)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["message"] == "Invalid status. Must be active, inactive, or draft"
    ok = await client.patch(url, json={"status": "inactive"}, headers=SVC)
    assert ok.status_code == 200 and ok.json()["data"]["status"] == "inactive"
    assert (await client.get(f"{LIST}/{p['id']}")).status_code == 404
    history = (await client.get(f"{LIST}/{p['id']}/history", headers=SVC)).json()["data"]["history"]
    assert history[0]["type"] == "status_change" and history[0]["previousStatus"] == "active"
    admin_token = token_for(client, "d" * 24, "admin")
    listed = await client.get(f"{LIST}/admin", params={"search": "LIGHT"}, headers=admin_token)
    assert [x["id"] for x in listed.json()["data"]["products"]] == [p["id"]]
    assert (await client.get(f"{LIST}/admin", headers=seller.headers)).status_code == 403
    assert (await client.get(f"{LIST}/admin")).status_code == 401
    await client.delete(f"{LIST}/{p['id']}", headers=SVC)
    restored = await client.patch(url, json={"status": "active"}, headers=admin_token)
    assert restored.json()["data"]["status"] == "active"
    assert (await client.get(f"{LIST}/{p['id']}")).status_code == 200


async def test_owner_seller_listing_totals_match_the_pages(client, seller):
    """An owner's unfiltered listing takes its total from the summary counts; filtered ones count."""
    await create_product(client, seller, name="A", price=5)
    await create_product(client, seller, name="B", status="draft", price=50)
    await create_product(client, seller, name="C", status="inactive", price=70)
    gone = await create_product(client, seller, name="D", price=90)
    await client.delete(f"{LIST}/{gone['id']}", headers=seller.headers)
    url = f"{LIST}/seller/{seller.id}"
    for params, names in (
        ({}, ["A", "B", "C"]),
        ({"status": "draft"}, ["B"]),
        ({"status": "active"}, ["A"]),
        ({"status": "all", "minPrice": 40}, ["B", "C"]),
        ({"status": "all", "limit": 1, "page": 2, "sort": "name"}, ["B"]),
    ):
        data = (await client.get(url, params=params, headers=seller.headers)).json()["data"]
        assert sorted(p["name"] for p in data["products"]) == names, params
        total = 3 if "limit" in params else len(names)
        assert data["pagination"]["total"] == total, params
        assert set(data["summary"]) == {"total", "active", "inactive", "lowStock", "outOfStock"}
