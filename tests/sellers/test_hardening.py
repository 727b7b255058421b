"""Hostile input and failure cases of the sellers service (issues 10, 11 and 16): lone
surrogates and a 400-digit employee count refused with nothing stored, signup atomic with
its welcome email, the token version carried to products on every bump, old bcrypt
hashes upgraded on login."""

from __future__ import annotations

import pytest

from sellers.schemas import SignupIn
from shared.passwords import hash_password
from tests.sellers.conftest import API, HEADERS_KEY, bearer, login, seller_body, settle, signup

JSON = {"Content-Type": "application/json"}
SELLER_STATUS = "/api/v1/service/products/seller-status"


async def counts(client) -> tuple[int, int]:
    store = client.app.state.store
    return await store.collection("sellers").count({}), await store.collection("outbox").count({})


@pytest.mark.parametrize(
    ("path", "replace"),
    [("/signup", "firstName"), ("/register", "email"), ("/signup", "businessName"), ("/signup", "password")],
)
async def test_lone_surrogate_in_signup_answers_400_and_stores_nothing(client, path, replace):
    body = seller_body(1)
    body[replace] = "PLACEHOLDER"
    raw = __import__("json").dumps(body).replace("PLACEHOLDER", "ab\\ud800cdefg")
    response = await client.post(f"{API}{path}", content=raw.encode(), headers=JSON)
    assert response.status_code == 400, response.text
    assert await counts(client) == (0, 0)


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/signin", '{"email": "john0@example.com", "password": "secret\\ud83d"}'),
        ("/login", '{"email": "\\udfffjohn0@example.com", "password": "secret123"}'),
        ("/forgot-password", '{"email": "john0\\ud800@example.com"}'),
    ],
)
async def test_lone_surrogate_in_signin_and_forgot_answers_400_and_changes_nothing(client, path, raw):
    await signup(client)
    before = await client.app.state.store.collection("sellers").find_one({})
    response = await client.post(f"{API}{path}", content=raw.encode(), headers=JSON)
    assert response.status_code == 400, response.text
    after = await client.app.state.store.collection("sellers").find_one({})
    assert after == before
    assert (
        await client.app.state.store.collection("outbox").count({"kind": "email", "payload.template": "password_reset"})
        == 0
    )


@pytest.mark.parametrize("count", [int("9" * 400), "9" * 400, "1e400", 1e300, -(10**30)])
async def test_huge_employee_count_is_a_400_not_a_500(client, count):
    data = await signup(client)
    before = await client.app.state.store.collection("sellers").find_one({})
    raw = '{"employeeCount": %s}' % (f'"{count}"' if isinstance(count, str) else repr(count))
    response = await client.put(f"{API}/profile", content=raw.encode(), headers={**JSON, **bearer(data["token"])})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "employeeCount"
    assert await client.app.state.store.collection("sellers").find_one({}) == before


async def test_employee_count_in_range_still_accepted(client):
    data = await signup(client)
    response = await client.put(f"{API}/profile", json={"employeeCount": "5"}, headers=bearer(data["token"]))
    assert response.status_code == 200 and response.json()["data"]["business"]["employeeCount"] == 5


async def test_a_fault_between_the_two_writes_leaves_no_seller_and_a_retry_works(client, monkeypatch):
    sellers = client.app.state.sellers
    real_insert = sellers.repo.insert_account

    async def crash(doc):
        raise RuntimeError("store went away after the outbox write")

    monkeypatch.setattr(sellers.repo, "insert_account", crash)
    with pytest.raises(RuntimeError):
        await sellers.signup(data=SignupIn.model_validate(seller_body(2)))
    assert await counts(client) == (0, 0)

    monkeypatch.setattr(sellers.repo, "insert_account", real_insert)
    data = await signup(client, 2)
    await settle(client)
    rows = [row["dedupeKey"] for row in await client.app.state.store.collection("outbox").find({})]
    assert rows == [f"welcome_seller:{data['seller']['id']}"]


async def test_password_change_tells_products_the_new_token_version(client, products):
    data = await signup(client)
    sid = data["seller"]["id"]
    body = {"currentPassword": "secret123", "newPassword": "newpass123", "confirmPassword": "newpass123"}
    changed = await client.put(f"{API}/change-password", json=body, headers=bearer(data["token"]))
    assert changed.status_code == 200, changed.text
    await settle(client)
    assert products.bodies(SELLER_STATUS) == [{"sellerId": sid, "isActive": True, "tokenVersion": 1}]


async def test_password_reset_tells_products_the_new_token_version(client, notify, products):
    data = await signup(client)
    await client.post(f"{API}/forgot-password", json={"email": "john0@example.com"})
    await settle(client)
    link = [b for b in notify.bodies("/api/v1/send") if b["template"] == "password_reset"][-1]["data"]["reset_link"]
    reset = await client.post(
        f"{API}/reset-password", json={"token": link.split("token=", 1)[1], "password": "brandnew1"}
    )
    assert reset.status_code == 200, reset.text
    await settle(client)
    assert products.bodies(SELLER_STATUS)[-1] == {"sellerId": data["seller"]["id"], "isActive": True, "tokenVersion": 1}


async def test_bcrypt_hash_logs_in_and_is_upgraded(client):
    await signup(client)
    sellers = client.app.state.store.collection("sellers")
    await sellers.update_one({}, {"$set": {"passwordHash": await hash_password("secret123", rounds=4)}})
    assert (await login(client, "john0@example.com")).status_code == 200
    assert (await sellers.find_one({}))["passwordHash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await login(client, "john0@example.com")).status_code == 200


async def test_document_has_service_bodies(client):
    document = (await client.get("/openapi.json")).json()
    for path in ("/api/v1/sellers/service/bulk", "/api/v1/sellers/service/verify"):
        assert document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    bad = await client.post(f"{API}/service/bulk", json={"sellerIds": [[None]]}, headers=HEADERS_KEY)
    assert bad.status_code == 400 and bad.json()["message"] == "Invalid ID format"
