"""Settings, auth, passwords, the envelope and the app factory, the service client, rate limits."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, ValidationError

from shared.app import create_service_app
from shared.auth import ServiceKey, any_of, check_service_key, decode_token, issue_token, require_role
from shared.clients import ServiceClient, ServiceClients, UpstreamStatus
from shared.forwarding import LOOPBACK, ClientResolver, parse_networks
from shared.passwords import hash_password, too_long, verify_dummy, verify_password
from shared.ratelimit import RateLimiter
from shared.responses import (
    BadGateway,
    Forbidden,
    GatewayTimeout,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
    humanize_field,
    ok,
)
from shared.settings import DEV_JWT_SECRET, ServiceSettings
from shared.testing import Receiver, free_port, lifespan_client
from shared.validation import page_params, pagination, to_cents


def settings(**kw) -> ServiceSettings:
    return ServiceSettings(_env_file=None, **kw)


# settings


def test_production_refuses_development_secrets():
    # pydantic wraps the InsecureSettingsError raised by the validator
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        settings(ENV="production")
    with pytest.raises(ValidationError, match="SERVICE_KEY"):
        settings(ENV="production", JWT_SECRET="x" * 40)
    keys = ["real-key-1-" + "k" * 32, "real-key-2-" + "k" * 32]  # 32+ characters each (issue 11 item 9)
    ok_settings = settings(ENV="production", JWT_SECRET="x" * 40, SERVICE_KEY=",".join(keys))
    assert ok_settings.service_keys == keys
    assert settings().JWT_SECRET == DEV_JWT_SECRET


def test_settings_read_the_original_environment_names(monkeypatch):
    monkeypatch.setenv("PORT", "4999")
    monkeypatch.setenv("NOTIFICATIONS_SERVICE_URL", "http://mail:3007/")
    s = settings()
    assert s.PORT == 4999 and s.service_url("notifications") == "http://mail:3007"


# auth


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_tokens_round_trip_and_refuse_wrong_type_alg_and_expiry():
    s = settings()
    token, claims = issue_token(s, subject="a" * 24, role="customer", email="a@x.com", version=3)
    assert decode_token(s, token)["ver"] == 3 and claims["type"] == "access" and claims["jti"]
    refresh, _ = issue_token(s, subject="a" * 24, role="customer", email="a@x.com", token_type="refresh")
    with pytest.raises(Unauthorized, match="Invalid token"):
        decode_token(s, refresh)
    assert decode_token(s, refresh, expected_type="refresh")["type"] == "refresh"
    other_alg = jwt.encode(claims, s.JWT_SECRET, algorithm="HS512")  # right key, wrong algorithm
    with pytest.raises(Unauthorized, match="Invalid token"):
        decode_token(s, other_alg)
    none_alg = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(Unauthorized):
        decode_token(s, none_alg)
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, s.JWT_SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized, match="Token expired"):
        decode_token(s, expired)


def test_service_keys_rotation():
    s = settings(SERVICE_KEY="new-key, old-key")
    check_service_key(s, "old-key")
    check_service_key(s, "new-key")
    with pytest.raises(Unauthorized, match="Service key required"):
        check_service_key(s, None)
    with pytest.raises(Forbidden, match="Invalid service key"):
        check_service_key(s, "other")


async def test_role_and_any_of_dependencies():
    router = APIRouter()

    @router.get("/seller")
    async def seller_only(p=Depends(require_role("seller"))):
        return ok(p.user_id)

    @router.get("/either")
    async def either(p=Depends(any_of(roles=("admin",)))):
        return ok(p.kind)

    @router.get("/svc")
    async def svc(p: ServiceKey):
        return ok(p.kind)

    s = settings(SERVICE_KEY="k")
    app = create_service_app(s, service="demo", routers=[router])
    seller, _ = issue_token(s, subject="s1", role="seller", email="s@x.com")
    admin, _ = issue_token(s, subject="ad", role="admin", email="a@x.com")
    async with lifespan_client(app) as c:
        assert (await c.get("/seller", headers={"Authorization": f"Bearer {seller}"})).json()["data"] == "s1"
        denied = await c.get("/seller", headers={"Authorization": f"Bearer {admin}"})
        assert denied.status_code == 403 and denied.json()["message"] == "Access denied"
        assert (await c.get("/seller")).json()["message"] == "Access token required"
        assert (await c.get("/either", headers={"X-Service-Key": "k"})).json()["data"] == "service"
        assert (await c.get("/either", headers={"Authorization": f"Bearer {admin}"})).json()["data"] == "user"
        assert (await c.get("/either", headers={"X-Service-Key": "bad"})).status_code == 403
        assert (await c.get("/svc")).status_code == 401


# passwords


async def test_passwords_hash_verify_and_limits():
    hashed = await hash_password("correct horse", rounds=4)
    assert hashed.startswith("$2b$04$")
    assert await verify_password("correct horse", hashed)
    assert not await verify_password("wrong", hashed)
    assert not await verify_password("x" * 80, hashed)
    assert too_long("é" * 37) and not too_long("a" * 72)
    with pytest.raises(ValueError):
        await hash_password("a" * 73, rounds=4)
    assert await verify_dummy("anything", rounds=4) is False


async def test_hashing_does_not_block_the_loop():
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*[hash_password("pw-123456", rounds=10) for _ in range(4)])
    task.cancel()
    assert ticks > 5  # the loop kept running while bcrypt worked in threads


# envelope and app factory


class Item(BaseModel):
    addressLine1: str
    qty: int = Field(ge=1)


async def test_app_envelopes_headers_and_metrics():
    router = APIRouter(prefix="/api/v1")

    @router.post("/items", status_code=201)
    async def create(item: Item):
        return ok(item.model_dump(), "Created", status_code=201)

    @router.get("/items/{item_id}")
    async def get(item_id: str):
        raise NotFound("Item not found")

    @router.get("/boom")
    async def boom():
        raise RuntimeError("secret internals")

    app = create_service_app(settings(MAX_JSON_BODY_BYTES=1000), service="demo", routers=[router])
    async with lifespan_client(app) as c:
        r = await c.post("/api/v1/items", json={"qty": 0})
        assert r.status_code == 400 and r.json()["message"] == "Validation error"
        assert {e["field"] for e in r.json()["errors"]} == {"addressLine1", "qty"}
        assert {"field": "addressLine1", "message": "Address line 1 is required"} in r.json()["errors"]
        r = await c.post("/api/v1/items", content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = await c.post("/api/v1/items", content=b"x", headers={"content-type": "text/plain"})
        assert r.status_code == 415
        r = await c.post(
            "/api/v1/items", content=b"[" + b"1," * 600 + b"1]", headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        r = await c.get("/api/v1/items/1", headers={"X-Request-ID": "req-123"})
        assert r.status_code == 404 and r.json() == {"success": False, "message": "Item not found"}
        assert r.headers["x-request-id"] == "req-123" and r.headers["x-content-type-options"] == "nosniff"
        r = await c.get("/api/v1/boom")
        assert r.status_code == 500 and "secret" not in r.text and r.json()["requestId"] == r.headers["x-request-id"]
        assert (await c.get("/nowhere")).json()["success"] is False
        r = await c.delete("/api/v1/items/1")
        assert r.status_code == 405 and r.json()["message"] == "Method not allowed"
        health = (await c.get("/health")).json()
        assert health["service"] == "demo-service" and health["status"] == "healthy"
        metrics = (await c.get("/metrics")).text
        assert 'http_requests_total{method="GET",route="/api/v1/items/{item_id}",status="404"} 1.0' in metrics


async def test_health_reports_unhealthy_store():
    async def broken() -> bool:
        raise OSError("down")

    app = create_service_app(settings(), service="customer", health_check=broken)
    async with lifespan_client(app) as c:
        r = await c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unhealthy"


def test_humanize_field():
    assert humanize_field("addressLine1") == "Address line 1"
    assert humanize_field("postalCode") == "Postal code"
    assert humanize_field("city") == "City"


# inter-service client


async def test_client_passes_key_and_request_id_and_maps_failures():
    async with Receiver(status=200) as receiver:
        client = ServiceClient("media", receiver.url, service_key="k", timeout=0.5)
        from shared.context import request_id_var

        token = request_id_var.set("rid-1")
        try:
            data = await client.call("POST", "/api/v1/x", json={"a": 1})
        finally:
            request_id_var.reset(token)
        _, _, headers, _ = receiver.requests[0]
        assert headers["x-service-key"] == "k" and headers["x-request-id"] == "rid-1"
        assert data is None
        receiver.status = 404
        with pytest.raises(UpstreamStatus) as err:
            await client.call("GET", "/x")
        assert err.value.status == 404
        receiver.status = 500
        with pytest.raises(BadGateway):
            await client.call("GET", "/x")
        receiver.status, receiver.delay = 200, 2
        with pytest.raises(GatewayTimeout):
            await client.call("GET", "/x")
        await client.aclose()
    refused = ServiceClient("media", f"http://127.0.0.1:{free_port()}", service_key="k", timeout=1)
    with pytest.raises(ServiceUnavailable):
        await refused.request("GET", "/x")
    await refused.aclose()


async def test_clients_use_injected_transport():
    other = create_service_app(settings(), service="media")
    clients = ServiceClients(settings(), transports={"media": httpx.ASGITransport(app=other)})
    response = await clients.get("media").request("GET", "/health")
    assert response.json()["service"] == "media-service"
    await clients.aclose()


# rate limit and small validators


async def test_rate_limiter_windows():
    limiter = RateLimiter(max_hits=2, window_seconds=60)
    assert await limiter.hit("login", "1.1.1.1") is None
    assert await limiter.hit("login", "1.1.1.1") is None
    retry = await limiter.hit("login", "1.1.1.1")
    assert retry is not None and 0 < retry <= 60
    assert await limiter.hit("register", "1.1.1.1") is None
    assert await RateLimiter(max_hits=0, window_seconds=60).hit("x", "y") is None


def test_client_ip_resists_forged_forwarded_for():
    """One resolver (``shared.forwarding``) for the gateway and the services: the header is
    read only from a trusted peer, walked from the right past trusted hops."""
    loopback = ClientResolver(parse_networks(LOOPBACK))
    chain = "6.6.6.6, 203.0.113.7"
    assert loopback.client_ip("127.0.0.1", chain) == "203.0.113.7"
    assert loopback.client_ip("::ffff:127.0.0.1", chain) == "203.0.113.7"
    assert loopback.client_ip("10.0.0.1", chain) == "10.0.0.1"  # an untrusted peer's header is ignored
    assert loopback.client_ip("127.0.0.1", "garbage") == "127.0.0.1"
    assert loopback.client_ip("127.0.0.1", None) == "127.0.0.1"
    assert loopback.client_ip(None, chain) == "unknown"
    assert ClientResolver(()).client_ip("127.0.0.1", chain) == "127.0.0.1"
    assert ServiceSettings().trusted_networks == parse_networks("127.0.0.0/8,::1")


def test_pagination_and_money():
    assert page_params(None, "") == (1, 10)
    with pytest.raises(ValidationFailed):
        page_params("0", "10")
    with pytest.raises(ValidationFailed):
        page_params("1", "500")
    assert pagination(2, 10, 25) == {"page": 2, "limit": 10, "total": 25, "pages": 3, "totalPages": 3}
    assert to_cents("0.005") == 1 and to_cents(99.99) == 9999 and to_cents("10") == 1000
