"""The merged document built from the REAL services (issue 10 item 3; contract §4.5).

Each service's own ``create_app`` runs on a uvicorn server on a free loopback port, with its
store in a temporary folder; the gateway fetches every ``<base>/openapi.json`` (with its own
service key) and must list every operation of every running service under its public
prefix. orders and admin join when their packages exist; until then they are reported
unavailable, and the document is still whole for the others.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import SERVICES
from shared.testing import uvicorn_served
from tests.gateway.conftest import dead_url, free_port

KEY = "docs-test-service-key"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _settings(name: str, data: Path, ports: dict[str, int]) -> Any:
    """The service's own settings class, pointed at a temporary store and at its peers."""
    module = importlib.import_module(f"{name}.settings")
    cls = next(
        value
        for attr, value in vars(module).items()
        if attr.endswith("Settings") and isinstance(value, type) and value.__module__ == module.__name__
    )
    values: dict[str, Any] = {
        "ENV": "test",
        "DATA_DIR": str(data / name),
        "SERVICE_KEY": KEY,
        "LOG_LEVEL": "warning",
        "BCRYPT_ROUNDS": 4,
        "OUTBOX_POLL_SECONDS": 3600,
        **{f"{peer.upper()}_SERVICE_URL": f"http://127.0.0.1:{port}" for peer, port in ports.items()},
    }
    if name == "media":
        values.update(MEDIA_ROOT=str(data / "media" / "files"), MEDIA_CLEANUP_INTERVAL_SECONDS=0)
    if name == "notifications":
        values.update(SMTP_LOCAL_HOSTNAME="tests.local")
    return cls(_env_file=None, **values)


def built_services() -> list[str]:
    """The routed services whose package exists in this tree (orders and admin come later)."""
    return [name for name in SERVICES if importlib.util.find_spec(name) is not None]


@pytest.fixture
async def real_services(tmp_path) -> AsyncIterator[dict[str, tuple[str, Any]]]:
    """``{name: (base url, app)}`` for every built service, each a running server."""
    names = built_services()
    ports = {name: free_port() for name in names}
    apps = {}
    for name in names:
        create_app = importlib.import_module(f"{name}.app").create_app
        apps[name] = create_app(_settings(name, tmp_path, ports))
    async with contextlib.AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(
                uvicorn_served(apps[name], port=ports[name], lifespan="on", access_log=False)
            )
        yield {name: (f"http://127.0.0.1:{ports[name]}", apps[name]) for name in names}


def _public_operations(app: Any, name: str) -> set[tuple[str, str]]:
    """``(method, gateway path)`` of every ``/api/v1`` operation the service documents itself."""
    out = set()
    for path, item in app.openapi()["paths"].items():
        if path == "/api/v1" or path.startswith("/api/v1/"):
            out.update((method, f"/api/{name}{path[len('/api/v1') :]}") for method in item if method in METHODS)
    return out


async def test_merged_document_holds_every_real_service(start_gateway, real_services):
    urls = {f"{name.upper()}_SERVICE_URL": url for name, (url, _) in real_services.items()}
    gw = await start_gateway(SERVICE_KEY=KEY, HEALTH_TIMEOUT_MS=10_000, **urls)
    async with gw.client() as client:
        response = await client.get("/docs/openapi.json")
        status = (await client.get("/api/status")).json()["services"]
    assert response.status_code == 200
    doc = response.json()
    x_services = doc["x-services"]
    assert list(x_services) == list(SERVICES)
    operations = {(m, p) for p, item in doc["paths"].items() for m in item if m in METHODS}
    for name, (url, app) in real_services.items():
        assert x_services[name] == {"status": "ok", "openapi": f"{url}/openapi.json"}, name
        expected = _public_operations(app, name)
        assert expected, f"{name} documents no /api/v1 operation"
        missing = expected - operations
        assert not missing, f"{name}: {sorted(missing)[:5]}"
        for method, path in expected:
            operation = doc["paths"][path][method]
            assert operation["tags"] == [name]
            assert operation.get("operationId", f"{name}__").startswith(f"{name}__")
        assert status[name]["status"] == "healthy", name
    for name in set(SERVICES) - set(real_services):
        assert x_services[name]["status"] == "unavailable"
    assert not any(p == "/api/v1" or p.startswith("/api/v1/") for p in doc["paths"])
    # every reference points at a component that exists
    refs = _refs(doc)
    components = doc.get("components", {})
    dangling = [ref for ref in refs if ref.split("/")[3] not in components.get(ref.split("/")[2], {})]
    assert not dangling, dangling[:5]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found.extend(_refs(value))
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


async def test_orders_and_admin_are_merged_like_the_others(start_gateway, upstream):
    """orders (:3005) and admin (:3006) are routed, probed and documented like any service."""
    from aiohttp import web

    def document(name: str):
        async def handle(request: web.Request) -> web.Response:
            if request.path == "/openapi.json":
                return web.json_response(
                    {
                        "openapi": "3.1.0",
                        "info": {"title": name, "version": "1"},
                        "paths": {f"/api/v1/{name}-thing": {"get": {"operationId": "thing", "responses": {}}}},
                    }
                )
            return web.json_response({"success": True, "service": f"{name}-service", "status": "healthy"})

        handle.raw = True  # type: ignore[attr-defined]
        return handle

    orders = await upstream(document("orders"))
    admin = await upstream(document("admin"))
    gw = await start_gateway(
        ORDERS_SERVICE_URL=orders.url, ADMIN_SERVICE_URL=admin.url, CUSTOMER_SERVICE_URL=dead_url()
    )
    async with gw.client() as client:
        doc = (await client.get("/docs/openapi.json")).json()
        status = (await client.get("/api/status")).json()["services"]
    assert doc["paths"]["/api/orders/orders-thing"]["get"]["operationId"] == "orders__thing"
    assert doc["paths"]["/api/admin/admin-thing"]["get"]["tags"] == ["admin"]
    assert doc["x-services"]["orders"]["status"] == doc["x-services"]["admin"]["status"] == "ok"
    assert status["orders"]["status"] == status["admin"]["status"] == "healthy"
    assert status["orders"]["url"] == orders.url and status["admin"]["url"] == admin.url
