"""The services' per-route limits (slowapi, ``shared.ratelimit.RouteLimits``): one limiter per
app built from its settings, every call counted (a refused body too), counters shared through
a real Redis (``redis_url``, tests/conftest.py) and kept in memory while Redis is unreachable
or stalled."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from customer.app import create_app as create_customer
from customer.settings import CustomerSettings
from sellers.app import create_app as create_sellers
from sellers.settings import SellersSettings
from shared.testing import free_port, lifespan_client

LOGIN = "/api/v1/customers/login"
BODY = {"email": "nobody@example.com", "password": "whatever1"}
MESSAGE = "Too many authentication attempts, please try again later"


def _settings(cls: type, tmp_path: Any, name: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "DATA_DIR": str(tmp_path / name),
        "BCRYPT_ROUNDS": 4,
        "SERVICE_KEY": "test-service-key",
        "NOTIFICATIONS_SERVICE_URL": "http://127.0.0.1:9",
        "MEDIA_SERVICE_URL": "http://127.0.0.1:9",
        "OUTBOX_POLL_SECONDS": 3600,
    }
    values.update(overrides)
    return cls(_env_file=None, **values)


async def _codes(client: Any, path: str, count: int, body: Any = None) -> list[int]:
    return [(await client.post(path, json=BODY if body is None else body)).status_code for _ in range(count)]


async def test_each_app_keeps_its_own_limiter_and_rule(tmp_path):
    # apps built in one process with different settings: neither sees the other's rule or counts
    two = create_customer(_settings(CustomerSettings, tmp_path, "a", RATE_LIMIT_MAX=2))
    four = create_customer(_settings(CustomerSettings, tmp_path, "b", RATE_LIMIT_MAX=4))
    sellers = create_sellers(_settings(SellersSettings, tmp_path, "c", RATE_LIMIT_MAX=1))
    assert two.state.limiter is not four.state.limiter
    async with lifespan_client(two) as a, lifespan_client(four) as b, lifespan_client(sellers) as c:
        assert await _codes(a, LOGIN, 3) == [401, 401, 429]
        assert await _codes(b, LOGIN, 5) == [401, 401, 401, 401, 429]
        # the forgot-password route of both account services is one function of shared/
        forgot = {"email": "nobody@example.com"}
        assert await _codes(a, "/api/v1/customers/forgot-password", 2, forgot) == [200, 200]
        assert await _codes(c, "/api/v1/sellers/forgot-password", 2, forgot) == [200, 429]


async def test_a_refused_body_is_counted_too(tmp_path):
    app = create_customer(_settings(CustomerSettings, tmp_path, "a", RATE_LIMIT_MAX=2))
    async with lifespan_client(app) as client:
        assert await _codes(client, LOGIN, 2, {"email": "not-an-email"}) == [400, 400]
        refused = await client.post(LOGIN, json=BODY)
    assert refused.status_code == 429
    assert refused.json() == {"success": False, "message": MESSAGE}
    assert 1 <= int(refused.headers["Retry-After"]) <= 900


async def test_two_instances_share_one_budget_in_redis(tmp_path, redis_url):
    first = create_customer(_settings(CustomerSettings, tmp_path, "a", RATE_LIMIT_MAX=4, REDIS_URL=redis_url))
    second = create_customer(_settings(CustomerSettings, tmp_path, "b", RATE_LIMIT_MAX=4, REDIS_URL=redis_url))
    async with lifespan_client(first) as a, lifespan_client(second) as b:
        passed = await _codes(a, LOGIN, 2) + await _codes(b, LOGIN, 2)
        fifth_a = await a.post(LOGIN, json=BODY)
        fifth_b = await b.post("/api/v1/customers/signin", json=BODY)  # the alias shares the counter
    assert passed == [401, 401, 401, 401]
    assert fifth_a.status_code == 429 and fifth_b.status_code == 429
    assert fifth_a.json()["message"] == MESSAGE
    assert 1 <= int(fifth_a.headers["Retry-After"]) <= 900

    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    keys = [key.decode() async for key in client.scan_iter("*")]
    ttl = await client.ttl(keys[0])
    await client.aclose()
    assert len(keys) == 1 and keys[0].startswith("customer:") and "customer:login" in keys[0]
    assert 0 < ttl <= 900


@pytest.fixture
def stalled_redis_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


@pytest.mark.parametrize("kind", ["refused", "stalled"])
async def test_unreachable_redis_counts_in_memory(tmp_path, kind, stalled_redis_url, caplog):
    url = stalled_redis_url if kind == "stalled" else f"redis://127.0.0.1:{free_port()}/0"
    app = create_customer(_settings(CustomerSettings, tmp_path, "a", RATE_LIMIT_MAX=2, REDIS_URL=url))
    with caplog.at_level(logging.WARNING, logger="slowapi"):
        async with lifespan_client(app) as client:
            codes = await _codes(client, LOGIN, 3)
    assert codes == [401, 401, 429]
    assert any("falling back to in-memory" in r.getMessage() for r in caplog.records)
