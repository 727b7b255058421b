"""An administrator's first steps through the gateway, against the real processes: login,
dashboard, service health, the audited proxy to the customer service."""

from __future__ import annotations

import httpx

from tests.system.conftest import Stack

ADMIN = {"email": "admin@example.com", "password": "admin123"}


async def test_admin_logs_in_and_reaches_the_services_through_the_gateway(stack: Stack):
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30) as gw:
        login = await gw.post("/api/admin/login", json=ADMIN)
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['data']['token']}"}

        shopper = {"firstName": "Ada", "lastName": "Admin", "email": "ada@example.com", "password": "secret123"}
        assert (await gw.post("/api/customer/customers/register", json=shopper)).status_code == 201

        stats = await gw.get("/api/admin/dashboard/stats", headers=auth)
        assert stats.status_code == 200
        overview = stats.json()["data"]["overview"]
        assert overview["customers"]["total"] >= 1 and "error" not in overview["customers"]
        assert overview["orders"]["error"] == "Service unavailable"  # orders is not running here

        health = (await gw.get("/api/admin/services/health", headers=auth)).json()["data"]["services"]
        for name in ("customer", "sellers", "media", "products", "notifications", "gateway"):
            assert health[name]["status"] == "healthy", (name, health[name])
        assert health["orders"]["status"] == "unhealthy"

        listed = await gw.get("/api/admin/proxy/customer/api/v1/customers/admin?search=ada", headers=auth)
        assert listed.status_code == 200, listed.text
        [customer] = listed.json()["data"]["customers"]
        status = await gw.patch(
            f"/api/admin/proxy/customer/api/v1/customers/admin/{customer['id']}/status",
            json={"isActive": False},
            headers=auth,
        )
        assert status.status_code == 200, status.text
        audit = (await gw.get("/api/admin/audit?service=customer", headers=auth)).json()["data"]["entries"]
        assert [(e["method"], e["status"]) for e in audit] == [("PATCH", 200)]
        assert audit[0]["ip"] == "127.0.0.1"  # the client as the gateway resolved it

        # hostile forms are refused before anything is forwarded (by the gateway or the admin service)
        for path in ("api/v1/%2e%2e/health", "api/v1/a%2Fb", "health", "api/v1/x@evil.com/"):
            answer = await gw.get(f"/api/admin/proxy/customer/{path}", headers=auth)
            assert answer.status_code == 400, (path, answer.text)
