"""The rate limit shared through a real Redis server (contract §5.1; checklist 28).

``redis_url`` (tests/conftest.py) starts its own ``redis-server`` on a free loopback port;
skipped, with the reason, when the binary is not installed."""

from __future__ import annotations

import asyncio
import logging

from tests.gateway.conftest import free_port


async def test_two_gateways_share_one_budget(start_gateway, upstream, redis_url):
    up = await upstream()
    first = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=4, REDIS_URL=redis_url)
    second = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=4, REDIS_URL=redis_url)
    async with first.client() as a, second.client() as b:
        passed = [await a.get("/api/customer/x"), await a.get("/api/customer/x")]
        passed += [await b.get("/api/customer/x"), await b.get("/api/customer/x")]
        fifth_a = await a.get("/api/customer/x")
        fifth_b = await b.get("/api/customer/x")
    assert [r.status_code for r in passed] == [200, 200, 200, 200]
    assert [r.headers["ratelimit-remaining"] for r in passed] == ["3", "2", "1", "0"]
    assert fifth_a.status_code == 429 and fifth_b.status_code == 429
    assert 1 <= int(fifth_a.headers["retry-after"]) <= 900
    assert len(up.requests) == 4

    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    keys = [key.decode() async for key in client.scan_iter("ratelimit*")]
    ttl = await client.ttl(keys[0])
    await client.aclose()
    assert len(keys) == 1 and "127.0.0.1" in keys[0]
    assert 0 < ttl <= 900


async def test_unreachable_redis_falls_back_to_memory(start_gateway, upstream, caplog):
    up = await upstream()
    gw = await start_gateway(
        CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=2, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
        async with gw.client() as client:
            answers = [await client.get("/api/customer/x") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert any("counting in memory" in r.getMessage() for r in caplog.records)
    await asyncio.sleep(0)
