"""Admin create, lists, details, status with the products sync, service endpoints (checklist 22–31)."""

from __future__ import annotations

import asyncio

from shared.testing import free_port
from tests.sellers.conftest import (
    ADDRESS,
    API,
    HEADERS_KEY,
    admin_token,
    bearer,
    drain_due,
    login,
    repoint,
    signup,
)

SELLER_STATUS = "/api/v1/service/products/seller-status"
ACCOUNT = {"firstName": "Ann", "lastName": "Lee", "password": "secret123", "phone": "1234567890", "roleId": "x"}


async def set_status(client, seller_id: str, body: dict, headers: dict | None = None):
    return await client.patch(f"{API}/admin/{seller_id}/status", json=body, headers=headers or HEADERS_KEY)


async def test_create_with_service_key_or_admin_bearer(client):
    by_key = await client.post(
        f"{API}/create",
        json={**ACCOUNT, "email": "Ann@Example.com", "business": {"businessName": "Ann Co", "businessType": "llc"}},
        headers=HEADERS_KEY,
    )
    assert by_key.status_code == 201 and by_key.json()["message"] == "Seller created successfully"
    view = by_key.json()["data"]
    assert view["email"] == "ann@example.com" and view["businessName"] == "Ann Co" and view["businessType"] == "llc"
    assert view["address"] is None and view["role"] == "seller" and "passwordHash" not in by_key.text
    by_admin = await client.post(
        f"{API}/create",
        json={**ACCOUNT, "email": "bob@example.com", "businessName": "Bob Co", "address": ADDRESS},
        headers=bearer(admin_token(client)),
    )
    assert by_admin.status_code == 201 and by_admin.json()["data"]["address"]["city"] == "New York"
    seller = await signup(client)
    denied = await client.post(
        f"{API}/create", json={**ACCOUNT, "email": "c@example.com"}, headers=bearer(seller["token"])
    )
    assert denied.status_code == 403 and denied.json()["message"] == "Access denied"
    assert (await client.post(f"{API}/create", json={**ACCOUNT, "email": "c@example.com"})).status_code == 401
    duplicate = await client.post(f"{API}/create", json={**ACCOUNT, "email": "ANN@example.com"}, headers=HEADERS_KEY)
    assert duplicate.status_code == 409 and duplicate.json()["message"] == "Seller with this email already exists"
    invalid = await client.post(f"{API}/create", json={"email": "bad"}, headers=HEADERS_KEY)
    assert invalid.status_code == 400
    assert {e["field"] for e in invalid.json()["errors"]} == {"firstName", "lastName", "email", "password", "phone"}
    # no welcome email for admin-created sellers
    assert await client.app.state.outbox.rows.count({"dedupeKey": {"$regex": "^welcome_seller:"}}) == 1


async def test_list_requires_admin_bearer_and_matches_service_list(client):
    seller = await signup(client, 1)
    await signup(client, 2, firstName="Zed")
    assert (await client.get(f"{API}/list")).status_code == 401
    as_seller = await client.get(f"{API}/list", headers=bearer(seller["token"]))
    assert as_seller.status_code == 403 and as_seller.json()["message"] == "Access denied"
    params = {"sort": "firstName", "limit": "1", "page": "2"}
    listed = await client.get(f"{API}/list", params=params, headers=bearer(admin_token(client)))
    by_key = await client.get(f"{API}/admin", params=params, headers=HEADERS_KEY)
    assert listed.status_code == by_key.status_code == 200
    assert listed.json() == by_key.json()
    assert listed.json()["message"] == "Sellers retrieved successfully"
    assert [s["firstName"] for s in listed.json()["data"]["sellers"]] == ["Zed"]
    assert listed.json()["data"]["pagination"] == {"page": 2, "limit": 1, "total": 2, "pages": 2, "totalPages": 2}
    assert (await client.get(f"{API}/admin")).status_code == 401


