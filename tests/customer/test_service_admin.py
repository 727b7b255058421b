"""Service and admin endpoints (checklist 32–36)."""

from __future__ import annotations

import asyncio

from tests.customer.conftest import HEADERS_KEY, register

API = "/api/v1/customers"


async def test_service_verify(client):
    a = await register(client, 1)
    c = await register(client, 2)
    await client.patch(f"{API}/admin/{c['customer']['id']}/status", json={"isActive": False}, headers=HEADERS_KEY)
    url = f"{API}/service/verify"
    active = (await client.post(url, json={"customerId": a["customer"]["id"]}, headers=HEADERS_KEY)).json()
    assert active["message"] == "Customer verified" and active["data"]["isValid"] is True
    assert active["data"]["email"] == "jane1@example.com"
    inactive = (await client.post(url, json={"customerId": c["customer"]["id"]}, headers=HEADERS_KEY)).json()
    assert inactive["data"]["isValid"] is False
    unknown = await client.post(url, json={"customerId": "c" * 24}, headers=HEADERS_KEY)
    assert unknown.status_code == 200 and unknown.json()["data"]["isValid"] is False
    assert unknown.json()["data"]["email"] is None
    missing = await client.post(url, json={}, headers=HEADERS_KEY)
    assert missing.status_code == 400 and missing.json()["message"] == "customerId is required"
    bad = await client.post(url, json={"customerId": "x"}, headers=HEADERS_KEY)
    assert bad.json()["message"] == "Invalid ID format"


async def test_service_bulk(client):
    a = await register(client, 1)
    c = await register(client, 2)
    await client.patch(f"{API}/admin/{c['customer']['id']}/status", json={"isActive": False}, headers=HEADERS_KEY)
    aid = a["customer"]["id"]
    response = await client.post(
        f"{API}/service/bulk", json={"customerIds": [aid, c["customer"]["id"], "d" * 24, aid]}, headers=HEADERS_KEY
    )
    items = response.json()["data"]
    assert [i["id"] for i in items] == [aid]
    assert items[0]["_id"] == aid and items[0]["fullName"] == "Jane Smith" and "avatar" in items[0]
    bad = await client.post(f"{API}/service/bulk", json={"customerIds": aid}, headers=HEADERS_KEY)
    assert bad.status_code == 400 and bad.json()["message"] == "customerIds array is required"


async def test_service_stats(client):
    await register(client, 1)
    c = await register(client, 2)
    await client.patch(f"{API}/admin/{c['customer']['id']}/status", json={"isActive": False}, headers=HEADERS_KEY)
    customers = client.app.state.store.collection("customers")
    await customers.update_one({"_id": c["customer"]["id"]}, {"$set": {"isVerified": True}})
    stats = (await client.get(f"{API}/service/stats", headers=HEADERS_KEY)).json()["data"]
    assert stats == {"total": 2, "active": 1, "verified": 1}


async def test_order_stats_atomic_and_idempotent(client):
    a = await register(client, 1)
    url = f"{API}/service/{a['customer']['id']}/order-stats"
    first = (await client.post(url, json={"orderTotal": 99.99}, headers=HEADERS_KEY)).json()["data"]
    assert first == {
        "customerId": a["customer"]["id"],
        "totalOrders": 1,
        "totalSpent": 99.99,
        "loyaltyPoints": 99,
        "applied": True,
    }
    await asyncio.gather(*[client.post(url, json={"totalAmount": "10.00"}, headers=HEADERS_KEY) for _ in range(50)])
    after = (await client.post(url, json={"orderTotal": 0, "orderId": "ORD-1"}, headers=HEADERS_KEY)).json()["data"]
    assert after["totalOrders"] == 52 and after["totalSpent"] == 599.99 and after["loyaltyPoints"] == 599
    replay = await asyncio.gather(
        *[client.post(url, json={"orderTotal": 5, "orderId": "ORD-1"}, headers=HEADERS_KEY) for _ in range(5)]
    )
    assert all(r.json()["data"]["applied"] is False for r in replay)
    assert replay[0].json()["data"]["totalOrders"] == 52
    unknown = await client.post(f"{API}/service/{'e' * 24}/order-stats", json={"orderTotal": 1}, headers=HEADERS_KEY)
    assert unknown.status_code == 404
    assert (await client.post(url, json={"orderTotal": -1}, headers=HEADERS_KEY)).status_code == 400
    assert (await client.post(url, json={}, headers=HEADERS_KEY)).status_code == 400


async def test_admin_list_search_and_aliases(client):
    await register(client, 1, lastName="Smithers")
    await register(client, 2, lastName="Jones")
    await register(client, 3, firstName="Bob", lastName="Brown")
    params = {"search": "SMITH", "status": "active", "limit": "5"}
    a = await client.get(f"{API}/admin", params=params, headers=HEADERS_KEY)
    b = await client.get(API, params=params, headers=HEADERS_KEY)
    assert a.status_code == 200 and a.json()["message"] == "Customers retrieved successfully"
    # Jane Smith[ers] (n=1) and "jane2/jane3" emails do not contain smith; lastName Smithers does
    names = sorted(c["lastName"] for c in a.json()["data"]["customers"])
    assert names == ["Smithers"]
    assert a.json()["data"]["customers"] == b.json()["data"]["customers"]
    pagination = a.json()["data"]["pagination"]
    assert pagination == {"page": 1, "limit": 5, "total": 1, "pages": 1, "totalPages": 1}
    assert (await client.get(f"{API}/admin", params={"limit": 500}, headers=HEADERS_KEY)).status_code == 400
    literal = await client.get(f"{API}/admin", params={"search": ".*"}, headers=HEADERS_KEY)
    assert literal.json()["data"]["pagination"]["total"] == 0
    everyone = await client.get(f"{API}/admin", params={"search": "", "sort": "firstName"}, headers=HEADERS_KEY)
    assert [c["firstName"] for c in everyone.json()["data"]["customers"]] == ["Bob", "Jane", "Jane"]
    assert (await client.get(f"{API}/admin", params={"sort": "password"}, headers=HEADERS_KEY)).status_code == 400
    assert (await client.get(f"{API}/admin")).status_code == 401


async def test_admin_details(client):
    a = await register(client, 1)
    response = await client.get(f"{API}/admin/{a['customer']['id']}", headers=HEADERS_KEY)
    data = response.json()["data"]
    assert data["addresses"] == [] and "deactivatedAt" in data and "passwordHash" not in response.text
    assert (await client.get(f"{API}/admin/{'f' * 24}", headers=HEADERS_KEY)).status_code == 404
