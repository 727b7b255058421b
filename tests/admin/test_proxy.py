"""The audited, permission-checked proxy against the real services (checklist 25–32), the
path rules against hostile paths, the failure mapping and the audit log."""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from urllib.parse import unquote

import httpx
import pytest

from shared.testing import Receiver
from tests.admin.conftest import API, DEAD, KEY, bearer
from tests.admin.test_dashboard import hanging_server
from tests.customer.conftest import person
from tests.media.media_kit import multipart

INVALID = (400, "Invalid proxy path")


async def raw_call(
    app, method: str, raw_target: bytes, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict]:
    """Call the ASGI app with an exact request target, as uvicorn would hand it over
    (``path`` percent-decoded once, ``raw_path`` untouched): no client normalises it."""
    raw_path, _, query = raw_target.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        + ([(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")] if body else []),
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent = False
    answer: dict = {"status": None, "body": b""}

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], json.loads(answer["body"] or b"null")


HOSTILE = [
    "api/v1/../../health",
    "api/v1/%2e%2e/x",
    "api/v1/%2E%2E/%2e%2e/health",
    "api/v1/..%2f..%2fhealth",
    "api/v1/a%2Fb",
    "api/v1/a%2f..%2fhealth",
    "api/v1%2f..%2f..%2fhealth",
    "api/v1/x@evil.com/",
    "api/v1/%40evil.com",
    "http://evil.com/api/v1/x",
    "/evil.com/api/v1/x",  # i.e. /proxy/customer//evil.com/...
    "api/v1//evil.com",
    "health",
    "metrics",
    "api/v1/%252e%252e/health",
    "api/v1/%255c%255c",
    "api/v1/%25%32%65",
    "api/v1/a\\b",
    "api/v1/a%5cb",
    "api/v1/x%00",
    "api/v1/x%0a",
    "api/v1/x%7f",
    "api/v1/./x",
    "api/v1/%2e/x",
    "api/v1/.%2e/x",
    "api/v1/http:%2f%2fevil.com",
    "api/v1/https:evil.com",
    "api/v1/x%23frag",
    "api/v1/a%3a8080",
    "%61pi/v1/x",
    "API/v1/x",
    "api/v1/x%zz",
    "api/v1/x%",
]


@pytest.fixture
async def receiver():
    async with Receiver(status=200) as r:
        yield r


async def test_hostile_paths_are_refused_and_nothing_is_sent(make_stack, receiver):
    # checklist 27 and the list: every form refused with 400, nothing reaches any service
    async with make_stack(services=("sellers", "products"), urls={"customer": receiver.url}) as s:
        root = await s.token()
        auth = bearer(root)
        assert len(HOSTILE) >= 30
        for service in ("customer", "sellers", "products"):
            for path in HOSTILE:
                for method in ("GET", "POST"):
                    target = f"{API}/proxy/{service}/{path}".encode()
                    status, body = await raw_call(s.app, method, target, headers=auth, body=b"{}" * (method == "POST"))
                    assert (status, body["message"]) == INVALID, (service, method, path, status, body)
        for target in (
            f"{API}/proxy/customer",
            f"{API}/proxy/customer/",
            f"{API}/proxy/cust%6fmer/api/v1/customers/admin",
            f"{API}/proxy/customer/api/v1/x?next=http://evil.com/%2e%2e",  # the query is not the path: allowed
        ):
            status, body = await raw_call(s.app, "GET", target.encode(), headers=auth)
            if "next=" in target:
                assert status == 200
            else:
                assert (status, body["message"]) == INVALID, target
        # nothing arrived anywhere except the one legitimate call with a query
        assert [(m, p) for m, p, _, _ in receiver.requests] == [("GET", "/api/v1/x")]
        assert sum(len(t.seen) for t in s.transports.values()) == 0
        # every refused POST to a known service is in the audit log with its 400
        entries = await s.app.state.admins.repo.audit.find({"method": "POST"})
        assert len(entries) == 3 * len(HOSTILE)
        assert {e["status"] for e in entries} == {400}


async def test_unknown_service(make_stack):
    # checklist 26
    async with make_stack() as s:
        root = await s.token()
        for service in ("billing", "admin", "gateway"):
            for method in ("GET", "POST"):
                response = await s.client.request(method, f"{API}/proxy/{service}/api/v1/x", headers=bearer(root))
                assert (response.status_code, response.json()["message"]) == (404, "Service not found")
        assert await s.app.state.admins.repo.audit.count({}) == 0


async def test_read_reaches_the_real_customer_service_unchanged(make_stack):
    # checklist 25 and 30
    async with make_stack(services=("customer",)) as s:
        customer = httpx.AsyncClient(transport=httpx.ASGITransport(app=s.apps["customer"]), base_url="http://c")
        async with customer:
            for n in range(7):
                await customer.post("/api/v1/customers/register", json=person(n))
            direct = await customer.get("/api/v1/customers/admin?page=2&limit=5", headers={"X-Service-Key": KEY})
        root = await s.token()
        s.transports["customer"].seen.clear()
        response = await s.client.get(
            f"{API}/proxy/customer/api/v1/customers/admin?page=2&limit=5",
            headers={**bearer(root), "X-Service-Key": "wrong", "Cookie": "session=secret", "X-Custom": "kept"},
        )
        assert response.status_code == 200
        assert response.json() == direct.json()
        assert len(response.json()["data"]["customers"]) == 2
        [(method, target, headers)] = s.transports["customer"].seen
        assert (method, target) == ("GET", "/api/v1/customers/admin?page=2&limit=5")
        assert headers["x-service-key"] == KEY
        assert "authorization" not in headers and "cookie" not in headers
        assert headers["x-custom"] == "kept"
        assert headers["x-request-id"] == response.headers["x-request-id"]
        assert await s.app.state.admins.repo.audit.count({}) == 0  # reads are not audited


async def test_write_through_the_proxy_is_audited(make_stack):
    # checklist 29
    async with make_stack(services=("customer",)) as s:
        customer = httpx.AsyncClient(transport=httpx.ASGITransport(app=s.apps["customer"]), base_url="http://c")
        async with customer:
            customer_id = (await customer.post("/api/v1/customers/register", json=person())).json()["data"]["customer"][
                "id"
            ]
        root = await s.token()
        _, admin = await s.make_admin(root, 1, role="admin")
        path = f"/api/v1/customers/admin/{customer_id}/status"
        response = await s.client.patch(
            f"{API}/proxy/customer{path}",
            json={"isActive": False},
            headers={**bearer(admin), "X-Forwarded-For": "203.0.113.9"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["isActive"] is False
        unknown = await s.client.patch(
            f"{API}/proxy/customer/api/v1/customers/admin/{'0' * 24}/status",
            json={"isActive": False},
            headers=bearer(admin),
        )
        assert unknown.status_code == 404 and unknown.json()["success"] is False  # the target's own envelope

        # a CORS preflight is answered by the CORS layer; any other OPTIONS is a proxied, audited call
        preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PATCH"}
        assert (await s.client.options(f"{API}/proxy/customer{path}", headers=preflight)).status_code == 200
        plain = await s.client.options(f"{API}/proxy/customer{path}", headers=bearer(admin))
        assert plain.status_code == 405  # the customer service's own answer

        audit = await s.client.get(f"{API}/audit?service=customer", headers=bearer(root))
        entries = audit.json()["data"]["entries"]
        assert [(e["method"], e["service"], e["status"]) for e in entries] == [
            ("OPTIONS", "customer", 405),
            ("PATCH", "customer", 404),
            ("PATCH", "customer", 200),
        ]
        entry = entries[2]
        assert entry["path"] == path and entry["query"] == ""
        assert entry["adminEmail"] == "admin1@example.com" and entry["ip"] == "203.0.113.9"
        assert entry["at"].endswith("Z") and isinstance(entry["durationMs"], int)
        assert entry["requestId"] == response.headers["x-request-id"]


class OrdersAndSellers(Receiver):
    """Stands in for orders: answers whatever it is asked, setting a cookie it must not leak."""

    async def __aenter__(self):
        await super().__aenter__()
        return self


async def test_moderator_permissions_on_the_proxy(make_stack, receiver):
    # checklist 28, and the sellers bulk lookup refused for a moderator (a POST, audited)
    async with make_stack(urls={"orders": receiver.url}, services=("sellers",)) as s:
        root = await s.token()
        _, moderator = await s.make_admin(root, 1, role="moderator")
        read = await s.client.get(f"{API}/proxy/orders/api/v1/admin/orders?page=1", headers=bearer(moderator))
        assert read.status_code == 200
        assert receiver.requests[-1][:2] == ("GET", "/api/v1/admin/orders")
        write = await s.client.patch(
            f"{API}/proxy/orders/api/v1/orders/{'a' * 24}/status", json={"status": "shipped"}, headers=bearer(moderator)
        )
        assert (write.status_code, write.json()["message"]) == (403, "Insufficient permissions")
        bulk = await s.client.post(
            f"{API}/proxy/sellers/api/v1/sellers/service/bulk", json={"sellerIds": []}, headers=bearer(moderator)
        )
        assert bulk.status_code == 403
        assert len(receiver.requests) == 1 and s.transports["sellers"].seen == []
        entries = (await s.client.get(f"{API}/audit", headers=bearer(root))).json()["data"]["entries"]
        assert [(e["service"], e["method"], e["status"]) for e in entries[:2]] == [
            ("sellers", "POST", 403),
            ("orders", "PATCH", 403),
        ]
        # the super_admin's bulk lookup goes through to the real sellers service
        ok = await s.client.post(
            f"{API}/proxy/sellers/api/v1/sellers/service/bulk", json={"sellerIds": []}, headers=bearer(root)
        )
        assert ok.status_code == 200 and ok.json()["data"] == []


async def test_upstream_failures_map_to_503_504_502(make_stack):
    # checklist 31
    async with hanging_server() as hang:

        async def garbage(reader, writer):
            await reader.read(65536)
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
            writer.close()

        broken = await asyncio.start_server(garbage, "127.0.0.1", 0)
        broken_url = f"http://127.0.0.1:{broken.sockets[0].getsockname()[1]}"
        urls = {"customer": DEAD, "orders": hang, "products": broken_url}
        try:
            async with make_stack(urls=urls, PROXY_TIMEOUT_MS=500) as s:
                root = await s.token()
                refused = await s.client.get(f"{API}/proxy/customer/api/v1/customers/admin", headers=bearer(root))
                assert (refused.status_code, refused.json()["message"]) == (
                    503,
                    "Proxy error: customer service unavailable",
                )
                slow = await s.client.post(f"{API}/proxy/orders/api/v1/x", json={}, headers=bearer(root))
                assert (slow.status_code, slow.json()["message"]) == (504, "Proxy error: orders service timed out")
                bad = await s.client.get(f"{API}/proxy/products/api/v1/x", headers=bearer(root))
                assert (bad.status_code, bad.json()["message"]) == (
                    502,
                    "Proxy error: invalid response from products service",
                )
                entries = await s.app.state.admins.repo.audit.find({})
                assert [(e["service"], e["status"]) for e in entries] == [("orders", 504)]
        finally:
            broken.close()


async def test_audit_store_unavailable_refuses_writes_and_forwards_nothing(make_stack, receiver, monkeypatch):
    async with make_stack(urls={"orders": receiver.url}) as s:
        root = await s.token()

        async def fail(row):
            raise RuntimeError("disk full")

        monkeypatch.setattr(s.app.state.admins.repo.audit, "insert_one", fail)
        write = await s.client.post(f"{API}/proxy/orders/api/v1/x", json={}, headers=bearer(root))
        assert (write.status_code, write.json()["message"]) == (503, "Audit log unavailable")
        read = await s.client.get(f"{API}/proxy/orders/api/v1/x", headers=bearer(root))
        assert read.status_code == 200  # reads are not audited
        assert [m for m, *_ in receiver.requests] == ["GET"]


async def test_json_body_over_the_limit_is_413_after_the_checks(make_stack, receiver):
    async with make_stack(urls={"orders": receiver.url}, MAX_JSON_BODY_BYTES=1000) as s:
        root = await s.token()
        big = {"blob": "x" * 2000}
        response = await s.client.post(f"{API}/proxy/orders/api/v1/x", json=big, headers=bearer(root))
        assert (response.status_code, response.json()["message"]) == (413, "Request body too large")

        async def chunks():
            for _ in range(5):
                yield b'"' + b"y" * 400 + b'",'

        chunked = await s.client.post(
            f"{API}/proxy/orders/api/v1/x",
            content=chunks(),
            headers={**bearer(root), "Content-Type": "application/json"},
        )
        assert chunked.status_code == 413
        entries = await s.app.state.admins.repo.audit.find({})
        assert sorted(e["status"] for e in entries) == [413, 413]


class CookieSetter(Receiver):
    async def __aenter__(self):
        from aiohttp import web

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            if request.method == "HEAD":
                return web.Response(status=201, headers={"X-Target": "yes"})
            self.requests.append(
                (request.method, request.path, {k.lower(): v for k, v in request.headers.items()}, body)
            )
            response = web.StreamResponse(status=201, headers={"Set-Cookie": "a=b", "X-Target": "yes"})
            response.content_type = "application/octet-stream"
            await response.prepare(request)
            for i in range(4):
                await response.write(bytes([i]) * 100_000)
            await response.write_eof()
            return response

        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self


async def test_bodies_stream_both_ways_and_headers_are_filtered(make_stack):
    async with CookieSetter() as target, make_stack(urls={"notifications": target.url}) as s:
        root = await s.token()
        payload = b"z" * 3_000_000

        async def chunks():
            for i in range(0, len(payload), 65536):
                yield payload[i : i + 65536]

        response = await s.client.post(
            f"{API}/proxy/notifications/api/v1/send?x=1",
            content=chunks(),
            headers={**bearer(root), "Content-Type": "application/octet-stream", "Connection": "keep-alive"},
        )
        assert response.status_code == 201
        assert response.content == b"".join(bytes([i]) * 100_000 for i in range(4))
        assert "set-cookie" not in response.headers and response.headers["x-target"] == "yes"
        method, path, headers, body = target.requests[0]
        assert (method, path, body) == ("POST", "/api/v1/send", payload)
        assert headers.get("transfer-encoding") == "chunked" or "content-length" in headers
        assert "authorization" not in headers and headers["x-service-key"] == KEY
        head = await s.client.head(f"{API}/proxy/notifications/api/v1/history", headers=bearer(root))
        assert head.status_code == 201 and head.content == b""


@asynccontextmanager
async def _media_client(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://m") as client:
        yield client


async def test_five_megabyte_upload_to_the_real_media_service(make_stack):
    # checklist 32: a moderator uploads 5 MB through the proxy; the stored file is identical
    async with make_stack(services=("media",)) as s:
        root = await s.token()
        _, moderator = await s.make_admin(root, 1, role="moderator")
        content = (b"line of text for the upload test\n" * 160_000)[: 5 * 1024 * 1024]
        body, content_type = multipart([("type", None, b"service"), ("file", "big.txt", content)])

        async def chunks():
            for i in range(0, len(body), 256 * 1024):
                yield body[i : i + 256 * 1024]

        response = await s.client.post(
            f"{API}/proxy/media/api/v1/media/upload",
            content=chunks(),
            headers={**bearer(moderator), "Content-Type": content_type, "Content-Length": str(len(body))},
        )
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        assert data["file_size"] == len(content)
        served = await s.client.get(f"{API}/proxy/media/api/v1/media/serve/{data['id']}", headers=bearer(moderator))
        assert served.status_code == 200 and served.content == content
        [(method, target, headers)] = [x for x in s.transports["media"].seen if x[0] == "POST"]
        assert headers["x-service-key"] == KEY and "authorization" not in headers
        entries = (await s.client.get(f"{API}/audit?service=media", headers=bearer(root))).json()["data"]["entries"]
        assert [(e["method"], e["path"], e["status"]) for e in entries] == [("POST", "/api/v1/media/upload", 201)]


@pytest.mark.parametrize(
    "path",
    [
        "api/v1/customers/admin",
        "api/v1/media/serve/550e8400-e29b-41d4-a716-446655440000",
        "api/v1/products/search/red%20shoes",
        "api/v1/products/caf%C3%A9",
        "api/v1/orders/",
        "api/v1/a~b/c_d/e.json",
        "api/v1/admin/orders/665f1c2e9b1d8a0012345678/status",
    ],
)
def test_ordinary_paths_pass_the_rules(path):
    from admin.domain import proxy_path_is_safe

    assert proxy_path_is_safe(path)


@pytest.mark.parametrize("path", [p for p in HOSTILE if not p.startswith("/")] + ["api/v1/caf\u00e9", "api/v1/a b"])
def test_hostile_paths_break_the_rules(path):
    from admin.domain import proxy_path_is_safe

    assert not proxy_path_is_safe(path)
