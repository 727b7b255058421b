"""Own profile, profile by id, business updates (checklist 16–20)."""

from __future__ import annotations

import jwt

from shared.auth import issue_token
from tests.sellers.conftest import ADDRESS, API, HEADERS_KEY, admin_token, bearer, drain_due, signup

IMAGE = "3f1c8a5e-2b7d-4c1e-9a0b-5d6e7f8a9b0c"
LOGO = "8a7b6c5d-4e3f-4a1b-8c9d-0e1f2a3b4c5d"


async def test_get_profile_and_auth_failures(client):
    data = await signup(client)
    response = await client.get(f"{API}/profile", headers=bearer(data["token"]))
    assert response.status_code == 200 and response.json()["message"] == "Profile retrieved successfully"
    body = response.json()["data"]
    assert body["seller"]["id"] == data["seller"]["id"] and body["business"]["sellerId"] == data["seller"]["id"]
    settings = client.app.state.settings
    customer, _ = issue_token(settings, subject=data["seller"]["id"], role="customer", email="c@example.com")
    denied = await client.get(f"{API}/profile", headers=bearer(customer))
    assert denied.status_code == 403 and denied.json()["message"] == "Access denied"
    missing = await client.get(f"{API}/profile")
    assert missing.status_code == 401 and missing.json()["message"] == "Access token required"
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": 1}, settings.JWT_SECRET, algorithm="HS256")
    assert (await client.get(f"{API}/profile", headers=bearer(expired))).json()["message"] == "Token expired"
    forged = jwt.encode(claims, "another-secret-of-enough-length-123456", algorithm="HS256")
    assert (await client.get(f"{API}/profile", headers=bearer(forged))).json()["message"] == "Invalid token"
    refresh = await client.get(f"{API}/profile", headers=bearer(data["refreshToken"]))
    assert refresh.status_code == 401 and refresh.json()["message"] == "Invalid token"
    ghost, _ = issue_token(settings, subject="f" * 24, role="seller", email="g@example.com")
    assert (await client.get(f"{API}/profile", headers=bearer(ghost))).status_code == 401


async def test_frontend_body_clears_business_fields_and_keeps_email(client):
    data = await signup(client)
    auth = bearer(data["token"])
    first = await client.put(
        f"{API}/profile",
        json={"website": "https://john.example.com", "employeeCount": 3, "establishedDate": "2020-02-01"},
        headers=auth,
    )
    assert first.status_code == 200 and first.json()["data"]["business"]["employeeCount"] == 3
    response = await client.put(
        f"{API}/profile",
        json={
            "email": "changed@example.com",
            "firstName": "Johnny",
            "logoMediaId": None,
            "employeeCount": "",
            "website": "",
            "establishedDate": "",
        },
        headers=auth,
    )
    assert response.status_code == 200 and response.json()["message"] == "Profile updated successfully"
    seller, business = response.json()["data"]["seller"], response.json()["data"]["business"]
    assert seller["email"] == "john0@example.com" and seller["firstName"] == "Johnny"
    assert business["logoMediaId"] is None and business["employeeCount"] is None
    assert business["website"] is None and business["establishedDate"] is None
    assert business["businessName"] == "John's Electronics 0"


async def test_business_name_phone_and_count_update_together(client):
    data = await signup(client)
    response = await client.put(
        f"{API}/profile",
        json={"businessName": "New Name", "employeeCount": "5", "phone": "9876543210"},
        headers=bearer(data["token"]),
    )
    assert response.status_code == 200, response.text
    seller, business = response.json()["data"]["seller"], response.json()["data"]["business"]
    assert seller["businessName"] == business["businessName"] == "New Name"
    assert business["employeeCount"] == 5
    assert seller["phone"] == business["phone"] == "9876543210"
    assert business["updatedAt"] >= business["createdAt"]
    found = await client.get(f"{API}/admin", params={"search": "new name"}, headers=HEADERS_KEY)
    assert [s["id"] for s in found.json()["data"]["sellers"]] == [data["seller"]["id"]]


async def test_nested_update_and_address_replacement(client):
    data = await signup(client)
    auth = bearer(data["token"])
    response = await client.put(
        f"{API}/profile",
        json={
            "business": {
                "businessDescription": "Phones and tablets",
                "categories": [" Phones ", "Tablets"],
                "industry": "Retail",
                "businessType": "corporation",
                "address": {**ADDRESS, "city": "Boston", "postalCode": "02101"},
            }
        },
        headers=auth,
    )
    assert response.status_code == 200, response.text
    business = response.json()["data"]["business"]
    assert business["description"] == "Phones and tablets" and business["categories"] == ["Phones", "Tablets"]
    assert business["industry"] == "Retail" and business["businessType"] == "corporation"
    assert business["address"]["city"] == "Boston" and business["address"]["street2"] is None
    assert response.json()["data"]["seller"]["address"]["city"] == "Boston"
    bad = await client.put(f"{API}/profile", json={"address": {"street": "1 Road"}}, headers=auth)
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} >= {"address.city", "address.postalCode"}
    cleared = await client.put(f"{API}/profile", json={"address": None, "description": ""}, headers=auth)
    assert cleared.json()["data"]["business"]["address"] is None
    assert cleared.json()["data"]["business"]["description"] is None