async def test_list_filters_and_bad_values(client):
    a = await signup(client, 1)
    b = await signup(client, 2)
    c = await signup(client, 3)
    await set_status(client, b["seller"]["id"], {"isActive": False})
    await set_status(client, c["seller"]["id"], {"isActive": False, "isVerified": True})
    response = await client.get(
        f"{API}/admin", params={"status": "inactive", "verified": "false", "limit": 5}, headers=HEADERS_KEY
    )
    assert [s["id"] for s in response.json()["data"]["sellers"]] == [b["seller"]["id"]]
    active = await client.get(f"{API}/admin", params={"isActive": "true", "search": ""}, headers=HEADERS_KEY)
    assert [s["id"] for s in active.json()["data"]["sellers"]] == [a["seller"]["id"]]
    verified = await client.get(f"{API}/admin", params={"isVerified": "true"}, headers=HEADERS_KEY)
    assert [s["id"] for s in verified.json()["data"]["sellers"]] == [c["seller"]["id"]]
    newest_first = await client.get(f"{API}/admin", params={"unknown": "x"}, headers=HEADERS_KEY)
    ids = [s["id"] for s in newest_first.json()["data"]["sellers"]]
    assert ids == [c["seller"]["id"], b["seller"]["id"], a["seller"]["id"]]
    by_business = await client.get(f"{API}/admin", params={"sort": "-businessName"}, headers=HEADERS_KEY)
    assert [s["businessName"][-1] for s in by_business.json()["data"]["sellers"]] == ["3", "2", "1"]
    literal = await client.get(f"{API}/admin", params={"search": "("}, headers=HEADERS_KEY)
    assert literal.status_code == 200 and literal.json()["data"]["sellers"] == []
    dot = await client.get(f"{API}/admin", params={"search": "john.*3"}, headers=HEADERS_KEY)
    assert dot.json()["data"]["pagination"]["total"] == 0
    for bad in ({"limit": "0"}, {"limit": "101"}, {"page": "0"}, {"status": "gone"}, {"sort": "passwordHash"}):
        response = await client.get(f"{API}/admin", params=bad, headers=HEADERS_KEY)
        assert response.status_code == 400, bad
        assert response.json()["message"] == "Validation error"


async def test_admin_details_shows_lock_state(client):
    data = await signup(client)
    await login(client, "john0@example.com", "wrong-pass")
    response = await client.get(f"{API}/admin/{data['seller']['id']}", headers=HEADERS_KEY)
    assert response.status_code == 200 and response.json()["message"] == "Seller retrieved successfully"
    seller = response.json()["data"]["seller"]
    assert seller["loginAttempts"] == 1 and seller["lockUntil"] is None and seller["deactivatedAt"] is None
    assert response.json()["data"]["business"]["sellerId"] == data["seller"]["id"]
    assert (await client.get(f"{API}/admin/{'f' * 24}", headers=HEADERS_KEY)).status_code == 404
    assert (await client.get(f"{API}/admin/xyz", headers=HEADERS_KEY)).status_code == 400
    assert (await client.get(f"{API}/profile", headers=bearer(data["token"]))).json()["data"]["seller"].get(
        "loginAttempts"
    ) is None


