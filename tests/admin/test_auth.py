"""Login, lockout, the login limit, password reset and ``/me`` (checklist 1–9, 12–15)."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta

import httpx

from shared.auth import issue_token
from shared.timeutil import utcnow
from tests.admin.conftest import API, SUPER, bearer, settle

LOCKED = "Account is locked due to too many failed login attempts"


async def test_default_super_admin_logs_in(make_stack):
    # checklist 1-3
    async with make_stack() as s:
        response = await s.login(*SUPER)
        assert response.status_code == 200
        body = response.json()
        assert body["success"] is True and body["message"] == "Login successful"
        data = body["data"]
        assert data["token"].count(".") == 2
        assert data["admin"]["role"] == "super_admin"
        assert len(data["admin"]["permissions"]) == 8
        assert "password" not in json.dumps(body).replace('"password_', "")
        alias = await s.client.post(f"{API}/auth/login", json={"email": SUPER[0], "password": SUPER[1]})
        assert alias.status_code == 200
        spaced = await s.login("  ADMIN@Example.com ", SUPER[1])
        assert spaced.status_code == 200
        claims = __import__("jwt").decode(data["token"], options={"verify_signature": False})
        assert claims["role"] == "admin" and claims["adminRole"] == "super_admin" and claims["type"] == "access"
        assert claims["ver"] == 0 and claims["email"] == SUPER[0] and claims["jti"]


async def test_wrong_password_unknown_email_and_validation(make_stack):
    # checklist 4-5
    async with make_stack() as s:
        wrong = await s.login(SUPER[0], "nope-nope")
        unknown = await s.login("ghost@example.com", "whatever1")
        assert (wrong.status_code, wrong.json()["message"]) == (401, "Invalid credentials")
        assert (unknown.status_code, unknown.json()["message"]) == (401, "Invalid credentials")
        missing = await s.client.post(f"{API}/login", json={"email": SUPER[0]})
        assert missing.status_code == 400
        assert missing.json()["message"] == "Validation error"
        assert [e["field"] for e in missing.json()["errors"]] == ["password"]
        not_string = await s.client.post(f"{API}/login", json={"email": 5, "password": "x" * 73})
        assert not_string.status_code == 400
        assert {e["field"] for e in not_string.json()["errors"]} == {"email", "password"}


async def test_lockout_after_five_failures_and_unlock_when_time_passes(make_stack):
    # checklist 6-7
    async with make_stack() as s:
        answers = [await s.login(*SUPER[:1], "wrong-pass") for _ in range(5)]
        assert [a.status_code for a in answers] == [401] * 5
        locked = await s.login(*SUPER)
        assert (locked.status_code, locked.json()["message"]) == (423, LOCKED)
        admins = s.app.state.admins
        doc = await admins.repo.get_by_email(SUPER[0])
        assert doc["loginAttempts"] == 5 and doc["lockUntil"]

        later = utcnow() + timedelta(minutes=31)
        admins.clock = lambda: later
        again = await s.login(*SUPER)
        assert again.status_code == 200
        doc = await admins.repo.get_by_email(SUPER[0])
        assert doc["loginAttempts"] == 0 and doc["lockUntil"] is None


async def test_failure_after_an_expired_lock_counts_from_one(make_stack):
    async with make_stack() as s:
        for _ in range(5):
            await s.login(SUPER[0], "wrong-pass")
        admins = s.app.state.admins
        later = utcnow() + timedelta(minutes=31)
        admins.clock = lambda: later
        assert (await s.login(SUPER[0], "wrong-pass")).status_code == 401
        doc = await admins.repo.get_by_email(SUPER[0])
        assert doc["loginAttempts"] == 1 and doc["lockUntil"] is None


async def test_twenty_concurrent_wrong_passwords_count_exactly_five(make_stack):
    async with make_stack(LOGIN_RATE_LIMIT_MAX=100) as s:
        answers = await asyncio.gather(*(s.login(SUPER[0], f"wrong-{i}") for i in range(20)))
        statuses = sorted(a.status_code for a in answers)
        assert set(statuses) <= {401, 423}
        assert statuses.count(401) == 5
        doc = await s.app.state.admins.repo.get_by_email(SUPER[0])
        assert doc["loginAttempts"] == 5
        assert doc["lockUntil"] is not None
        right = await s.login(*SUPER)
        assert (right.status_code, right.json()["message"]) == (423, LOCKED)


async def test_deactivated_admin(make_stack):
    # checklist 8
    async with make_stack() as s:
        root = await s.token()
        other_id, _ = await s.make_admin(root, 1)
        off = await s.client.patch(f"{API}/admins/{other_id}", json={"isActive": False}, headers=bearer(root))
        assert off.status_code == 200
        right = await s.login("admin1@example.com", "password123")
        assert (right.status_code, right.json()["message"]) == (403, "Account is deactivated")
        wrong = await s.login("admin1@example.com", "password124")
        assert (wrong.status_code, wrong.json()["message"]) == (401, "Invalid credentials")


async def test_login_limit_per_client_ip(make_stack):
    # checklist 9: 21st request from one forwarded client is 429; another client still served
    async with make_stack() as s:
        paths = ["/login", "/auth/login", "/forgot-password", "/reset-password"]
        for i in range(20):
            path = paths[i % len(paths)]
            body = {"email": "ghost@example.com", "password": "wrong-pass", "token": "t"}
            response = await s.client.post(f"{API}{path}", json=body, headers={"X-Forwarded-For": "203.0.113.9"})
            assert response.status_code != 429, (i, response.text)
        limited = await s.login(*SUPER, **{"X-Forwarded-For": "203.0.113.9"})
        assert limited.status_code == 429
        assert limited.json()["message"] == "Too many authentication attempts, please try again later"
        assert int(limited.headers["Retry-After"]) > 0
        # a forged left-most entry does not help: the right-most one is the client
        forged = await s.login(*SUPER, **{"X-Forwarded-For": "198.51.100.1, 203.0.113.9"})
        assert forged.status_code == 429
        other = await s.login(*SUPER, **{"X-Forwarded-For": "203.0.113.10"})
        assert other.status_code == 200


async def test_forgot_and_reset_password_through_real_notifications(make_stack, notifications, inbox):
    # checklist 12-13: one email for the admin, none for an unknown address; the token works once
    async with make_stack(apps={"notifications": notifications}) as s:
        old_token = await s.token()
        known = await s.client.post(f"{API}/forgot-password", json={"email": SUPER[0]})
        unknown = await s.client.post(f"{API}/forgot-password", json={"email": "ghost@example.com"})
        assert known.status_code == unknown.status_code == 200
        assert (
            known.json()
            == unknown.json()
            == {
                "success": True,
                "message": "Password reset email sent",
                "data": None,
            }
        )
        await settle(s.app)
        for _ in range(50):
            if inbox.messages:
                break
            await asyncio.sleep(0.05)
        assert len(inbox.messages) == 1
        message = inbox.messages[0]
        assert "admin@example.com" in message["To"]
        text = inbox.texts()[0]
        token = re.search(r"/admin/reset-password\?token=([A-Za-z0-9_-]+)", text).group(1)
        rows = await s.app.state.outbox.rows.find({})
        assert [r["dedupeKey"] for r in rows] == [f"password_reset:{(await _super(s))['_id']}"]
        assert rows[0]["status"] == "sent"
        stored = await _super(s)
        assert stored["passwordResetToken"] != token and len(stored["passwordResetToken"]) == 64

        reset = await s.client.post(f"{API}/reset-password", json={"token": token, "newPassword": "Another1!"})
        assert reset.status_code == 200
        assert reset.json() == {"success": True, "message": "Password reset successfully", "data": None}
        assert (await s.login(SUPER[0], "Another1!")).status_code == 200
        assert (await s.login(*SUPER)).status_code == 401
        stale = await s.client.get(f"{API}/me", headers=bearer(old_token))
        assert (stale.status_code, stale.json()["message"]) == (401, "Invalid token")
        again = await s.client.post(f"{API}/auth/reset-password", json={"token": token, "newPassword": "Third333!"})
        assert (again.status_code, again.json()["message"]) == (400, "Invalid or expired reset token")


async def _super(s):
    return await s.app.state.admins.repo.get_by_email(SUPER[0])


async def test_reset_password_validation(make_stack):
    # checklist 14
    async with make_stack() as s:
        mismatch = await s.client.post(
            f"{API}/reset-password", json={"token": "abc", "password": "Another1!", "confirmPassword": "Other111!"}
        )
        assert mismatch.status_code == 400
        assert mismatch.json()["errors"] == [{"field": "confirmPassword", "message": "Passwords do not match"}]
        short = await s.client.post(f"{API}/reset-password", json={"token": "abc", "newPassword": "short"})
        assert short.status_code == 400 and short.json()["message"] == "Validation error"
        no_token = await s.client.post(f"{API}/reset-password", json={"newPassword": "Another1!"})
        assert [e["field"] for e in no_token.json()["errors"]] == ["token"]
        expired = await s.client.post(f"{API}/reset-password", json={"token": "abc", "newPassword": "Another1!"})
        assert (expired.status_code, expired.json()["message"]) == (400, "Invalid or expired reset token")
        bad_email = await s.client.post(f"{API}/forgot-password", json={"email": "not-an-email"})
        assert bad_email.status_code == 400 and bad_email.json()["errors"][0]["field"] == "email"


async def test_reset_token_expires(make_stack):
    async with make_stack() as s:
        admins = s.app.state.admins
        doc = await _super(s)
        row = {"payload": {"adminId": doc["_id"]}}
        request = await admins.build_reset_email(row)
        token = request.json["data"]["reset_link"].split("token=")[1]
        assert request.json["data"]["expiry_time"] == "1 hour"
        later = utcnow() + timedelta(minutes=61)
        admins.clock = lambda: later
        late = await s.client.post(f"{API}/reset-password", json={"token": token, "newPassword": "Another1!"})
        assert (late.status_code, late.json()["message"]) == (400, "Invalid or expired reset token")


async def test_reset_clears_lock(make_stack):
    async with make_stack() as s:
        for _ in range(5):
            await s.login(SUPER[0], "wrong-pass")
        admins = s.app.state.admins
        request = await admins.build_reset_email({"payload": {"adminId": (await _super(s))["_id"]}})
        token = request.json["data"]["reset_link"].split("token=")[1]
        await s.client.post(f"{API}/reset-password", json={"token": token, "newPassword": "Another1!"})
        assert (await s.login(SUPER[0], "Another1!")).status_code == 200


async def test_me_and_token_errors(make_stack):
    # checklist 15
    async with make_stack() as s:
        token = await s.token()
        me = await s.client.get(f"{API}/me", headers=bearer(token))
        assert me.status_code == 200
        admin = me.json()["data"]["admin"]
        assert admin["email"] == SUPER[0] and admin["role"] == "super_admin"
        assert set(admin) == {
            "id", "firstName", "lastName", "email", "phone", "role", "permissions", "isActive", "lastLogin",
            "createdAt", "updatedAt",
        }  # fmt: skip
        assert (await s.client.get(f"{API}/auth/me", headers=bearer(token))).status_code == 200
        none = await s.client.get(f"{API}/me")
        assert (none.status_code, none.json()["message"]) == (401, "Access token required")
        settings = s.app.state.settings
        customer, _ = issue_token(settings, subject="a" * 24, role="customer", email="c@example.com")
        as_customer = await s.client.get(f"{API}/me", headers=bearer(customer))
        assert (as_customer.status_code, as_customer.json()["message"]) == (403, "Admin access required")
        expired, _ = issue_token(settings, subject=admin["id"], role="admin", email=SUPER[0], expires_in=-10)
        old = await s.client.get(f"{API}/me", headers=bearer(expired))
        assert (old.status_code, old.json()["message"]) == (401, "Token expired")
        refresh, _ = issue_token(settings, subject=admin["id"], role="admin", email=SUPER[0], token_type="refresh")
        assert (await s.client.get(f"{API}/me", headers=bearer(refresh))).json()["message"] == "Invalid token"
        ghost, _ = issue_token(settings, subject="b" * 24, role="admin", email="g@example.com")
        assert (await s.client.get(f"{API}/me", headers=bearer(ghost))).json()["message"] == "Invalid token"
        wrong_ver, _ = issue_token(settings, subject=admin["id"], role="admin", email=SUPER[0], version=3)
        assert (await s.client.get(f"{API}/me", headers=bearer(wrong_ver))).status_code == 401


async def test_forwarded_address_believed_only_from_a_trusted_proxy(make_stack):
    # a client talking to the service directly cannot pick its own address to dodge the limit
    async with make_stack(LOGIN_RATE_LIMIT_MAX=3) as s:
        transport = httpx.ASGITransport(app=s.app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://admin") as direct:
            answers = [
                await direct.post(
                    f"{API}/login",
                    json={"email": "ghost@example.com", "password": "x-x-x-x-x"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                )
                for n in range(4)
            ]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        # behind the gateway (a loopback peer) the forwarded client is what counts
        assert (await s.login(*SUPER, **{"X-Forwarded-For": "203.0.113.1"})).status_code == 200


async def test_inactive_admin_gets_no_reset_email(make_stack):
    async with make_stack() as s:
        root = await s.token()
        other_id, _ = await s.make_admin(root, 1)
        await s.client.patch(f"{API}/admins/{other_id}", json={"isActive": False}, headers=bearer(root))
        answer = await s.client.post(f"{API}/forgot-password", json={"email": "admin1@example.com"})
        assert answer.json()["message"] == "Password reset email sent"
        assert await s.app.state.outbox.rows.count({}) == 0


async def test_new_hashes_are_argon2id_and_a_bcrypt_hash_is_upgraded_at_login(make_stack):
    from shared.passwords import hash_password

    async with make_stack() as s:
        repo = s.app.state.admins.repo
        stored = await repo.get_by_email(SUPER[0])
        assert stored["password"].startswith("$argon2id$")  # the bootstrap admin's new hash
        legacy = await hash_password(SUPER[1], rounds=4)  # an admin stored by the bcrypt era
        await repo.replace_hash(stored["_id"], old=stored["password"], new=legacy)
        assert (await s.login(*SUPER)).status_code == 200
        upgraded = (await repo.get_by_email(SUPER[0]))["password"]
        assert upgraded.startswith("$argon2id$")
        assert (await s.login(*SUPER)).status_code == 200
        assert (await s.login(SUPER[0], "wrong-password")).status_code == 401
