"""Admin management and the role/permission guards (checklist 20–24, 33), every role against
every guarded route, and customer/seller tokens refused everywhere."""

from __future__ import annotations

import asyncio

import pytest

from admin.domain import LastSuperAdmin
from shared.testing import Receiver
from tests.admin.conftest import API, SERVICES, bearer

ADMIN_DEFAULTS = [
    "manage_users",
    "manage_sellers",
    "manage_products",
    "manage_orders",
    "view_analytics",
    "send_notifications",
    "moderate_content",
]


async def test_list_admins_super_only_with_pagination_and_filters(make_stack):
    # checklist 20
    async with make_stack() as s:
        root = await s.token()
        _, moderator = await s.make_admin(root, 1, role="moderator")
        await s.make_admin(root, 2, role="admin")
        refused = await s.client.get(f"{API}/admins", headers=bearer(moderator))
        assert (refused.status_code, refused.json()["message"]) == (403, "Insufficient permissions")
        listed = await s.client.get(f"{API}/admins", headers=bearer(root))
        assert listed.status_code == 200
        body = listed.json()
        assert body["message"] == "Admins retrieved successfully"
        assert body["data"]["pagination"] == {"page": 1, "limit": 20, "total": 3, "pages": 1, "totalPages": 1}
        assert [a["email"] for a in body["data"]["admins"]][-1] == "admin@example.com"  # newest first
        for query, emails in [
            ("role=moderator", ["admin1@example.com"]),
            ("search=ADMIN2", ["admin2@example.com"]),
            ("isActive=false", []),
            ("page=2&limit=2", ["admin@example.com"]),
        ]:
            page = await s.client.get(f"{API}/admins?{query}", headers=bearer(root))
            assert [a["email"] for a in page.json()["data"]["admins"]] == emails, query
        for bad in ("limit=101", "page=0", "role=king", "isActive=maybe", "page=99999999999999999999999"):
            answer = await s.client.get(f"{API}/admins?{bad}", headers=bearer(root))
            assert (answer.status_code, answer.json()["message"]) == (400, "Validation error"), bad


async def test_create_admin_defaults_duplicates_and_validation(make_stack):
    # checklist 21-22
    async with make_stack() as s:
        root = await s.token()
        root_id = (await s.client.get(f"{API}/me", headers=bearer(root))).json()["data"]["admin"]["id"]
        body = {
            "firstName": " Content ",
            "lastName": "Moderator",
            "email": "Mod@Example.com",
            "password": "moderator1",
            "role": "moderator",
            "phone": "+1 (555) 010-0000",
        }
        created = await s.client.post(f"{API}/admins", json=body, headers=bearer(root))
        assert created.status_code == 201
        assert created.json()["message"] == "Admin created successfully"
        admin = created.json()["data"]["admin"]
        assert admin["permissions"] == ["view_analytics", "moderate_content"]
        assert admin["email"] == "mod@example.com" and admin["firstName"] == "Content"
        assert "password" not in admin
        stored = await s.app.state.admins.repo.get_admin(admin["id"])
        assert stored["createdBy"] == root_id and stored["password"].startswith("$")
        again = await s.client.post(f"{API}/admins", json=body, headers=bearer(root))
        assert (again.status_code, again.json()["message"]) == (409, "Admin with this email already exists")
        assert again.json()["errors"][0]["field"] == "email"

        fly = await s.client.post(
            f"{API}/admins", json={**body, "email": "x@example.com", "permissions": ["fly"]}, headers=bearer(root)
        )
        assert fly.status_code == 400 and fly.json()["errors"][0]["field"].startswith("permissions")
        short = await s.client.post(
            f"{API}/admins", json={**body, "email": "y@example.com", "password": "12345"}, headers=bearer(root)
        )
        assert short.status_code == 400 and short.json()["errors"][0]["field"] == "password"
        custom = await s.client.post(
            f"{API}/admins",
            json={**body, "email": "z@example.com", "role": "admin", "permissions": ["view_analytics", "manage_users"]},
            headers=bearer(root),
        )
        assert custom.json()["data"]["admin"]["permissions"] == ["manage_users", "view_analytics"]  # canonical
        sup = await s.client.post(
            f"{API}/admins",
            json={**body, "email": "s@example.com", "role": "super_admin", "permissions": ["view_analytics"]},
            headers=bearer(root),
        )
        assert len(sup.json()["data"]["admin"]["permissions"]) == 8

        audit = (await s.client.get(f"{API}/audit?service=admin", headers=bearer(root))).json()["data"]["entries"]
        assert {(e["method"], e["path"], e["status"]) for e in audit} >= {
            ("POST", "/api/v1/admins", 201),
            ("POST", "/api/v1/admins", 409),
        }


