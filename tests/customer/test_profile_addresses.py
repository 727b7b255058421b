"""Profile and address book (checklist 12–14, 24–31)."""

from __future__ import annotations

import asyncio

from tests.customer.conftest import HEADERS_KEY, bearer, register

API = "/api/v1"

HOME = {
    "addressLine1": "123 Main Street",
    "addressLine2": "Apt 4B",
    "city": "New York",
    "state": "NY",
    "country": "USA",
    "postalCode": "10001",
    "contactName": "Jane Smith",
    "contactPhone": "1234567890",
}


async def test_profile_update_ignores_protected_fields(client):
    data = await register(client)
    auth = bearer(data["token"])
    response = await client.put(
        f"{API}/customers/profile",
        json={"email": "x@y.com", "firstName": "Janet", "totalOrders": 99, "preferences": {"currency": "eur"}},
        headers=auth,
    )
    assert response.status_code == 200 and response.json()["message"] == "Profile updated successfully"
    view = response.json()["data"]
    assert view["firstName"] == "Janet" and view["email"] == "jane0@example.com" and view["totalOrders"] == 0
    assert view["preferences"] == {"newsletter": False, "smsNotifications": False, "language": "en", "currency": "EUR"}
    assert (await client.put(f"{API}/customers/profile", json={}, headers=auth)).status_code == 200


async def test_profile_clear_and_invalid(client):
    data = await register(client, dateOfBirth="1992-05-15", phone="1234567890")
    auth = bearer(data["token"])
    response = await client.put(f"{API}/customers/profile", json={"dateOfBirth": ""}, headers=auth)
    assert response.status_code == 200 and response.json()["data"]["dateOfBirth"] is None
    bad = await client.put(f"{API}/customers/profile", json={"phone": "12ab"}, headers=auth)
    assert bad.status_code == 400
    assert (await client.put(f"{API}/customers/profile", json={"firstName": ""}, headers=auth)).status_code == 400
    profile = (await client.get(f"{API}/customers/profile", headers=auth)).json()["data"]
    assert profile["phone"] == "1234567890" and profile["firstName"] == "Jane"


async def test_profile_image_uuid_queues_media_mark_used(client, notify):
    data = await register(client)
    image = "3f1c8a5e-2b7d-4c1e-9a0b-5d6e7f8a9b0c"
    response = await client.put(f"{API}/customers/profile", json={"profileImage": image}, headers=bearer(data["token"]))
    assert response.json()["data"]["profileImage"] == image
    await asyncio.sleep(0.05)
    await client.app.state.outbox.drain_once()
    # The immediate attempt may still be sending (its row claimed, so drain_once skips it).
    for _ in range(250):
        if any(path == f"/api/v1/media/mark-used/{image}" for _, path, _, _ in notify.requests):
            break
        await asyncio.sleep(0.02)
    assert any(path == f"/api/v1/media/mark-used/{image}" for _, path, _, _ in notify.requests)


async def test_profile_by_id_rules(client):
    a = await register(client, 1)
    b = await register(client, 2)
    url = f"{API}/customers/profile/{b['customer']['id']}"
    response = await client.get(url, headers=bearer(a["token"]))
    assert response.status_code == 403 and response.json()["message"] == "Access denied"
    assert (await client.get(url, headers=HEADERS_KEY)).status_code == 200
    assert (await client.get(url, headers=bearer(b["token"]))).status_code == 200
    unknown = await client.get(f"{API}/customers/profile/{'a' * 24}", headers=HEADERS_KEY)
    assert unknown.status_code == 404 and unknown.json()["message"] == "Customer not found"
    bad = await client.get(f"{API}/customers/profile/xyz", headers=HEADERS_KEY)
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid ID format"


async def test_admin_bearer_reads_any_profile(client):
    from shared.auth import issue_token

    b = await register(client, 2)
    admin, _ = issue_token(client.app.state.settings, subject="a" * 24, role="admin", email="admin@example.com")
    response = await client.get(f"{API}/customers/profile/{b['customer']['id']}", headers=bearer(admin))
    assert response.status_code == 200


async def test_first_address_is_default_and_aliases(client):
    data = await register(client)
    auth = bearer(data["token"])
    first = await client.post(f"{API}/addresses", json=HOME, headers=auth)
    assert first.status_code == 201 and first.json()["message"] == "Address added successfully"
    view = first.json()["data"]
    assert view["isDefault"] is True and view["fullAddress"] == "123 Main Street, Apt 4B, New York, NY, USA, 10001"
    assert view["street"] == "123 Main Street" and view["phone"] == "1234567890"
    second = await client.post(
        f"{API}/customers/addresses",
        json={
            "street": "9 Side Road",
            "phone": "0987654321",
            "city": "Boston",
            "state": "MA",
            "country": "USA",
            "postalCode": "02101",
            "firstName": "Jo",
            "lastName": "Doe",
        },
        headers=auth,
    )
    assert second.status_code == 201
    view2 = second.json()["data"]
    assert view2["addressLine1"] == "9 Side Road" and view2["contactPhone"] == "0987654321"
    assert view2["isDefault"] is False and view2["contactName"] == "Jo Doe"
    list_a = (await client.get(f"{API}/addresses", headers=auth)).json()["data"]
    list_b = (await client.get(f"{API}/customers/addresses", headers=auth)).json()["data"]
    assert list_a == list_b and list_a[0]["isDefault"] is True and len(list_a) == 2