async def test_deactivate_with_products_up_then_everything_refuses(client, products):
    data = await signup(client)
    sid = data["seller"]["id"]
    response = await set_status(client, sid, {"isActive": False})
    assert response.status_code == 200 and response.json()["message"] == "Seller status updated successfully"
    view = response.json()["data"]
    assert view["isActive"] is False and view["productsSynced"] is True
    assert products.bodies(SELLER_STATUS) == [{"sellerId": sid, "isActive": False, "tokenVersion": 1}]
    row = await client.app.state.outbox.rows.find_one({"dedupeKey": f"seller_status:{sid}"})
    assert row["status"] == "sent" and row["kind"] == "seller_status"
    details = (await client.get(f"{API}/admin/{sid}", headers=HEADERS_KEY)).json()["data"]
    assert details["seller"]["deactivatedAt"] and details["business"]["isActive"] is False
    signin = await login(client, "john0@example.com")
    assert signin.status_code == 403 and signin.json()["message"] == "Account is deactivated"
    profile = await client.get(f"{API}/profile", headers=bearer(data["token"]))
    assert profile.status_code == 403 and profile.json()["message"] == "Account is deactivated"
    refresh = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert refresh.status_code == 401
    verify = await client.post(f"{API}/service/verify", json={"sellerId": sid}, headers=HEADERS_KEY)
    assert verify.json()["data"]["isValid"] is False
    bulk = await client.post(f"{API}/service/bulk", json={"sellerIds": [sid]}, headers=HEADERS_KEY)
    assert bulk.json()["data"] == []
    forgot = await client.post(f"{API}/forgot-password", json={"email": "john0@example.com"})
    assert forgot.status_code == 200
    assert await client.app.state.outbox.rows.count({"dedupeKey": f"password_reset:{sid}"}) == 0
    # reactivation: products told again, the old tokens stay refused, sign-in works
    again = await set_status(client, sid, {"isActive": "true"})
    assert again.json()["data"]["isActive"] is True and again.json()["data"]["productsSynced"] is True
    assert products.bodies(SELLER_STATUS)[-1] == {"sellerId": sid, "isActive": True, "tokenVersion": 1}
    stale = await client.get(f"{API}/profile", headers=bearer(data["token"]))
    assert stale.status_code == 401 and stale.json()["message"] == "Invalid token"
    assert (await login(client, "john0@example.com")).status_code == 200
    # isActive sent unchanged still syncs
    same = await set_status(client, sid, {"isActive": True})
    assert same.json()["data"]["productsSynced"] is True and len(products.bodies(SELLER_STATUS)) == 3


async def test_products_down_last_state_wins_after_drain(app_factory, products):
    async with app_factory(PRODUCTS_SERVICE_URL=f"http://127.0.0.1:{free_port()}") as client:
        data = await signup(client)
        sid = data["seller"]["id"]
        off = await set_status(client, sid, {"isActive": False})
        assert off.status_code == 200 and off.json()["data"]["productsSynced"] is False
        on = await set_status(client, sid, {"isActive": True})
        assert on.status_code == 200 and on.json()["data"]["productsSynced"] is False
        rows = await client.app.state.outbox.rows.find({"kind": "seller_status"})
        assert len(rows) == 1 and rows[0]["status"] == "pending" and rows[0]["attempts"] == 1
        await repoint(client, "products", products.url)
        await drain_due(client)
        assert products.bodies(SELLER_STATUS)[-1] == {"sellerId": sid, "isActive": True, "tokenVersion": 1}
        row = await client.app.state.outbox.rows.find_one({"kind": "seller_status"})
        assert row["status"] == "sent"


async def test_products_failing_is_retried_until_accepted(client, products):
    data = await signup(client)
    sid = data["seller"]["id"]
    products.status = 503
    response = await set_status(client, sid, {"isActive": False})
    assert response.json()["data"]["productsSynced"] is False
    await drain_due(client)
    row = await client.app.state.outbox.rows.find_one({"kind": "seller_status"})
    assert row["status"] == "pending" and row["attempts"] == 2 and row["nextAttemptAt"] > row["updatedAt"]
    products.status = 200
    await drain_due(client)
    row = await client.app.state.outbox.rows.find_one({"kind": "seller_status"})
    assert row["status"] == "sent"
    assert products.bodies(SELLER_STATUS) == [{"sellerId": sid, "isActive": False, "tokenVersion": 1}] * 3
    headers = {k.lower(): v for k, v in products.requests[-1][2].items()}
    assert headers["idempotency-key"] == f"seller_status:{sid}"