async def test_update_admin_rules(make_stack):
    # checklist 23-24
    async with make_stack() as s:
        root = await s.token()
        root_id = (await s.client.get(f"{API}/me", headers=bearer(root))).json()["data"]["admin"]["id"]
        mod_id, mod_token = await s.make_admin(root, 1, role="moderator")
        to_admin = await s.client.patch(f"{API}/admins/{mod_id}", json={"role": "admin"}, headers=bearer(root))
        assert to_admin.status_code == 200
        assert to_admin.json()["message"] == "Admin updated successfully"
        assert to_admin.json()["data"]["admin"]["permissions"] == ADMIN_DEFAULTS
        for bad in ({"email": "x@y.z"}, {}, {"role": "admin", "extra": 1}, {"permissions": None}, {"isActive": "x"}):
            answer = await s.client.patch(f"{API}/admins/{mod_id}", json=bad, headers=bearer(root))
            assert (answer.status_code, answer.json()["message"]) == (400, "Validation error"), bad
        bad_id = await s.client.patch(f"{API}/admins/123", json={"role": "admin"}, headers=bearer(root))
        assert (bad_id.status_code, bad_id.json()["message"]) == (400, "Invalid ID format")
        unknown = await s.client.patch(f"{API}/admins/{'0' * 24}", json={"role": "admin"}, headers=bearer(root))
        assert (unknown.status_code, unknown.json()["message"]) == (404, "Admin not found")
        assert (await s.client.get(f"{API}/admins/{'0' * 24}", headers=bearer(root))).status_code == 404
        assert (await s.client.get(f"{API}/admins/xyz", headers=bearer(root))).status_code == 400
        one = await s.client.get(f"{API}/admins/{mod_id}", headers=bearer(root))
        assert one.json()["data"]["admin"]["role"] == "admin"

        myself = await s.client.patch(f"{API}/admins/{root_id}", json={"isActive": False}, headers=bearer(root))
        assert myself.status_code == 409
        demote = await s.client.patch(f"{API}/admins/{root_id}", json={"role": "admin"}, headers=bearer(root))
        assert demote.json()["message"] == "You cannot change your own role or deactivate your own account"

        assert (await s.client.get(f"{API}/me", headers=bearer(mod_token))).status_code == 200
        off = await s.client.patch(f"{API}/admins/{mod_id}", json={"isActive": False}, headers=bearer(root))
        assert off.status_code == 200 and off.json()["data"]["admin"]["isActive"] is False
        after = await s.client.get(f"{API}/me", headers=bearer(mod_token))
        assert (after.status_code, after.json()["message"]) == (403, "Account is deactivated")
        entries = (await s.client.get(f"{API}/audit?method=patch", headers=bearer(root))).json()["data"]["entries"]
        # newest first; refused bodies and ids are recorded with their 400 too
        assert [e["status"] for e in entries] == [200, 409, 409, 404, 400, 400, 400, 400, 400, 400, 200]
        assert {e["service"] for e in entries} == {"admin"}
        assert entries[0]["path"] == f"/api/v1/admins/{mod_id}"


async def test_last_active_super_admin_remains(make_stack):
    async with make_stack() as s:
        root = await s.token()
        b_id, b_token = await s.make_admin(root, 2, role="super_admin")
        root_id = (await s.client.get(f"{API}/me", headers=bearer(root))).json()["data"]["admin"]["id"]
        # the two super_admins demote each other at the same time: one must stay
        answers = await asyncio.gather(
            s.client.patch(f"{API}/admins/{root_id}", json={"role": "admin"}, headers=bearer(b_token)),
            s.client.patch(f"{API}/admins/{b_id}", json={"isActive": False}, headers=bearer(root)),
        )
        assert [a.status_code for a in answers] != [200, 200]
        assert await s.app.state.admins.repo.count_active_super_admins() >= 1
        # the rule itself, with only one active super_admin left
        admins = s.app.state.admins
        only = (await admins.repo.list_admins(page=1, limit=5, role="super_admin", active=True, search=None))[0]
        assert len(only) == 1
        with pytest.raises(LastSuperAdmin):
            await admins.update_admin(actor={"_id": "f" * 24}, admin_id=only[0]["_id"], role="moderator")
        with pytest.raises(LastSuperAdmin):
            await admins.update_admin(actor={"_id": "f" * 24}, admin_id=only[0]["_id"], is_active=False)
        assert await admins.repo.count_active_super_admins() == 1


async def test_audit_is_super_admin_only_and_filters(make_stack):
    # checklist 33
    async with make_stack() as s:
        root = await s.token()
        _, admin_token = await s.make_admin(root, 1, role="admin")
        refused = await s.client.get(f"{API}/audit", headers=bearer(admin_token))
        assert (refused.status_code, refused.json()["message"]) == (403, "Insufficient permissions")
        page = await s.client.get(
            f"{API}/audit?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z", headers=bearer(root)
        )
        assert page.status_code == 200 and page.json()["data"]["pagination"]["total"] == 1
        none = await s.client.get(f"{API}/audit?to=2000-01-01T00:00:00Z", headers=bearer(root))
        assert none.json()["data"]["entries"] == []
        for bad in ("from=yesterday", "limit=0", "adminId=12"):
            assert (await s.client.get(f"{API}/audit?{bad}", headers=bearer(root))).status_code == 400, bad


