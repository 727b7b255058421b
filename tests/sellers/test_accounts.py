"""Signup, sign-in and lockout, tokens, passwords, rate limit (checklist 1–15, 21, 32–35)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import jwt

from shared.testing import free_port
from shared.timeutil import parse_iso, utcnow
from tests.sellers.conftest import (
    ADDRESS,
    API,
    HEADERS_KEY,
    bearer,
    drain_due,
    login,
    repoint,
    seller_body,
    settle,
    signup,
)

SECRETS = ("passwordHash", '"password"', "passwordResetTokenHash")


async def test_signup_flat_answers_seller_business_and_tokens(client):
    response = await client.post(f"{API}/signup", json=seller_body(email="  John.Doe@Example.COM "))
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["message"] == "Seller registered successfully"
    data = body["data"]
    seller, business = data["seller"], data["business"]
    assert seller["id"] == business["sellerId"]
    assert seller["email"] == "john.doe@example.com" and seller["fullName"] == "John Doe"
    assert seller["role"] == "seller" and seller["isActive"] is True and seller["isVerified"] is False
    assert business["description"] == "Mobile devices" == seller["businessDescription"]
    assert business["businessName"] == seller["businessName"] == "John's Electronics 0"
    assert business["email"] == "john.doe@example.com" and business["phone"] == "1234567890"
    assert business["address"] == {**ADDRESS, "street2": None} == seller["address"]
    assert business["verificationStatus"] == "pending" and business["categories"] == []
    assert data["token"] and data["accessToken"] == data["token"] and data["refreshToken"]
    assert not any(secret in response.text for secret in SECRETS)


async def test_register_nested_business_same_shape_and_nested_wins(client):
    body = seller_body(1)
    flat_address = body.pop("address")
    for key in ("businessName", "businessType", "businessDescription"):
        body.pop(key)
    body["businessName"] = "Flat name loses"
    body["business"] = {
        "businessName": "Nested Co",
        "businessType": "llc",
        "description": "Nested description",
        "address": {**flat_address, "street2": "Suite 5"},
    }
    response = await client.post(f"{API}/register", json=body)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert set(data) == {"seller", "business", "token", "accessToken", "refreshToken"}
    assert data["business"]["businessName"] == "Nested Co" == data["seller"]["businessName"]
    assert data["business"]["businessType"] == "llc" and data["business"]["description"] == "Nested description"
    assert data["business"]["address"]["street2"] == "Suite 5"
    assert data["seller"]["id"] == data["business"]["sellerId"]


async def test_signup_validation_errors(client):
    def fields(response) -> dict[str, str]:
        assert response.status_code == 400, response.text
        return {e["field"]: e["message"] for e in response.json()["errors"]}

    body = seller_body()
    del body["address"]
    assert fields(await client.post(f"{API}/signup", json=body))["address"] == "Address is required"
    bad_postal = await client.post(f"{API}/signup", json=seller_body(address={**ADDRESS, "postalCode": "1"}))
    assert fields(bad_postal)["address.postalCode"] == "Please provide a valid postal code"
    assert fields(await client.post(f"{API}/signup", json=seller_body(businessType="ngo")))["businessType"] == (
        "Business type must be one of individual, partnership, llc, corporation, other"
    )
    body = seller_body()
    del body["phone"]
    assert fields(await client.post(f"{API}/signup", json=body))["phone"] == "Phone is required"
    nested = seller_body(business={"businessName": "X", "address": {"street": "1 Road"}})
    errors = fields(await client.post(f"{API}/signup", json=nested))
    assert errors["address.city"] == "City is required" and errors["address.postalCode"] == "Postal code is required"
    everything = fields(await client.post(f"{API}/signup", json={}))
    assert everything["firstName"] == "First name is required"
    assert everything["businessName"] == "Business name is required"
    assert everything["email"] == "Email is required" and everything["password"] == "Password is required"
    odd = fields(
        await client.post(
            f"{API}/signup",
            json=seller_body(firstName="J", phone="12ab", businessDescription="x" * 501, password="😀" * 40),
        )
    )
    assert odd["firstName"] == "First name must be at least 2 characters"
    assert odd["phone"] == "Please provide a valid phone number"
    assert odd["businessDescription"] == "Business description cannot exceed 500 characters"
    assert odd["password"] == "Password cannot exceed 72 bytes"
    assert await client.app.state.store.collection("sellers").count({}) == 0


async def test_confirm_password_mismatch(client):
    response = await client.post(f"{API}/signup", json=seller_body(confirmPassword="other123"))
    assert response.status_code == 400 and response.json()["message"] == "Passwords do not match"
    assert await client.app.state.store.collection("sellers").count({}) == 0


async def test_duplicate_email_and_parallel_signups(client):
    await signup(client, email="john.doe@example.com")
    response = await client.post(f"{API}/signup", json=seller_body(email="JOHN.DOE@example.com "))
    assert response.status_code == 409
    assert response.json()["message"] == "Seller with this email already exists"
    assert response.json()["errors"] == [{"field": "email", "message": "Email already exists"}]
    responses = await asyncio.gather(
        *[client.post(f"{API}/signup", json=seller_body(email="race@example.com")) for _ in range(10)]
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    sellers = client.app.state.store.collection("sellers")
    # never a seller without its business: the one that won carries it
    stored = await sellers.find({"email": "race@example.com"})
    assert len(stored) == 1 and stored[0]["business"]["businessName"]


async def test_signin_answers_tokens_with_seller_claims(client):
    created = await signup(client)
    response = await login(client, "JOHN0@example.com")
    assert response.status_code == 200 and response.json()["message"] == "Login successful"
    data = response.json()["data"]
    assert data["role"] == "seller" and data["token"] == data["accessToken"] and data["refreshToken"]
    assert data["seller"]["id"] == created["seller"]["id"] and data["seller"]["lastLogin"]
    assert data["business"]["sellerId"] == created["seller"]["id"]
    claims = jwt.decode(data["accessToken"], options={"verify_signature": False})
    assert claims["id"] == claims["sub"] == created["seller"]["id"]
    assert claims["role"] == "seller" and claims["type"] == "access" and claims["ver"] == 0
    assert claims["firstName"] == "John" and claims["lastName"] == "Doe"
    refresh = jwt.decode(data["refreshToken"], options={"verify_signature": False})
    assert refresh["type"] == "refresh" and refresh["id"] == refresh["sub"] and refresh["jti"]


async def test_login_alias_and_identical_failures(client):
    await signup(client)
    assert (
        await client.post(f"{API}/login", json={"email": "john0@example.com", "password": "secret123"})
    ).status_code == 200
    unknown = await client.post(f"{API}/login", json={"email": "nobody@example.com", "password": "secret123"})
    wrong = await client.post(f"{API}/login", json={"email": "john0@example.com", "password": "wrong-pass"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content and unknown.json()["message"] == "Invalid credentials"
    invalid = await client.post(f"{API}/login", json={"email": "x"})
    assert invalid.status_code == 400
    assert {e["field"] for e in invalid.json()["errors"]} == {"email", "password"}


async def test_five_failures_lock_even_the_right_password(client):
    await signup(client)
    codes = [(await login(client, "john0@example.com", "wrong-pass")).status_code for _ in range(5)]
    assert codes == [401] * 5
    locked = await login(client, "john0@example.com")
    assert locked.status_code == 423
    body = locked.json()
    assert body["success"] is False
    assert body["message"] == (
        "Account temporarily locked due to multiple failed login attempts. Please try again later."
    )
    delta = parse_iso(body["lockUntil"]) - utcnow()
    assert timedelta(minutes=29) < delta <= timedelta(minutes=30)


async def test_lock_expires_and_success_resets_the_counter(client):
    created = await signup(client)
    for _ in range(5):
        await login(client, "john0@example.com", "wrong-pass")
    assert (await login(client, "john0@example.com")).status_code == 423
    client.app.state.sellers.clock = lambda: utcnow() + timedelta(minutes=31)
    assert (await login(client, "john0@example.com")).status_code == 200
    details = await client.get(f"{API}/admin/{created['seller']['id']}", headers=HEADERS_KEY)
    seller = details.json()["data"]["seller"]
    assert seller["loginAttempts"] == 0 and seller["lockUntil"] is None


async def test_four_failures_then_success_resets(client):
    await signup(client)
    for _ in range(4):
        assert (await login(client, "john0@example.com", "wrong-pass")).status_code == 401
    assert (await login(client, "john0@example.com")).status_code == 200
    for _ in range(4):
        assert (await login(client, "john0@example.com", "wrong-pass")).status_code == 401
    assert (await login(client, "john0@example.com")).status_code == 200


async def test_parallel_wrong_passwords_never_pass_the_rule(client):
    created = await signup(client)
    responses = await asyncio.gather(*[login(client, "john0@example.com", "wrong-pass") for _ in range(20)])
    codes = [r.status_code for r in responses]
    assert set(codes) <= {401, 423}
    assert 1 <= codes.count(401) <= 5 and codes.count(423) == 20 - codes.count(401)
    assert all(r.json()["lockUntil"] for r in responses if r.status_code == 423)
    stored = await client.app.state.store.collection("sellers").find_one({"_id": created["seller"]["id"]})
    assert stored["loginAttempts"] == 5 and stored["lockUntil"]
    assert (await login(client, "john0@example.com")).status_code == 423


async def test_refresh_rotates_and_refuses_reuse_and_access_tokens(client):
    data = await signup(client)
    response = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert response.status_code == 200 and response.json()["message"] == "Token refreshed successfully"
    fresh = response.json()["data"]
    assert fresh["token"] == fresh["accessToken"] and fresh["refreshToken"] != data["refreshToken"]
    again = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert again.status_code == 401 and again.json()["message"] == "Invalid refresh token"
    access = await client.post(f"{API}/refresh-token", json={"refreshToken": data["token"]})
    assert access.status_code == 401 and access.json()["message"] == "Invalid refresh token"
    assert (await client.post(f"{API}/refresh-token", json={})).status_code == 400
    races = await asyncio.gather(
        *[client.post(f"{API}/refresh-token", json={"refreshToken": fresh["refreshToken"]}) for _ in range(5)]
    )
    assert sorted(r.status_code for r in races) == [200, 401, 401, 401, 401]


async def test_forgot_password_identical_for_known_and_unknown(client, notify):
    await signup(client)
    known = await client.post(f"{API}/forgot-password", json={"email": "john0@example.com"})
    unknown = await client.post(f"{API}/forgot-password", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert known.json()["message"] == "Password reset email sent" and known.json()["data"] is None
    assert (await client.post(f"{API}/forgot-password", json={"email": "bad"})).status_code == 400
    await settle(client)
    resets = [b for b in notify.bodies("/api/v1/send") if b["template"] == "password_reset"]
    assert len(resets) == 1
    assert resets[0]["recipient_email"] == "john0@example.com" and resets[0]["recipient_name"] == "John Doe"
    data = resets[0]["data"]
    assert data["seller_name"] == data["customer_name"] == "John Doe" and data["expiry_time"] == "1 hour"
    assert data["reset_link"].startswith("http://localhost:3000/seller/reset-password?token=")


def _reset_token(notify) -> str:
    bodies = [b for b in notify.bodies("/api/v1/send") if b["template"] == "password_reset"]
    return bodies[-1]["data"]["reset_link"].split("token=", 1)[1]


async def test_reset_password_unlocks_and_revokes(client, notify):
    data = await signup(client)
    for _ in range(5):
        await login(client, "john0@example.com", "wrong-pass")
    assert (await login(client, "john0@example.com")).status_code == 423
    await client.post(f"{API}/forgot-password", json={"email": "john0@example.com"})
    await settle(client)
    token = _reset_token(notify)
    stored = await client.app.state.store.collection("sellers").find_one({})
    assert token not in json.dumps(stored)
    body = {"token": token, "newPassword": "brandnew1", "confirmPassword": "brandnew1"}
    reset = await client.post(f"{API}/reset-password", json=body)
    assert reset.status_code == 200 and reset.json() == {
        "success": True,
        "message": "Password reset successfully",
        "data": None,
    }
    again = await client.post(f"{API}/reset-password", json=body)
    assert again.status_code == 400 and again.json()["message"] == "Invalid or expired reset token"
    assert (await login(client, "john0@example.com", "brandnew1")).status_code == 200
    refresh = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert refresh.status_code == 401
    assert (await client.get(f"{API}/profile", headers=bearer(data["token"]))).status_code == 401
    mismatch = await client.post(f"{API}/reset-password", json={**body, "confirmPassword": "different1"})
    assert mismatch.status_code == 400 and mismatch.json()["message"] == "Passwords do not match"


async def test_reset_token_older_than_an_hour_is_refused(client, notify):
    await signup(client)
    await client.post(f"{API}/forgot-password", json={"email": "john0@example.com"})
    await settle(client)
    token = _reset_token(notify)
    client.app.state.sellers.clock = lambda: utcnow() + timedelta(minutes=61)
    response = await client.post(f"{API}/reset-password", json={"token": token, "password": "brandnew1"})
    assert response.status_code == 400 and response.json()["message"] == "Invalid or expired reset token"


async def test_change_password(client):
    data = await signup(client)
    auth = bearer(data["token"])
    body = {"currentPassword": "nope-nope", "newPassword": "newpass123", "confirmPassword": "newpass123"}
    wrong = await client.put(f"{API}/change-password", json=body, headers=auth)
    assert wrong.status_code == 400 and wrong.json()["message"] == "Current password is incorrect"
    mismatch = await client.put(
        f"{API}/change-password",
        json={**body, "currentPassword": "secret123", "confirmPassword": "x1x1x1"},
        headers=auth,
    )
    assert mismatch.status_code == 400 and mismatch.json()["message"] == "Passwords do not match"
    response = await client.put(f"{API}/change-password", json={**body, "currentPassword": "secret123"}, headers=auth)
    assert response.status_code == 200 and response.json()["message"] == "Password changed successfully"
    fresh = response.json()["data"]
    assert fresh["message"] == "Password changed successfully" and fresh["token"] == fresh["accessToken"]
    old_refresh = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert old_refresh.status_code == 401
    assert (await client.get(f"{API}/profile", headers=auth)).status_code == 401
    assert (await client.get(f"{API}/profile", headers=bearer(fresh["token"]))).status_code == 200
    new_refresh = await client.post(f"{API}/refresh-token", json={"refreshToken": fresh["refreshToken"]})
    assert new_refresh.status_code == 200
    assert (await login(client, "john0@example.com", "newpass123")).status_code == 200


async def test_welcome_email_once_notifications_come_up(app_factory, notify):
    async with app_factory(NOTIFICATIONS_SERVICE_URL=f"http://127.0.0.1:{free_port()}") as client:
        data = await signup(client)
        await settle(client)
        assert notify.bodies() == []
        row = await client.app.state.outbox.rows.find_one({"dedupeKey": f"welcome_seller:{data['seller']['id']}"})
        assert row["status"] == "pending" and row["attempts"] == 1
        await repoint(client, "notifications", notify.url)
        await drain_due(client)
        await drain_due(client)
        welcomes = [b for b in notify.bodies("/api/v1/send") if b["template"] == "welcome_seller"]
        assert len(welcomes) == 1
        assert welcomes[0]["recipient_email"] == "john0@example.com"
        assert welcomes[0]["data"] == {
            "seller_name": "John Doe",
            "sellerName": "John Doe",
            "business_name": "John's Electronics 0",
            "businessName": "John's Electronics 0",
            "login_url": "http://localhost:3000/seller/login",
            "dashboard_url": "http://localhost:3000/seller/dashboard",
        }
        headers = {k.lower(): v for k, v in notify.requests[0][2].items()}
        assert headers["idempotency-key"] == f"welcome_seller:{data['seller']['id']}"
        assert headers["x-service-key"] == "test-service-key"


async def test_rate_limit(app_factory):
    async with app_factory(RATE_LIMIT_MAX=3) as client:
        codes = [(await login(client, "a@example.com", "whatever1")).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        last = await client.post(f"{API}/login", json={"email": "a@example.com", "password": "whatever1"})
        assert last.status_code == 429 and last.json()["success"] is False
        assert last.json()["message"] == "Too many authentication attempts, please try again later"
        assert int(last.headers["Retry-After"]) > 0
        other_ip = await client.post(
            f"{API}/signin",
            json={"email": "a@example.com", "password": "whatever1"},
            headers={"X-Forwarded-For": "1.2.3.4, 10.0.0.9"},
        )
        assert other_ip.status_code == 401
    async with app_factory(RATE_LIMIT_MAX=0) as client:
        for _ in range(6):
            assert (await login(client, "a@example.com", "whatever1")).status_code == 401


async def test_no_secrets_in_answers_and_alg_none_refused(client, notify):
    data = await signup(client)
    sid = data["seller"]["id"]
    auth = bearer(data["token"])
    await client.post(f"{API}/forgot-password", json={"email": "john0@example.com"})
    await settle(client)
    token = _reset_token(notify)
    answers = [
        await client.get(f"{API}/profile", headers=auth),
        await client.put(f"{API}/profile", json={"password": "hacked123", "industry": "Retail"}, headers=auth),
        await client.get(f"{API}/profile/{sid}", headers=HEADERS_KEY),
        await client.get(f"{API}/admin/{sid}", headers=HEADERS_KEY),
        await client.get(f"{API}/admin", headers=HEADERS_KEY),
        await client.post(f"{API}/service/bulk", json={"sellerIds": [sid]}, headers=HEADERS_KEY),
        await login(client, "john0@example.com"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert not any(secret in answer.text for secret in SECRETS) and token not in answer.text
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    b64 = lambda d: jwt.utils.base64url_encode(json.dumps(d).encode()).decode()  # noqa: E731
    none_token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    response = await client.get(f"{API}/profile", headers=bearer(none_token))
    assert response.status_code == 401 and response.json()["message"] == "Invalid token"


async def test_unknown_route_wrong_method_and_health(client):
    response = await client.get(f"{API}/nope")
    assert response.status_code == 404 and response.json()["success"] is False
    response = await client.delete(f"{API}/profile")
    assert response.status_code == 405 and response.json()["success"] is False
    health = (await client.get("/health")).json()
    assert health["service"] == "sellers-service" and health["status"] == "healthy"
