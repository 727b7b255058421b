"""``/docs`` and the merged OpenAPI document (contract §4.5; checklist 17), built from real
FastAPI upstream apps served by uvicorn on free ports."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from gateway.openapi import merge, rebase
from shared.testing import uvicorn_served
from tests.gateway.conftest import dead_url

SERVICE_KEY = "gateway-own-key"


class Profile(BaseModel):
    name: str


class Address(BaseModel):
    city: str
    owner: Profile


def customer_app() -> FastAPI:
    app = FastAPI(title="customer-service")
    bearer = HTTPBearer()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.post("/api/v1/customers/login", operation_id="login")
    async def login(profile: Profile) -> Profile:
        return profile

    @app.get("/api/v1/customers/addresses", dependencies=[])
    async def addresses(token: str = Header(None)) -> list[Address]:
        return []

    @app.get("/api/v1/customers/me")
    async def me(credentials=Depends(bearer)) -> Profile:
        return Profile(name="x")

    return app


def notifications_app() -> FastAPI:
    """Like the real notifications service: its OpenAPI document needs the service key."""
    app = FastAPI(title="notifications-service", openapi_url=None)

    @app.post("/api/v1/send")
    async def send() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/openapi.json")
    async def document(x_service_key: str | None = Header(None)) -> dict:
        if x_service_key != SERVICE_KEY:
            raise HTTPException(401)
        return app.openapi()

    app.openapi_schema = None
    return app


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    async with uvicorn_served(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
async def services() -> AsyncIterator[dict[str, str]]:
    async with serve(customer_app()) as customer, serve(notifications_app()) as notifications:
        yield {"customer": customer, "notifications": notifications}


async def test_docs_page_and_merged_document(start_gateway, services):
    gw = await start_gateway(
        CUSTOMER_SERVICE_URL=services["customer"],
        NOTIFICATIONS_SERVICE_URL=services["notifications"],
        SERVICE_KEY=f"{SERVICE_KEY},older-key",
        MEDIA_SERVICE_URL=dead_url(),
    )
    async with gw.client() as client:
        page = await client.get("/docs")
        response = await client.get("/docs/openapi.json")
        alias = await client.get("/openapi.json")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/docs/openapi.json" in page.text
    csp = page.headers["content-security-policy"]
    assert "https:" not in csp and "'sha256-" in csp and "upgrade-insecure-requests" not in csp
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "cdn.jsdelivr" not in page.text

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert alias.json()["paths"].keys() == doc["paths"].keys()
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    assert "/api/customer/customers/login" in paths
    assert "/api/notifications/send" in paths
    assert not any(p.startswith("/api/v1") for p in paths)
    assert "/health" in paths  # the gateway's own, tagged gateway
    assert paths["/health"]["get"]["tags"] == ["gateway"]
    login = paths["/api/customer/customers/login"]["post"]
    assert login["tags"] == ["customer"]
    assert login["operationId"] == "customer__login"
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/customer__Profile"
    schemas = doc["components"]["schemas"]
    assert "customer__Profile" in schemas and "customer__Address" in schemas
    assert schemas["customer__Address"]["properties"]["owner"]["$ref"] == "#/components/schemas/customer__Profile"
    me = paths["/api/customer/customers/me"]["get"]
    assert me["security"] == [{"customer__HTTPBearer": []}]
    assert "customer__HTTPBearer" in doc["components"]["securitySchemes"]

    x_services = doc["x-services"]
    assert x_services["customer"] == {"status": "ok", "openapi": services["customer"] + "/openapi.json"}
    assert x_services["notifications"]["status"] == "ok"
    assert x_services["media"]["status"] == "unavailable"
    assert x_services["media"]["error"] == "Connection refused"
    assert list(x_services) == ["customer", "sellers", "media", "products", "orders", "admin", "notifications"]


async def test_merged_document_is_cached(start_gateway, services):
    gw = await start_gateway(CUSTOMER_SERVICE_URL=services["customer"])
    async with gw.client() as client:
        first = (await client.get("/docs/openapi.json")).json()
        gw.app.state.gateway.upstreams["customer"].base_url = dead_url()
        second = (await client.get("/docs/openapi.json")).json()
    assert second == first


def test_rebase_drops_non_api_paths_and_renames_everything():
    doc = {
        "security": [{"Key": []}],
        "paths": {
            "/api/v1": {"get": {"operationId": "root", "responses": {}}},
            "/api/v1/x/{id}": {
                "parameters": [{"$ref": "#/components/parameters/Id"}],
                "put": {"operationId": "put_x", "responses": {"200": {"$ref": "#/components/responses/Ok"}}},
            },
            "/metrics": {"get": {"operationId": "metrics"}},
            "/api/v10/y": {"get": {}},
        },
        "components": {
            "parameters": {"Id": {"name": "id", "in": "path"}},
            "responses": {"Ok": {"description": "ok"}},
            "securitySchemes": {"Key": {"type": "apiKey", "in": "header", "name": "X-Service-Key"}},
        },
    }
    paths, components = rebase(doc, "orders", "/api/orders")
    assert set(paths) == {"/api/orders", "/api/orders/x/{id}"}
    item = paths["/api/orders/x/{id}"]
    assert item["parameters"] == [{"$ref": "#/components/parameters/orders__Id"}]
    assert item["put"]["responses"]["200"] == {"$ref": "#/components/responses/orders__Ok"}
    assert item["put"]["security"] == [{"orders__Key": []}]
    assert paths["/api/orders"]["get"]["operationId"] == "orders__root"
    assert set(components["securitySchemes"]) == {"orders__Key"}
    merged = merge({"paths": {}}, [("orders", "/api/orders", "u", doc, None)])
    assert merged["x-services"] == {"orders": {"status": "ok", "openapi": "u"}}


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items() if m in methods]


async def test_own_endpoints_document_their_answers_and_no_422(start_gateway, services):
    gw = await start_gateway(CUSTOMER_SERVICE_URL=services["customer"])
    async with gw.client() as client:
        doc = (await client.get("/docs/openapi.json")).json()
    own = [(m, p, op) for m, p, op in _operations(doc) if op["tags"] == ["gateway"]]
    assert {p for _, p, _ in own} == {
        "/health",
        "/api/status",
        "/api/docs",
        "/docs",
        "/docs/openapi.json",
        "/metrics",
        "/media/{media_id}",
        "/thumb/{media_id}",
    }
    for method, path, operation in own:
        success = operation["responses"]["200"]
        content = success["content"]
        assert content, (method, path)
        for media in content.values():
            assert media.get("schema"), (method, path)
        if path != "/health":  # the one route the rate limiter never counts
            assert operation["responses"]["429"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorEnvelope"
            }
        assert "429" not in operation["responses"] or path != "/health"
    schemas = doc["components"]["schemas"]
    assert paths_ref(doc, "/health") == "#/components/schemas/HealthPublic"
    assert set(schemas["StatusPublic"]["properties"]) == {"success", "gateway", "timestamp", "services"}
    assert paths_ref(doc, "/api/docs") == "#/components/schemas/DocsDirectory"
    media_404 = doc["paths"]["/media/{media_id}"]["get"]["responses"]["404"]
    assert media_404["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/MediaError"}
    # no 422 anywhere: not on the gateway's routes, not on a service's (the customer stand-in's
    # FastAPI document has them), and no validation-error schema left behind
    assert not any("422" in op["responses"] for _, _, op in _operations(doc))
    assert not any(name.endswith("ValidationError") for name in schemas)


def paths_ref(doc: dict, path: str) -> str:
    return doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]


async def test_status_page_is_served_by_the_gateway(start_gateway):
    gw = await start_gateway()
    async with gw.client() as client:
        page = await client.get("/status")
        script = await client.get("/status.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/status.js"></script>' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and "/api/status" in script.text
