"""Registration, sign-in, tokens, passwords, verification, deactivation (checklist 1–23, 37–38)."""

from __future__ import annotations

import asyncio
import json
import time

import jwt

from tests.customer.conftest import HEADERS_KEY, bearer, person, register, settle

API = "/api/v1/customers"


async def test_register_answers_customer_and_tokens_without_secrets(client):
    response = await client.post(f"{API}/register", json=person(email="  Jane.Smith@Example.COM "))
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["message"] == "Customer registered successfully"
    data = body["data"]
    assert data["customer"]["email"] == "jane.smith@example.com"
    assert data["token"] and data["accessToken"] == data["token"] and data["refreshToken"]
    assert "password" not in response.text and "Hash" not in response.text
    assert data["customer"]["totalSpent"] == 0 and data["customer"]["preferences"]["currency"] == "USD"


async def test_duplicate_email_other_case_via_signup_is_409(client):
    await register(client, email="dup@example.com")
    response = await client.post(f"{API}/signup", json=person(email=" DUP@example.com "))
    assert response.status_code == 409
    assert response.json()["message"] == "Customer with this email already exists"
    assert response.json()["errors"][0]["field"] == "email"


async def test_parallel_registrations_of_one_email_give_one_201(client):
    responses = await asyncio.gather(
        *[client.post(f"{API}/register", json=person(email="race@example.com")) for _ in range(10)]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9


async def test_concurrent_case_variants_one_wins(client):
    a, b = await asyncio.gather(
        client.post(f"{API}/register", json=person(email="A@x.com")),
        client.post(f"{API}/register", json=person(email="a@x.com ")),
    )
    assert sorted([a.status_code, b.status_code]) == [201, 409]


async def test_register_validation_lists_every_bad_field(client):
    response = await client.post(
        f"{API}/register", json={"firstName": "J", "lastName": "Smith", "email": "bad", "password": "123"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validation error"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert fields["firstName"] == "First name must be at least 2 characters"
    assert fields["email"] == "Please provide a valid email address"
    assert fields["password"] == "Password must be at least 6 characters"


async def test_confirm_password_mismatch_and_absent(client):
    response = await client.post(f"{API}/register", json=person(1, confirmPassword="other123"))
    assert response.status_code == 400 and response.json()["message"] == "Passwords do not match"
    response = await client.post(f"{API}/register", json=person(1))
    assert response.status_code == 201
    assert await client.app.state.store.collection("customers").count({"email": "jane1@example.com"}) == 1


async def test_password_over_72_bytes_is_refused(client):
    response = await client.post(f"{API}/register", json=person(password="😀" * 40))
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Password cannot exceed 72 bytes"


async def test_empty_body_and_bad_gender_are_400(client):
    response = await client.post(f"{API}/register", json={})
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} >= {"firstName", "lastName", "email", "password"}
    assert {e["message"] for e in response.json()["errors"]} >= {"First name is required", "Email is required"}
    response = await client.post(f"{API}/register", json=person(gender="unknown"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Gender must be male, female, other or prefer_not_to_say"


async def test_malformed_json_wrong_type_and_future_birth_date(client):
    response = await client.post(f"{API}/register", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["success"] is False
    response = await client.post(f"{API}/register", content=b"a=b", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    response = await client.post(f"{API}/register", json=person(dateOfBirth="2999-01-01"))
    assert response.json()["errors"][0]["message"] == "Date of birth cannot be in the future"
    response = await client.post(f"{API}/register", json=person(phone="12ab", extraField="ignored"))
    assert response.json()["errors"][0]["message"] == "Please provide a valid phone number"
    assert await client.app.state.store.collection("customers").count({}) == 0


async def test_login_and_signin(client):
    await register(client)
    for path in ("login", "signin"):
        response = await client.post(f"{API}/{path}", json={"email": "JANE0@example.com", "password": "secret123"})
        assert response.status_code == 200
        assert response.json()["message"] == "Login successful"
        assert response.json()["data"]["customer"]["lastLogin"]
        assert response.json()["data"]["refreshToken"]


async def test_unknown_email_and_wrong_password_answer_identically(client):
    await register(client)
    unknown = await client.post(f"{API}/login", json={"email": "nobody@example.com", "password": "secret123"})
    wrong = await client.post(f"{API}/login", json={"email": "jane0@example.com", "password": "wrong-pass"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.json()["message"] == "Invalid credentials"


async def test_login_validation(client):
    response = await client.post(f"{API}/login", json={"email": "x"})
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"email", "password"}


async def test_refresh_rotates_and_refuses_reuse_and_access_tokens(client):
    data = await register(client)
    response = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert response.status_code == 200 and response.json()["message"] == "Token refreshed successfully"
    fresh = response.json()["data"]
    assert fresh["token"] and fresh["refreshToken"] != data["refreshToken"]
    again = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert again.status_code == 401 and again.json()["message"] == "Invalid refresh token"
    access = await client.post(f"{API}/refresh-token", json={"refreshToken": data["token"]})
    assert access.status_code == 401
    missing = await client.post(f"{API}/refresh-token", json={})
    assert missing.status_code == 400


async def test_concurrent_refresh_with_one_token_only_one_wins(client):
    data = await register(client)
    responses = await asyncio.gather(
        *[client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]}) for _ in range(10)]
    )
    assert sorted(r.status_code for r in responses) == [200] + [401] * 9


async def test_profile_auth_failures(client):
    data = await register(client)
    assert (await client.get(f"{API}/profile")).json()["message"] == "Access token required"
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-of-enough-length-123456", algorithm="HS256")
    response = await client.get(f"{API}/profile", headers=bearer(forged))
    assert response.status_code == 401 and response.json()["message"] == "Invalid token"
    header = {"alg": "none", "typ": "JWT"}
    b64 = lambda d: jwt.utils.base64url_encode(json.dumps(d).encode()).decode()  # noqa: E731
    none_token = f"{b64(header)}.{b64(claims)}."
    assert (await client.get(f"{API}/profile", headers=bearer(none_token))).status_code == 401
    seller_claims = {**claims, "role": "seller"}
    settings = client.app.state.settings
    seller = jwt.encode(seller_claims, settings.JWT_SECRET, algorithm="HS256")
    response = await client.get(f"{API}/profile", headers=bearer(seller))
    assert response.status_code == 403 and response.json()["message"] == "Access denied"
    expired = jwt.encode({**claims, "exp": int(time.time()) - 10}, settings.JWT_SECRET, algorithm="HS256")
    response = await client.get(f"{API}/profile", headers=bearer(expired))
    assert response.json()["message"] == "Token expired"
    ok = await client.get(f"{API}/profile", headers=bearer(data["token"]))
    assert ok.status_code == 200 and ok.json()["data"]["email"] == "jane0@example.com"


async def test_change_password(client):
    data = await register(client)
    auth = bearer(data["token"])
    wrong = await client.put(
        f"{API}/change-password",
        json={"currentPassword": "nope-nope", "newPassword": "newpass123", "confirmPassword": "newpass123"},
        headers=auth,
    )
    assert wrong.status_code == 400 and wrong.json()["message"] == "Current password is incorrect"
    response = await client.put(
        f"{API}/change-password",
        json={"currentPassword": "secret123", "newPassword": "newpass123", "confirmPassword": "newpass123"},
        headers=auth,
    )
    assert response.status_code == 200
    assert response.json()["data"]["message"] == "Password changed successfully"
    new_token = response.json()["data"]["token"]
    old_refresh = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert old_refresh.status_code == 401
    assert (await client.get(f"{API}/profile", headers=auth)).status_code == 401
    assert (await client.get(f"{API}/profile", headers=bearer(new_token))).status_code == 200
    login = await client.post(f"{API}/login", json={"email": "jane0@example.com", "password": "newpass123"})
    assert login.status_code == 200


async def test_forgot_password_is_identical_for_known_and_unknown(client, notify):
    await register(client)
    known = await client.post(f"{API}/forgot-password", json={"email": "jane0@example.com"})
    unknown = await client.post(f"{API}/forgot-password", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.content == unknown.content
    assert known.json()["message"] == "Password reset email sent" and known.json()["data"] is None
    assert (await client.post(f"{API}/forgot-password", json={"email": "bad"})).status_code == 400
    await settle(client)
    templates = [b["template"] for b in notify.bodies("/api/v1/send")]
    assert templates.count("password_reset") == 1


def _token_from(notify, template: str, marker: str) -> str:
    bodies = [b for b in notify.bodies("/api/v1/send") if b["template"] == template]
    link = bodies[-1]["data"]["reset_link" if template == "password_reset" else "verification_link"]
    return link.split(marker, 1)[1]


async def test_reset_password_with_emailed_token(client, notify):
    data = await register(client)
    await client.post(f"{API}/forgot-password", json={"email": "jane0@example.com"})
    await settle(client)
    token = _token_from(notify, "password_reset", "token=")
    stored = await client.app.state.store.collection("customers").find_one({})
    assert token not in json.dumps(stored)
    body = {"token": token, "newPassword": "brandnew1", "confirmPassword": "brandnew1"}
    assert (await client.post(f"{API}/reset-password", json=body)).status_code == 200
    again = await client.post(f"{API}/reset-password", json=body)
    assert again.status_code == 400 and again.json()["message"] == "Invalid or expired reset token"
    old = await client.post(f"{API}/login", json={"email": "jane0@example.com", "password": "secret123"})
    assert old.status_code == 401
    assert (await client.get(f"{API}/profile", headers=bearer(data["token"]))).status_code == 401
    new = await client.post(f"{API}/login", json={"email": "jane0@example.com", "password": "brandnew1"})
    assert new.status_code == 200


async def test_reset_token_older_than_an_hour_is_refused(client, notify):
    await register(client)
    await client.post(f"{API}/forgot-password", json={"email": "jane0@example.com"})
    await settle(client)
    token = _token_from(notify, "password_reset", "token=")
    # Advance the clock by moving the stored expiry an hour and a second into the past.
    customers = client.app.state.store.collection("customers")
    await customers.update_one({}, {"$set": {"passwordResetExpires": "2000-01-01T00:00:00.000Z"}})
    response = await client.post(f"{API}/reset-password", json={"token": token, "password": "brandnew1"})
    assert response.status_code == 400


async def test_verify_email_with_emailed_token(client, notify):
    data = await register(client)
    await settle(client)
    token = _token_from(notify, "email_verification", "/verify-email/")
    response = await client.get(f"{API}/verify-email/{token}")
    assert response.status_code == 200
    assert response.json()["data"] == {"email": "jane0@example.com", "isVerified": True, "emailVerified": True}
    profile = (await client.get(f"{API}/profile", headers=bearer(data["token"]))).json()["data"]
    assert profile["isVerified"] is True and profile["emailVerified"] is True
    again = await client.get(f"{API}/verify-email/{token}")
    assert again.status_code == 400 and again.json()["message"] == "Invalid or expired verification token"


async def test_resend_verification_only_for_unverified(client, notify):
    await register(client)
    await settle(client)
    before = len(notify.bodies())
    a = await client.post(f"{API}/resend-verification", json={"email": "jane0@example.com"})
    b = await client.post(f"{API}/resend-verification", json={"email": "ghost@example.com"})
    assert a.content == b.content and a.json()["message"] == "Verification email sent"
    await settle(client)
    assert len(notify.bodies()) == before + 1


async def test_deactivate_and_admin_reactivate(client):
    data = await register(client)
    auth = bearer(data["token"])
    wrong = await client.post(f"{API}/deactivate", json={"password": "nope-nope"}, headers=auth)
    assert wrong.status_code == 400 and wrong.json()["message"] == "Password is incorrect"
    assert (
        await client.post(f"{API}/deactivate", json={"password": "secret123", "reason": "moving"}, headers=auth)
    ).status_code == 200
    login = await client.post(f"{API}/login", json={"email": "jane0@example.com", "password": "secret123"})
    assert login.status_code == 403 and login.json()["message"] == "Account is deactivated"
    profile = await client.get(f"{API}/profile", headers=auth)
    assert profile.status_code == 403 and profile.json()["message"] == "Account is deactivated"
    refresh = await client.post(f"{API}/refresh-token", json={"refreshToken": data["refreshToken"]})
    assert refresh.status_code == 401
    cid = data["customer"]["id"]
    response = await client.patch(f"{API}/admin/{cid}/status", json={"isActive": True}, headers=HEADERS_KEY)
    assert response.status_code == 200 and response.json()["data"]["isActive"] is True
    login = await client.post(f"{API}/login", json={"email": "jane0@example.com", "password": "secret123"})
    assert login.status_code == 200
    stale = await client.get(f"{API}/profile", headers=auth)
    assert stale.status_code == 401 and stale.json()["message"] == "Invalid token"


async def test_admin_status_validation_and_service_key(client):
    data = await register(client)
    cid = data["customer"]["id"]
    url = f"{API}/admin/{cid}/status"
    assert (await client.patch(url, json={"isActive": "maybe"}, headers=HEADERS_KEY)).status_code == 400
    missing = await client.patch(url, json={"isActive": False})
    assert missing.status_code == 401 and missing.json()["message"] == "Service key required"
    wrong = await client.patch(url, json={"isActive": False}, headers={"X-Service-Key": "nope"})
    assert wrong.status_code == 403 and wrong.json()["message"] == "Invalid service key"
    unknown = await client.patch(f"{API}/admin/{'0' * 24}/status", json={"isActive": False}, headers=HEADERS_KEY)
    assert unknown.status_code == 404
    off = await client.patch(url, json={"isActive": "false"}, headers=HEADERS_KEY)
    assert off.json()["data"]["isActive"] is False
    assert (await client.get(f"{API}/profile", headers=bearer(data["token"]))).status_code == 403


async def test_close_account_keeps_document(client):
    data = await register(client)
    response = await client.delete(f"{API}/account", headers=bearer(data["token"]))
    assert response.status_code == 200
    assert response.json()["data"] == {"message": "Account deleted successfully"}
    details = await client.get(f"{API}/admin/{data['customer']['id']}", headers=HEADERS_KEY)
    assert details.json()["data"]["deletedAt"] and details.json()["data"]["isActive"] is False


async def test_rate_limit(app_factory):
    async with app_factory(RATE_LIMIT_MAX=3) as client:
        codes = []
        for _ in range(4):
            r = await client.post(f"{API}/login", json={"email": "a@example.com", "password": "whatever1"})
            codes.append(r.status_code)
        assert codes[:3] == [401, 401, 401] and codes[3] == 429
        assert r.json()["message"] == "Too many authentication attempts, please try again later"
        assert int(r.headers["Retry-After"]) > 0
        # aliases share the counter
        assert (
            await client.post(f"{API}/signin", json={"email": "a@example.com", "password": "x1x1x1"})
        ).status_code == 429
        # another client IP (behind one trusted proxy hop) has its own window
        other = await client.post(
            f"{API}/login",
            json={"email": "a@example.com", "password": "whatever1"},
            headers={"X-Forwarded-For": "1.2.3.4, 10.0.0.9"},
        )
        assert other.status_code == 401
    async with app_factory(RATE_LIMIT_MAX=0) as client:
        for _ in range(6):
            r = await client.post(f"{API}/login", json={"email": "a@example.com", "password": "whatever1"})
            assert r.status_code == 401


async def test_unknown_route_and_wrong_method(client):
    response = await client.get(f"{API}/nope")
    assert response.status_code == 404 and response.json()["success"] is False
    response = await client.delete(f"{API}/profile")
    assert response.status_code == 405 and response.json()["success"] is False