async def test_status_verify_and_bad_bodies(client, products):
    data = await signup(client)
    sid = data["seller"]["id"]
    response = await set_status(client, sid, {"isVerified": True})
    assert response.status_code == 200
    assert response.json()["data"]["isVerified"] is True and "productsSynced" not in response.json()["data"]
    assert products.requests == []
    profile = (await client.get(f"{API}/profile", headers=bearer(data["token"]))).json()["data"]
    assert profile["business"]["verificationStatus"] == "verified" and profile["business"]["verifiedAt"]
    assert profile["seller"]["isVerified"] is True
    unverify = await set_status(client, sid, {"isVerified": "false"})
    assert unverify.json()["data"]["isVerified"] is False
    profile = (await client.get(f"{API}/profile", headers=bearer(data["token"]))).json()["data"]
    assert profile["business"]["verificationStatus"] == "pending" and profile["business"]["verifiedAt"] is None
    empty = await set_status(client, sid, {})
    assert empty.status_code == 400 and empty.json()["message"] == "isActive or isVerified is required"
    no = await set_status(client, sid, {"isActive": "no"})
    assert no.status_code == 400 and no.json()["errors"][0]["message"] == "isActive must be a boolean"
    missing = await client.patch(f"{API}/admin/{sid}/status", json={"isVerified": True})
    assert missing.status_code == 401 and missing.json()["message"] == "Service key required"
    wrong = await set_status(client, sid, {"isVerified": True}, headers={"X-Service-Key": "nope"})
    assert wrong.status_code == 403 and wrong.json()["message"] == "Invalid service key"
    unknown = await set_status(client, "0" * 24, {"isActive": False})
    assert unknown.status_code == 404 and unknown.json()["message"] == "Seller not found"
    assert await client.app.state.outbox.rows.count({"kind": "seller_status"}) == 0
    assert (await set_status(client, "123", {"isActive": False})).status_code == 400


async def test_status_of_seller_without_business(client, products):
    created = await client.post(f"{API}/create", json={**ACCOUNT, "email": "nob@example.com"}, headers=HEADERS_KEY)
    sid = created.json()["data"]["id"]
    response = await set_status(client, sid, {"isActive": False, "isVerified": True})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["isActive"] is False and response.json()["data"]["isVerified"] is True
    assert products.bodies(SELLER_STATUS) == [{"sellerId": sid, "isActive": False, "tokenVersion": 1}]


async def test_concurrent_status_changes_end_consistent(client, products):
    data = await signup(client)
    sid = data["seller"]["id"]
    await asyncio.gather(*[set_status(client, sid, {"isActive": i % 2 == 0}) for i in range(6)])
    await drain_due(client)
    details = (await client.get(f"{API}/admin/{sid}", headers=HEADERS_KEY)).json()["data"]
    assert details["business"]["isActive"] == details["seller"]["isActive"]
    assert products.bodies(SELLER_STATUS)[-1]["isActive"] == details["seller"]["isActive"]


async def test_service_verify(client):
    a = await signup(client, 1)
    b = await signup(client, 2)
    await set_status(client, b["seller"]["id"], {"isActive": False})
    url = f"{API}/service/verify"
    active = (await client.post(url, json={"sellerId": a["seller"]["id"]}, headers=HEADERS_KEY)).json()
    assert active["message"] == "Seller verified"
    assert active["data"]["isValid"] is True and active["data"]["isActive"] is True
    assert active["data"]["businessName"] == "John's Electronics 1" and active["data"]["timestamp"]
    inactive = (await client.post(url, json={"sellerId": b["seller"]["id"]}, headers=HEADERS_KEY)).json()
    assert inactive["data"]["isValid"] is False and inactive["data"]["isActive"] is False
    unknown = await client.post(url, json={"sellerId": "c" * 24}, headers=HEADERS_KEY)
    assert unknown.status_code == 200
    assert unknown.json()["data"] == {
        "sellerId": "c" * 24,
        "isValid": False,
        "isActive": False,
        "isVerified": False,
        "businessName": None,
        "timestamp": unknown.json()["data"]["timestamp"],
    }
    missing = await client.post(url, json={}, headers=HEADERS_KEY)
    assert missing.status_code == 400 and missing.json()["message"] == "sellerId is required"
    bad = await client.post(url, json={"sellerId": "x"}, headers=HEADERS_KEY)
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid ID format"
    assert (await client.post(url, json={"sellerId": "c" * 24})).status_code == 401


