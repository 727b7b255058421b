"""Routing, path rewriting, forwarded headers, gateway-owned endpoints and path hygiene
(contract §3, §4.1, §4.2, §4.4, §4.7; checklist 1–8, 16, 23, 24, 36, 37)."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from gateway.settings import SERVICES
from tests.gateway.conftest import raw_request

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


async def test_health(start_gateway):
    gw = await start_gateway()
    async with gw.client() as client:
        response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["service"] == "api-gateway"
    assert body["status"] == "healthy"
    assert body["version"] == "1.0.0"
    assert body["services"] == ["customer", "sellers", "media", "products", "orders", "admin", "notifications"]
    assert isinstance(body["uptime"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])


async def test_path_and_query_reach_the_service_unchanged(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        response = await client.get("/api/customer/customers/profile?x=1&y=%20")
    assert response.status_code == 200
    assert up.last.method == "GET"
    assert up.last.raw_path == "/api/v1/customers/profile?x=1&y=%20"


@pytest.mark.parametrize("service", SERVICES)
async def test_every_prefix_is_rewritten(start_gateway, upstream, service):
    up = await upstream()
    gw = await start_gateway(**{f"{service.upper()}_SERVICE_URL": up.url})
    async with gw.client() as client:
        response = await client.delete(f"/api/{service}/cart/clear")
        bare = await client.get(f"/api/{service}?sellerId=5")
    assert response.status_code == 200 and bare.status_code == 200
    assert response.headers["x-service-name"] == service
    assert [(r.method, r.raw_path) for r in up.requests] == [
        ("DELETE", "/api/v1/cart/clear"),
        ("GET", "/api/v1?sellerId=5"),
    ]


def test_singular_service_url_spellings_are_read_when_the_plural_is_unset(monkeypatch):
    from gateway.settings import GatewaySettings

    for name in SERVICES:
        monkeypatch.delenv(f"{name.upper()}_SERVICE_URL", raising=False)
    monkeypatch.setenv("PRODUCT_SERVICE_URL", "http://product:1")
    monkeypatch.setenv("SELLER_SERVICE_URL", "http://seller:1")
    monkeypatch.setenv("ORDER_SERVICE_URL", "http://order:1")
    monkeypatch.setenv("NOTIFICATION_SERVICE_URL", "http://notification:1")
    settings = GatewaySettings()
    assert settings.PRODUCTS_SERVICE_URL == "http://product:1"
    assert settings.SELLERS_SERVICE_URL == "http://seller:1"
    assert settings.ORDERS_SERVICE_URL == "http://order:1"
    assert settings.NOTIFICATIONS_SERVICE_URL == "http://notification:1"
    monkeypatch.setenv("PRODUCTS_SERVICE_URL", "http://products:2")
    assert GatewaySettings().PRODUCTS_SERVICE_URL == "http://products:2"


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE", "POST", "OPTIONS"])
async def test_methods_and_bodies_are_forwarded_unchanged(start_gateway, upstream, method):
    up = await upstream()
    gw = await start_gateway(ORDERS_SERVICE_URL=up.url)
    payload = b'{"status":"shipped","note":"\\u00e9"}'
    async with gw.client() as client:
        response = await client.request(
            method, "/api/orders/orders/42", content=payload, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 200
    assert up.last.method == method
    assert up.last.body == payload
    assert up.last.headers["content-type"] == "application/json"


async def test_head_is_forwarded_and_answers_without_a_body(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(PRODUCTS_SERVICE_URL=up.url)
    async with gw.client() as client:
        response = await client.head("/api/products/products")
    assert response.status_code == 200
    assert response.content == b""
    assert up.last.method == "HEAD"


async def test_proxied_answer_keeps_status_and_body_and_gains_gateway_headers(start_gateway, upstream):
    async def created(request: web.Request) -> web.Response:
        return web.json_response({"success": True, "data": {"id": 7}}, status=201, headers={"X-Custom": "kept"})

    up = await upstream(created)
    gw = await start_gateway(SELLERS_SERVICE_URL=up.url)
    async with gw.client() as client:
        response = await client.post("/api/sellers/sellers/signup", json={"email": "a@b.c"})
    assert response.status_code == 201
    assert response.json() == {"success": True, "data": {"id": 7}}
    assert response.headers["x-gateway"] == "api-gateway"
    assert response.headers["x-service-name"] == "sellers"
    assert response.headers["x-custom"] == "kept"
    assert UUID_RE.match(response.headers["x-request-id"])


async def test_request_id_is_kept_when_valid_and_replaced_when_not(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        kept = await client.get("/api/customer/x", headers={"X-Request-ID": "abc-123"})
        assert up.last.headers["x-request-id"] == "abc-123"
        too_long = await client.get("/api/customer/x", headers={"X-Request-ID": "a" * 200})
        forwarded_fresh = up.last.headers["x-request-id"]
        bad_chars = await client.get("/api/customer/x", headers={"X-Request-ID": "a b<script>"})
        own_route = await client.get("/health", headers={"X-Request-ID": "health-1"})
    assert kept.headers["x-request-id"] == "abc-123"
    assert UUID_RE.match(too_long.headers["x-request-id"])
    assert forwarded_fresh == too_long.headers["x-request-id"]
    assert UUID_RE.match(bad_chars.headers["x-request-id"])
    assert own_route.headers["x-request-id"] == "health-1"


async def test_forwarded_headers_from_an_untrusted_client(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        await client.get(
            "/api/customer/customers/profile",
            headers={
                "X-Forwarded-For": "6.6.6.6",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "evil.example",
                "X-Real-IP": "6.6.6.6",
                "Connection": "keep-alive, X-Secret-Hop",
                "X-Secret-Hop": "must-not-pass",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Authorization": "Bearer t0ken",
                "Cookie": "a=1",
            },
        )
    seen = up.last.headers
    host = gw.url.removeprefix("http://")
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == host
    assert seen["x-real-ip"] == "127.0.0.1"
    assert seen["host"] == up.url.removeprefix("http://")
    assert seen["authorization"] == "Bearer t0ken"
    assert seen["cookie"] == "a=1"
    for hop in ("keep-alive", "te", "x-secret-hop", "upgrade", "proxy-authorization"):
        assert hop not in seen
    assert seen.get("connection", "keep-alive").lower() == "keep-alive"  # the gateway's own hop, if any


async def test_client_accept_encoding_is_not_invented(start_gateway, upstream):
    """A client that accepts no compression must not be sent a body it cannot decode."""
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    status, _, _ = await raw_request(gw.url, b"GET /api/customer/x HTTP/1.1\r\nHost: gw\r\n\r\n")
    assert status == 200
    for name in ("accept", "accept-encoding", "user-agent", "content-type"):  # aiohttp's own
        assert name not in up.last.headers
    post = b"POST /api/customer/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\nhi"
    status, _, _ = await raw_request(gw.url, post)  # a body without a type gets none invented
    assert status == 200 and up.last.body == b"hi"
    for name in ("accept", "accept-encoding", "user-agent", "content-type"):
        assert name not in up.last.headers


async def test_service_key_is_stripped(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        await client.get("/api/customer/service/customers/bulk", headers={"X-Service-Key": "k"})
    assert "x-service-key" not in up.last.headers


async def test_service_key_is_forwarded_when_configured(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, GATEWAY_FORWARD_SERVICE_KEY=True)
    async with gw.client() as client:
        await client.get("/api/customer/service/customers/bulk", headers={"X-Service-Key": "k"})
    assert up.last.headers["x-service-key"] == "k"


async def test_api_docs_document(start_gateway):
    gw = await start_gateway(CUSTOMER_SERVICE_URL="http://127.0.0.1:3901/", PORT=8123)
    async with gw.client() as client:
        response = await client.get("/api/docs")
    assert response.status_code == 200
    urls = {name: getattr(gw.settings, f"{name.upper()}_SERVICE_URL").rstrip("/") for name in SERVICES}
    assert response.json() == {
        "success": True,
        "message": "API Gateway Documentation",
        "gateway": {
            "version": "1.0.0",
            "port": 8123,
            "endpoints": {"health": "GET /health", "status": "GET /api/status", "docs": "GET /api/docs"},
        },
        "services": {
            "customer": {
                "prefix": "/api/customer",
                "target": "http://127.0.0.1:3901",
                "description": "Customer management, authentication, and profiles",
            },
            "sellers": {
                "prefix": "/api/sellers",
                "target": urls["sellers"],
                "description": "Seller management, authentication, and business profiles",
            },
            "media": {
                "prefix": "/api/media",
                "target": urls["media"],
                "description": "File upload, media management, and storage",
            },
            "products": {
                "prefix": "/api/products",
                "target": urls["products"],
                "description": "Product catalog, inventory, and management",
            },
            "orders": {
                "prefix": "/api/orders",
                "target": urls["orders"],
                "description": "Order processing, cart management, and inventory",
            },
            "admin": {
                "prefix": "/api/admin",
                "target": urls["admin"],
                "description": "Admin dashboard, statistics, and service monitoring",
            },
            "notifications": {
                "prefix": "/api/notifications",
                "target": urls["notifications"],
                "description": "Email notifications, templates, and messaging",
            },
        },
        "examples": {
            "customer_signup": "POST /api/customer/customers/signup",
            "seller_signin": "POST /api/sellers/sellers/signin",
            "upload_media": "POST /api/media/media/upload",
            "list_products": "GET /api/products/products",
            "place_order": "POST /api/orders/orders/place",
            "dashboard_stats": "GET /api/admin/dashboard/stats",
            "send_email": "POST /api/notifications/send",
        },
    }


@pytest.mark.parametrize(
    "path", ["/api/unknown/x", "/nothing", "/api/customers/x", "/API/customer/x", "/api", "/api/", "/media"]
)
async def test_unknown_routes_answer_the_404_envelope(start_gateway, upstream, path):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        response = await client.post(path) if path == "/nothing" else await client.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["success"] is False
    assert body["message"] == "Route not found"
    assert body["availableServices"] == [f"/api/{name}" for name in SERVICES]
    assert body["documentation"] == "/api/docs"
    assert "timestamp" in body
    assert up.requests == []


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("POST", "/health", "GET"), ("DELETE", "/api/docs", "GET"), ("PUT", "/api/status", "GET")],
)
async def test_wrong_method_on_gateway_routes_answers_405(start_gateway, method, path, allow):
    gw = await start_gateway()
    async with gw.client() as client:
        response = await client.request(method, path)
    assert response.status_code == 405
    assert response.json() == {"success": False, "message": "Method not allowed"}
    assert allow in response.headers["allow"]


async def test_internal_error_answers_500_envelope_without_trace(start_gateway, monkeypatch):
    gw = await start_gateway()

    def broken() -> str:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("gateway.api.now_iso", broken)
    async with gw.client() as client:
        response = await client.get("/health", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False
    assert body["message"] == "Internal Gateway Error"
    assert body["requestId"] == "boom-1"
    assert "timestamp" in body
    assert "secret" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize(
    "target",
    [
        b"/api/customer/../admin/login",
        b"/api/customer/a%2F..%2Fb",
        b"/api/customer/a%2f..%2fb",
        b"/api/customer/%2e%2e/admin",
        b"/api/customer/x/%2E",
        b"/api/customer/a%5cb",
        b"/api/customer/a%00b",
        b"/api/customer//x",
        b"/api/customer/x/..",
    ],
)
async def test_path_tricks_are_refused(start_gateway, upstream, target):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, ADMIN_SERVICE_URL=up.url)
    status, headers, body = await raw_request(gw.url, b"GET " + target + b" HTTP/1.1\r\nHost: gw\r\n\r\n")
    assert status == 400
    assert body == b'{"success":false,"message":"Invalid path"}'
    assert headers["x-service-name"] == "customer"
    assert up.requests == [] and up.connections == 0


async def test_dots_inside_names_and_in_the_query_are_fine(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    status, _, _ = await raw_request(
        gw.url, b"GET /api/customer/files/v1.2..3/a.b?next=../x&p=%2F HTTP/1.1\r\nHost: gw\r\n\r\n"
    )
    assert status == 200
    assert up.last.raw_path == "/api/v1/files/v1.2..3/a.b?next=../x&p=%2F"


async def test_absolute_form_request_target_goes_to_the_configured_service(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    status, _, _ = await raw_request(
        gw.url, b"GET http://evil.example/api/customer/x HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    )
    assert status == 200
    assert up.last.raw_path == "/api/v1/x"


async def test_header_flood_answers_431(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    status, _, body = await raw_request(gw.url, b"GET /api/customer/x HTTP/1.1\r\nHost: gw\r\n" + many + b"\r\n")
    assert status == 431
    assert body == b'{"success":false,"message":"Request header fields too large"}'
    huge = b"X-Big: " + b"a" * 20_000 + b"\r\n"
    status, _, _ = await raw_request(gw.url, b"GET /api/customer/x HTTP/1.1\r\nHost: gw\r\n" + huge + b"\r\n")
    assert status == 431
    assert up.requests == []


async def test_redirects_are_passed_with_location_rewritten(start_gateway, upstream):
    holder: dict[str, str] = {}

    async def redirect(request: web.Request) -> web.Response:
        if request.path.endswith("/other"):
            raise web.HTTPFound("https://elsewhere.example/x")
        raise web.HTTPFound(holder["url"] + "/api/v1/products")

    up = await upstream(redirect)
    holder["url"] = up.url
    gw = await start_gateway(PRODUCTS_SERVICE_URL=up.url)
    async with gw.client(follow_redirects=False) as client:
        response = await client.get("/api/products/old")
        other = await client.get("/api/products/other")
    assert response.status_code == 302
    assert response.headers["location"] == "/api/products/products"
    assert other.headers["location"] == "https://elsewhere.example/x"
    assert len(up.requests) == 2  # never followed by the gateway


async def test_set_cookie_of_one_client_is_never_sent_for_another(start_gateway, upstream):
    async def login(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.set_cookie("session", "alice-secret")
        return response

    up = await upstream(login)
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as alice:
        first = await alice.post("/api/customer/login")
    assert "alice-secret" in first.headers["set-cookie"]
    status, _, _ = await raw_request(gw.url, b"GET /api/customer/me HTTP/1.1\r\nHost: gw\r\n\r\n")
    assert status == 200
    assert "cookie" not in up.last.headers


async def test_invalid_content_length_is_refused(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    status, _, _ = await raw_request(
        gw.url, b"POST /api/customer/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 12abc\r\n\r\n", read_timeout=5
    )
    assert status == 400
    assert up.requests == []