async def test_invalid_updates_and_ignored_fields(client):
    data = await signup(client)
    auth = bearer(data["token"])
    bad = await client.put(f"{API}/profile", json={"website": "notaurl"}, headers=auth)
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"field": "website", "message": "Please provide a valid website URL"}]
    zero = await client.put(f"{API}/profile", json={"employeeCount": 0}, headers=auth)
    assert zero.json()["errors"][0]["message"] == "Employee count must be at least 1"
    for body, field in (
        ({"businessName": ""}, "businessName"),
        ({"firstName": ""}, "firstName"),
        ({"phone": ""}, "phone"),
        ({"businessType": "ngo"}, "businessType"),
        ({"categories": "phones"}, "categories"),
        ({"gender": "unknown"}, "gender"),
        ({"dateOfBirth": "2999-01-01"}, "dateOfBirth"),
        ({"profileImage": "not an image"}, "profileImage"),
        ({"description": "x" * 1001}, "description"),
    ):
        response = await client.put(f"{API}/profile", json=body, headers=auth)
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["field"] == field
    ignored = await client.put(
        f"{API}/profile",
        json={"isVerified": True, "rating": 5, "role": "admin", "isActive": False, "verificationStatus": "verified"},
        headers=auth,
    )
    assert ignored.status_code == 200
    seller, business = ignored.json()["data"]["seller"], ignored.json()["data"]["business"]
    assert seller["isVerified"] is False and seller["rating"] == 0 and seller["role"] == "seller"
    assert seller["isActive"] is True and business["verificationStatus"] == "pending"
    assert (await client.put(f"{API}/profile", json={}, headers=auth)).status_code == 200


async def test_media_ids_are_marked_used(client, media):
    data = await signup(client)
    response = await client.put(
        f"{API}/profile",
        json={"profileImage": IMAGE, "logoMediaId": LOGO, "website": "http://shop.example.com"},
        headers=bearer(data["token"]),
    )
    assert response.json()["data"]["seller"]["profileImage"] == IMAGE
    assert response.json()["data"]["business"]["logoMediaId"] == LOGO
    await drain_due(client)
    paths = {path for _, path, _, _ in media.requests}
    assert paths == {f"/api/v1/media/mark-used/{IMAGE}", f"/api/v1/media/mark-used/{LOGO}"}
    url = await client.put(
        f"{API}/profile", json={"profileImage": "https://cdn.example.com/a.png"}, headers=bearer(data["token"])
    )
    assert url.status_code == 200
    await drain_due(client)
    assert len(media.requests) == 2


async def test_profile_update_creates_business_for_seller_without_one(client):
    created = await client.post(
        f"{API}/create",
        json={
            "firstName": "Ann",
            "lastName": "Lee",
            "email": "ann@example.com",
            "password": "secret123",
            "phone": "1234567890",
        },
        headers=HEADERS_KEY,
    )
    assert created.status_code == 201 and created.json()["data"]["businessName"] is None
    signin = await client.post(f"{API}/signin", json={"email": "ann@example.com", "password": "secret123"})
    assert signin.json()["data"]["business"] is None
    auth = bearer(signin.json()["data"]["token"])
    nameless = await client.put(f"{API}/profile", json={"industry": "Books"}, headers=auth)
    assert nameless.status_code == 400 and nameless.json()["errors"][0]["field"] == "businessName"
    response = await client.put(
        f"{API}/profile", json={"businessName": "Ann's Books", "industry": "Books"}, headers=auth
    )
    assert response.status_code == 200, response.text
    business = response.json()["data"]["business"]
    assert business["businessName"] == "Ann's Books" and business["industry"] == "Books"
    assert business["email"] == "ann@example.com" and business["businessType"] == "individual"
    assert business["sellerId"] == created.json()["data"]["id"] and business["id"]


async def test_profile_by_id_rules(client):
    a = await signup(client, 1)
    b = await signup(client, 2)
    url = f"{API}/profile/{b['seller']['id']}"
    other = await client.get(url, headers=bearer(a["token"]))
    assert other.status_code == 403 and other.json()["message"] == "Access denied"
    by_key = await client.get(url, headers=HEADERS_KEY)
    assert by_key.status_code == 200 and by_key.json()["data"]["seller"]["id"] == b["seller"]["id"]
    assert by_key.json()["data"]["business"]["sellerId"] == b["seller"]["id"]
    assert (await client.get(url, headers=bearer(b["token"]))).status_code == 200
    assert (await client.get(url, headers=bearer(admin_token(client)))).status_code == 200
    # a present service key wins over the bearer token
    wrong_key = await client.get(url, headers={**bearer(b["token"]), "X-Service-Key": "nope"})
    assert wrong_key.status_code == 403 and wrong_key.json()["message"] == "Invalid service key"
    unknown = await client.get(f"{API}/profile/{'a' * 24}", headers=HEADERS_KEY)
    assert unknown.status_code == 404 and unknown.json()["message"] == "Seller not found"
    bad = await client.get(f"{API}/profile/123", headers=HEADERS_KEY)
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid ID format"
    assert (await client.get(url)).status_code == 401