async def test_service_bulk(client):
    a = await signup(client, 1)
    b = await signup(client, 2)
    await set_status(client, b["seller"]["id"], {"isActive": False})
    aid = a["seller"]["id"]
    response = await client.post(
        f"{API}/service/bulk", json={"sellerIds": [aid, b["seller"]["id"], "d" * 24, aid]}, headers=HEADERS_KEY
    )
    assert response.status_code == 200 and response.json()["message"] == "Sellers retrieved successfully"
    items = response.json()["data"]
    assert [i["id"] for i in items] == [aid]
    item = items[0]
    assert item["_id"] == aid and item["fullName"] == "John Doe" and item["businessName"] == "John's Electronics 1"
    assert item["logo"] is None and item["business"]["address"]["city"] == "New York"
    assert item["business"]["businessType"] == "individual" and item["isVerified"] is False
    bad = await client.post(f"{API}/service/bulk", json={"sellerIds": aid}, headers=HEADERS_KEY)
    assert bad.status_code == 400 and bad.json()["message"] == "sellerIds array is required"
    malformed = await client.post(f"{API}/service/bulk", json={"sellerIds": [aid, "nope"]}, headers=HEADERS_KEY)
    assert malformed.status_code == 400 and malformed.json()["message"] == "Invalid ID format"
    too_many = await client.post(f"{API}/service/bulk", json={"sellerIds": [aid] * 101}, headers=HEADERS_KEY)
    assert too_many.status_code == 400
    empty = await client.post(f"{API}/service/bulk", json={"sellerIds": []}, headers=HEADERS_KEY)
    assert empty.json()["data"] == []


async def test_service_stats(client):
    await signup(client, 1)
    b = await signup(client, 2)
    c = await signup(client, 3)
    await set_status(client, b["seller"]["id"], {"isActive": False})
    await set_status(client, c["seller"]["id"], {"isVerified": True})
    response = await client.get(f"{API}/service/stats", headers=HEADERS_KEY)
    assert response.json()["message"] == "Seller statistics retrieved successfully"
    sellers = client.app.state.store.collection("sellers")
    expected = {
        "total": await sellers.count({}),
        "active": await sellers.count({"isActive": True}),
        "verified": await sellers.count({"isVerified": True}),
    }
    assert response.json()["data"] == expected == {"total": 3, "active": 2, "verified": 1}
    assert (await client.get(f"{API}/service/stats")).status_code == 401


async def test_slow_products_inline_attempt_times_out_then_drains(app_factory, products):
    async with app_factory(PRODUCTS_SYNC_TIMEOUT_SECONDS=0.2) as client:
        data = await signup(client)
        sid = data["seller"]["id"]
        products.delay = 1.0
        response = await set_status(client, sid, {"isActive": False})
        assert response.status_code == 200 and response.json()["data"]["productsSynced"] is False
        row = await client.app.state.outbox.rows.find_one({"kind": "seller_status"})
        assert row["status"] == "pending" and "timed out" in row["lastError"]
        products.delay = 0
        await drain_due(client)
        assert (await client.app.state.outbox.rows.find_one({"kind": "seller_status"}))["status"] == "sent"
        assert products.bodies(SELLER_STATUS)[-1] == {"sellerId": sid, "isActive": False, "tokenVersion": 1}
