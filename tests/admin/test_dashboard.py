"""Dashboard figures and service health (checklist 16–19)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from shared.testing import Receiver, running
from tests.admin.conftest import API, DEAD, OrdersStub, bearer
from tests.customer.conftest import person
from tests.sellers.conftest import seller_body

ALL = ("customer", "sellers", "products", "notifications")


@asynccontextmanager
async def hanging_server() -> AsyncIterator[str]:
    """A real server that accepts connections and never answers (closed at once on exit)."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(65536)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.close()


async def _seed(stack) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.apps["customer"]), base_url="http://c") as c:
        for n in range(3):
            assert (await c.post("/api/v1/customers/register", json=person(n))).status_code == 201
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.apps["sellers"]), base_url="http://s") as c:
        assert (await c.post("/api/v1/sellers/signup", json=seller_body(1))).status_code == 201


async def test_dashboard_with_all_services_up(make_stack):
    # checklist 16
    async with make_stack(services=("customer", "sellers", "products"), orders=True) as s:
        await _seed(s)
        root = await s.token()
        response = await s.client.get(f"{API}/dashboard/stats", headers=bearer(root))
        assert response.status_code == 200
        data = response.json()["data"]
        overview = data["overview"]
        assert overview["customers"] == {"total": 3, "active": 3, "verified": 0}
        assert overview["sellers"] == {"total": 1, "active": 1, "verified": 0}
        assert overview["products"] == {"total": 0, "active": 0, "outOfStock": 0, "lowStock": 0}
        assert overview["orders"] == OrdersStub.STATS
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["lastUpdated"])
        # the stats calls carried the service key
        for name in ("customer", "sellers", "products"):
            method, path, headers = s.transports[name].seen[-1]
            assert method == "GET" and path.endswith("/stats") and headers["x-service-key"] == "test-service-key"
        # nothing is written by the dashboard
        assert await s.app.state.admins.repo.audit.count({}) == 0


async def test_dashboard_with_orders_stopped(make_stack):
    # checklist 17
    async with make_stack(services=("customer", "sellers", "products")) as s:
        await _seed(s)
        root = await s.token()
        response = await s.client.get(f"{API}/dashboard/stats", headers=bearer(root))
        assert response.status_code == 200
        overview = response.json()["data"]["overview"]
        assert overview["orders"] == {"total": 0, "revenue": 0, "byStatus": {}, "error": "Service unavailable"}
        assert overview["customers"]["total"] == 3 and "error" not in overview["customers"]
        assert "error" not in overview["products"] and "error" not in overview["sellers"]


class Nested(Receiver):
    """Answers stats nested under ``data.stats`` with ``totalRevenue`` and missing numbers."""

    async def respond(self, method: str, path: str, body: object) -> tuple[int, object]:
        if "orders" in path:
            return 200, {"success": True, "data": {"stats": {"total": 2, "totalRevenue": 10.5}}}
        if "products" in path:
            return 200, {"success": False, "message": "broken"}
        return 500, {"success": False}


async def test_dashboard_reads_nested_figures_and_failed_answers(make_stack):
    async with Nested(status=200) as stub:
        urls = {"orders": stub.url, "products": stub.url, "customer": stub.url}
        async with make_stack(urls=urls, services=("sellers",)) as s:
            root = await s.token()
            overview = (await s.client.get(f"{API}/dashboard/stats", headers=bearer(root))).json()["data"]["overview"]
            assert overview["orders"] == {"total": 2, "revenue": 10.5, "byStatus": {}}
            assert overview["products"]["error"] == "Service unavailable"
            assert overview["customers"] == {"total": 0, "active": 0, "verified": 0, "error": "Service unavailable"}


async def test_dashboard_answers_in_time_when_every_service_hangs(make_stack):
    # checklist 18: each stats call is bounded by STATS_TIMEOUT_MS (5000 by default, so the
    # answer comes within ~5 s); here 1000 ms, and four hanging services still take ~1 s, not 4:
    # the calls run concurrently
    assert settings_for_defaults().STATS_TIMEOUT_MS == 5000
    async with hanging_server() as url:
        urls = {name: url for name in ("customer", "sellers", "products", "orders")}
        async with make_stack(urls=urls, STATS_TIMEOUT_MS=1000) as s:
            root = await s.token()
            started = time.perf_counter()
            response = await s.client.get(f"{API}/dashboard/stats", headers=bearer(root))
            elapsed = time.perf_counter() - started
            assert response.status_code == 200
            assert 1.0 <= elapsed < 2.5
            overview = response.json()["data"]["overview"]
            assert all(block["error"] == "Service unavailable" for block in overview.values())
            assert overview["products"] == {
                "total": 0,
                "active": 0,
                "outOfStock": 0,
                "lowStock": 0,
                "error": "Service unavailable",
            }


def settings_for_defaults():
    from admin.settings import AdminSettings

    return AdminSettings(_env_file=None)


async def test_services_health_with_media_stopped(make_stack, tmp_path):
    # checklist 19: the real gateway and four real services in-process, orders as a real server
    gateway = create_gateway(GatewaySettings(_env_file=None, ENV="test", LOG_LEVEL="warning"))
    async with running(gateway), hanging_server() as hang:
        async with make_stack(
            services=ALL,
            orders=True,
            apps={"gateway": gateway},
            MEDIA_SERVICE_URL=DEAD,
            HEALTH_TIMEOUT_MS=300,
        ) as s:
            root = await s.token()
            response = await s.client.get(f"{API}/services/health", headers=bearer(root))
            assert response.status_code == 200
            services = response.json()["data"]["services"]
            assert list(services) == ["customer", "sellers", "media", "products", "orders", "notifications", "gateway"]
            assert services["media"] == {"status": "unhealthy", "error": "Connection refused", "url": DEAD}
            for name in ("customer", "sellers", "products", "orders", "notifications", "gateway"):
                entry = services[name]
                assert entry["status"] == "healthy", (name, entry)
                assert re.fullmatch(r"\d+ms", entry["responseTime"])
                assert entry["response"]["status"] == "healthy"
            assert services["gateway"]["response"]["service"] == "api-gateway"

            # a hanging service and one answering 503 are unhealthy too, with their reasons
            s.app.state.settings.SELLERS_SERVICE_URL = hang
            s.app.state.settings.ORDERS_SERVICE_URL = DEAD
            await s.app.state.clients.aclose()
            s.app.state.clients._transports.pop("sellers")
            s.app.state.clients._transports.pop("notifications")
            async with Receiver(status=503) as broken:
                s.app.state.settings.NOTIFICATIONS_SERVICE_URL = broken.url
                services = (await s.client.get(f"{API}/services/health", headers=bearer(root))).json()["data"][
                    "services"
                ]
            assert services["sellers"] == {"status": "unhealthy", "error": "Timeout after 300ms", "url": hang}
            assert services["notifications"] == {"status": "unhealthy", "error": "HTTP 503", "url": broken.url}
            assert services["orders"]["error"] == "Connection refused"


async def test_moderator_reads_dashboard_and_health(make_stack):
    async with make_stack() as s:
        root = await s.token()
        _, moderator = await s.make_admin(root, 1, role="moderator")
        _, blind = await s.make_admin(root, 2, role="admin", permissions=["manage_orders"])
        assert (await s.client.get(f"{API}/dashboard/stats", headers=bearer(moderator))).status_code == 200
        assert (await s.client.get(f"{API}/services/health", headers=bearer(moderator))).status_code == 200
        refused = await s.client.get(f"{API}/dashboard/stats", headers=bearer(blind))
        assert (refused.status_code, refused.json()["message"]) == (403, "Insufficient permissions")