async def test_make_default_and_parallel_defaults(client):
    data = await register(client)
    auth = bearer(data["token"])
    ids = []
    for i in range(20):
        r = await client.post(f"{API}/addresses", json={**HOME, "addressLine1": f"{i} Main"}, headers=auth)
        ids.append(r.json()["data"]["id"])
    response = await client.put(f"{API}/customers/addresses/{ids[1]}/default", headers=auth)
    assert response.status_code == 200 and response.json()["data"]["isDefault"] is True
    listing = (await client.get(f"{API}/addresses", headers=auth)).json()["data"]
    assert [a["isDefault"] for a in listing].count(True) == 1 and listing[0]["id"] == ids[1]
    await asyncio.gather(*[client.put(f"{API}/addresses/{i}/default", headers=auth) for i in ids])
    listing = (await client.get(f"{API}/addresses", headers=auth)).json()["data"]
    assert [a["isDefault"] for a in listing].count(True) == 1


async def test_concurrent_first_addresses_make_one_default(client):
    data = await register(client)
    auth = bearer(data["token"])
    await asyncio.gather(*[client.post(f"{API}/addresses", json=HOME, headers=auth) for _ in range(10)])
    listing = (await client.get(f"{API}/addresses", headers=auth)).json()["data"]
    assert len(listing) == 10 and [a["isDefault"] for a in listing].count(True) == 1


async def test_delete_default_promotes_most_recently_updated(client):
    data = await register(client)
    auth = bearer(data["token"])
    a = (await client.post(f"{API}/addresses", json={**HOME, "label": "A"}, headers=auth)).json()["data"]["id"]
    b = (await client.post(f"{API}/addresses", json={**HOME, "label": "B"}, headers=auth)).json()["data"]["id"]
    c = (await client.post(f"{API}/addresses", json={**HOME, "label": "C"}, headers=auth)).json()["data"]["id"]
    await asyncio.sleep(0.01)
    await client.put(f"{API}/addresses/{c}", json={"label": "C2"}, headers=auth)
    await asyncio.sleep(0.01)
    updated = await client.put(f"{API}/addresses/{b}", json={"label": "B2"}, headers=auth)
    assert updated.json()["data"]["label"] == "B2" and updated.json()["data"]["city"] == "New York"
    response = await client.delete(f"{API}/addresses/{a}", headers=auth)
    assert response.status_code == 200 and response.json()["data"] == {"message": "Address deleted successfully"}
    listing = (await client.get(f"{API}/addresses", headers=auth)).json()["data"]
    assert listing[0]["id"] == b and listing[0]["isDefault"] is True
    gone = await client.get(f"{API}/addresses/{a}", headers=auth)
    assert gone.status_code == 404 and gone.json()["message"] == "Address not found"


async def test_other_customers_addresses_and_validation(client):
    a = await register(client, 1)
    b = await register(client, 2)
    addr = (await client.post(f"{API}/addresses", json=HOME, headers=bearer(a["token"]))).json()["data"]["id"]
    other = bearer(b["token"])
    assert (await client.get(f"{API}/addresses/{addr}", headers=other)).status_code == 404
    assert (await client.put(f"{API}/addresses/{addr}", json={"city": "X"}, headers=other)).status_code == 404
    assert (await client.delete(f"{API}/addresses/{addr}", headers=other)).status_code == 404
    no_city = {k: v for k, v in HOME.items() if k != "city"}
    response = await client.post(f"{API}/addresses", json=no_city, headers=other)
    assert response.status_code == 400
    assert {"field": "city", "message": "City is required"} in response.json()["errors"]
    response = await client.post(f"{API}/addresses", json={**HOME, "postalCode": "1"}, headers=other)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Please provide a valid postal code"
    # a failed update leaves the old address
    bad = await client.put(f"{API}/addresses/{addr}", json={"city": "", "label": "Z"}, headers=bearer(a["token"]))
    assert bad.status_code == 400
    kept = (await client.get(f"{API}/addresses/{addr}", headers=bearer(a["token"]))).json()["data"]
    assert kept["city"] == "New York" and kept["label"] is None
    assert (await client.get(f"{API}/addresses/nope", headers=other)).status_code == 400


async def test_service_key_address_access(client):
    a = await register(client, 1)
    b = await register(client, 2)
    addr = (await client.post(f"{API}/addresses", json=HOME, headers=bearer(a["token"]))).json()["data"]["id"]
    b_addr = (await client.post(f"{API}/addresses", json=HOME, headers=bearer(b["token"]))).json()["data"]["id"]
    aid = a["customer"]["id"]
    listing = await client.get(f"{API}/addresses", params={"customerId": aid}, headers=HEADERS_KEY)
    assert listing.status_code == 200 and [x["id"] for x in listing.json()["data"]] == [addr]
    missing = await client.get(f"{API}/addresses", headers=HEADERS_KEY)
    assert missing.status_code == 400 and missing.json()["message"] == "customerId is required"
    unknown = await client.get(f"{API}/addresses", params={"customerId": "b" * 24}, headers=HEADERS_KEY)
    assert unknown.status_code == 404
    one = await client.get(f"{API}/customers/service/{aid}/addresses/{addr}", headers=HEADERS_KEY)
    assert one.status_code == 200 and one.json()["data"]["id"] == addr
    foreign = await client.get(f"{API}/customers/service/{aid}/addresses/{b_addr}", headers=HEADERS_KEY)
    assert foreign.status_code == 404
    all_a = await client.get(f"{API}/customers/service/{aid}/addresses", headers=HEADERS_KEY)
    assert [x["id"] for x in all_a.json()["data"]] == [addr]