# every role against every guarded route

ROUTES = [
    # (method, path, guard): guard is "any", a permission, or "super"
    ("GET", "/me", "any"),
    ("GET", "/dashboard/stats", "view_analytics"),
    ("GET", "/services/health", "view_analytics"),
    ("GET", "/admins", "super"),
    ("POST", "/admins", "super"),
    ("GET", "/admins/{id}", "super"),
    ("PATCH", "/admins/{id}", "super"),
    ("GET", "/audit", "super"),
]
PROXY_MAP = {
    "customer": "manage_users",
    "sellers": "manage_sellers",
    "media": "moderate_content",
    "products": "manage_products",
    "orders": "manage_orders",
    "notifications": "send_notifications",
}
ROLE_PERMISSIONS = {
    "super_admin": None,  # passes everything
    "admin": ADMIN_DEFAULTS,
    "moderator": ["view_analytics", "moderate_content"],
    "custom": ["manage_orders"],  # role admin with only this permission
}


def allowed(role: str, guard: str, method: str = "GET") -> bool:
    perms = ROLE_PERMISSIONS[role]
    if perms is None or guard == "any":
        return True
    if guard == "super":
        return False
    if guard.startswith("proxy:"):
        service = guard.split(":")[1]
        return PROXY_MAP[service] in perms or (method in ("GET", "HEAD") and "view_analytics" in perms)
    return guard in perms


@pytest.fixture
async def receivers():
    async with Receiver(status=200) as a, Receiver(status=200) as b, Receiver(status=200) as c:
        async with Receiver(status=200) as d, Receiver(status=200) as e, Receiver(status=200) as f:
            yield dict(zip(SERVICES, (a, b, c, d, e, f), strict=True))


async def test_each_role_against_each_guarded_route(make_stack, receivers):
    async with make_stack(urls={n: r.url for n, r in receivers.items()}) as s:
        root = await s.token()
        tokens = {"super_admin": root}
        ids = {}
        for n, role in enumerate(("admin", "moderator"), start=1):
            ids[role], tokens[role] = await s.make_admin(root, n, role=role)
        ids["custom"], tokens["custom"] = await s.make_admin(root, 9, role="admin", permissions=["manage_orders"])
        target = ids["moderator"]
        checked = 0
        for role, token in tokens.items():
            for method, path, guard in ROUTES:
                body = None
                if method == "POST":
                    body = {
                        "firstName": "A",
                        "lastName": "B",
                        "email": f"n{checked}@example.com",
                        "password": "pass1234",
                    }
                if method == "PATCH":
                    body = {"permissions": ["view_analytics", "moderate_content"]}
                response = await s.client.request(
                    method, f"{API}{path.replace('{id}', target)}", json=body, headers=bearer(token)
                )
                if allowed(role, guard):
                    assert response.status_code in (200, 201), (role, method, path, response.text)
                else:
                    assert (response.status_code, response.json()["message"]) == (403, "Insufficient permissions"), (
                        role,
                        method,
                        path,
                    )
                checked += 1
            for service, receiver in receivers.items():
                for method in ("GET", "PATCH"):
                    before = len(receiver.requests)
                    response = await s.client.request(
                        method, f"{API}/proxy/{service}/api/v1/thing/1", json={"a": 1}, headers=bearer(token)
                    )
                    if allowed(role, f"proxy:{service}", method):
                        assert response.status_code == 200, (role, service, method, response.text)
                        assert len(receiver.requests) == before + 1
                    else:
                        assert (response.status_code, response.json()["message"]) == (
                            403,
                            "Insufficient permissions",
                        ), (role, service, method)
                        assert len(receiver.requests) == before
                    checked += 1
        assert checked == 4 * (len(ROUTES) + 12)


async def test_customer_and_seller_tokens_refused_everywhere(make_stack):
    async with make_stack(services=("customer", "sellers")) as s:
        customer = s.apps["customer"]
        sellers = s.apps["sellers"]
        import httpx

        from tests.customer.conftest import person
        from tests.sellers.conftest import seller_body

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=customer), base_url="http://c") as c:
            registered = await c.post("/api/v1/customers/register", json=person())
            customer_token = registered.json()["data"]["token"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sellers), base_url="http://s") as c:
            signed = await c.post("/api/v1/sellers/signup", json=seller_body())
            seller_token = signed.json()["data"]["token"]
        routes = [(m, p.replace("{id}", "0" * 24)) for m, p, _ in ROUTES] + [
            ("GET", f"/proxy/{service}/api/v1/x") for service in SERVICES
        ] + [("POST", "/proxy/customer/api/v1/x")]  # fmt: skip
        for token in (customer_token, seller_token):
            for method, path in routes:
                response = await s.client.request(method, f"{API}{path}", json={}, headers=bearer(token))
                assert (response.status_code, response.json()["message"]) == (403, "Admin access required"), path
        assert sum(len(t.seen) for t in s.transports.values()) == 0
        assert await s.app.state.admins.repo.audit.count({}) == 0
