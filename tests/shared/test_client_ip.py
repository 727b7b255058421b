"""A service's client IP and its access log, seen from outside the gateway (issue 11 items 5, 8).

The real customer and sellers apps, in-process, with the socket peer chosen in the ASGI scope:
a caller reaching a service port directly (peer not in ``TRUSTED_PROXIES``) cannot escape the
login limit by rotating ``X-Forwarded-For``; the gateway (a trusted peer) still names the
client. Email-verification tokens in URL paths never reach the access log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from customer.app import create_app as create_customer
from customer.settings import CustomerSettings
from sellers.app import create_app as create_sellers
from sellers.settings import SellersSettings
from shared.testing import running

UNTRUSTED = ("203.0.113.7", 1234)
LOOPBACK_PEER = ("127.0.0.1", 50000)
LOGIN = {"email": "nobody@example.com", "password": "whatever1"}


def _settings(cls: type, tmp_path: Any, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "DATA_DIR": str(tmp_path / "data"),
        "BCRYPT_ROUNDS": 4,
        "RATE_LIMIT_MAX": 3,
        "SERVICE_KEY": "test-service-key",
        "NOTIFICATIONS_SERVICE_URL": "http://127.0.0.1:9",
        "MEDIA_SERVICE_URL": "http://127.0.0.1:9",
        "OUTBOX_POLL_SECONDS": 3600,
        "LOG_LEVEL": "info",
    }
    values.update(overrides)
    return cls(_env_file=None, **values)


SERVICES = {
    "customer": (create_customer, CustomerSettings, "/api/v1/customers/login"),
    "sellers": (create_sellers, SellersSettings, "/api/v1/sellers/login"),
}


@asynccontextmanager
async def peer_client(app: Any, peer: tuple[str, int]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app):
        transport = httpx.ASGITransport(app=app, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _login_codes(client: httpx.AsyncClient, path: str, forwarded: list[str]) -> list[int]:
    codes = []
    for value in forwarded:
        response = await client.post(path, json=LOGIN, headers={"X-Forwarded-For": value})
        codes.append(response.status_code)
    return codes


ROTATING = ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4", "5.5.5.5"]


@pytest.mark.parametrize("service", SERVICES)
async def test_rotating_forwarded_for_from_an_untrusted_peer_does_not_escape_the_login_limit(tmp_path, service):
    factory, settings_cls, path = SERVICES[service]
    app = factory(_settings(settings_cls, tmp_path))
    async with peer_client(app, UNTRUSTED) as client:
        codes = await _login_codes(client, path, ROTATING)
    assert codes == [401, 401, 401, 429, 429]


@pytest.mark.parametrize("service", SERVICES)
async def test_the_gateway_on_loopback_still_names_the_client(tmp_path, service):
    factory, settings_cls, path = SERVICES[service]
    app = factory(_settings(settings_cls, tmp_path))
    async with peer_client(app, LOOPBACK_PEER) as client:
        codes = await _login_codes(client, path, ROTATING)
        # one client behind the gateway keeps one budget
        same = await _login_codes(client, path, ["9.9.9.9"] * 4)
    assert codes == [401] * 5
    assert same == [401, 401, 401, 429]


async def test_configured_proxies_replace_the_loopback_default(tmp_path):
    app = create_customer(_settings(CustomerSettings, tmp_path, TRUSTED_PROXIES="203.0.113.0/24"))
    async with peer_client(app, UNTRUSTED) as client:
        trusted = await _login_codes(client, "/api/v1/customers/login", ROTATING)
    app = create_customer(_settings(CustomerSettings, tmp_path, TRUSTED_PROXIES="203.0.113.0/24"))
    async with peer_client(app, LOOPBACK_PEER) as client:
        loopback = await _login_codes(client, "/api/v1/customers/login", ROTATING)
    assert trusted == [401] * 5
    assert loopback == [401, 401, 401, 429, 429]


@asynccontextmanager
async def captured(caplog: pytest.LogCaptureFixture, name: str) -> AsyncIterator[None]:
    """caplog on ``name``, whatever ``configure_logging`` did to the root handlers."""
    logger = logging.getLogger(name)
    attach = caplog.handler not in logging.getLogger().handlers
    if attach:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger=name):
            yield
    finally:
        if attach:
            logger.removeHandler(caplog.handler)


async def test_verification_token_in_the_path_is_not_logged(tmp_path, caplog):
    token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXZlcmlmaWNhdGlvbg.U2lnbmF0dXJlU2VjcmV0"
    app = create_customer(_settings(CustomerSettings, tmp_path))
    async with captured(caplog, "customer.access"), peer_client(app, LOOPBACK_PEER) as client:
        response = await client.get(f"/api/v1/customers/verify-email/{token}")
        await client.get("/api/v1/customers/reset-password/" + token)
    assert response.status_code == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "customer.access"]
    assert len(lines) == 2
    assert all(token not in line for line in lines)
    assert "GET /api/v1/customers/verify-email/[redacted] 400" in lines[0]
    assert "/reset-password/[redacted]" in lines[1]
    fields = [getattr(r, "fields", {}) for r in caplog.records if r.name == "customer.access"]
    assert all(token not in str(f) for f in fields)
    service_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # httpx: the test's client
    assert all(token not in r.getMessage() for r in service_side)
