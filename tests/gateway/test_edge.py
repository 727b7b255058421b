"""Rate limiting, client IP, CORS, security headers, compression and the access log
(contract §5.1, §5.2, §7.5, §7.6, §7.8; checklist 25–27, 29–33)."""

from __future__ import annotations

import gzip
import logging
import zlib

import pytest
from aiohttp import web

LIMIT_MESSAGE = "Too many requests from this IP, please try again later"


async def test_rate_limit_counts_down_then_refuses(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=3)
    async with gw.client() as client:
        answers = [await client.get("/api/customer/x") for _ in range(3)]
        refused = await client.get("/api/customer/x")
        health = await client.get("/health")
        status = await client.get("/api/docs")
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
    assert all(a.headers["ratelimit-limit"] == "3" for a in answers)
    assert 899 <= int(answers[0].headers["ratelimit-reset"]) <= 900
    assert refused.status_code == 429
    assert refused.json() == {"success": False, "message": LIMIT_MESSAGE}
    assert 1 <= int(refused.headers["retry-after"]) <= 900
    assert refused.headers["ratelimit-remaining"] == "0"
    assert not any(name.startswith("x-ratelimit") for name in refused.headers)
    assert health.status_code == 200 and "ratelimit-limit" not in health.headers
    assert status.status_code == 429  # gateway routes are counted too
    assert len(up.requests) == 3  # a 429 never reaches a service


async def test_rate_limit_max_zero_turns_limiting_off(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=0)
    async with gw.client() as client:
        answers = [await client.get("/api/customer/x") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert "ratelimit-limit" not in answers[0].headers


async def test_rate_limit_window_ends(start_gateway, upstream):
    import asyncio

    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=1, RATE_LIMIT_WINDOW_MS=1000)
    async with gw.client() as client:
        assert (await client.get("/api/customer/x")).status_code == 200
        assert (await client.get("/api/customer/x")).status_code == 429
        await asyncio.sleep(1.1)
        assert (await client.get("/api/customer/x")).status_code == 200


async def test_forged_forwarded_for_does_not_reset_the_budget(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=3)
    async with gw.client() as client:
        answers = [
            await client.get("/api/customer/x", headers={"X-Forwarded-For": f"10.0.0.{i}, 9.9.9.{i}"}) for i in range(4)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert all(r.headers["x-forwarded-for"] == "127.0.0.1" for r in up.requests)


async def test_trusted_proxy_chain_is_walked_from_the_right(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=3, TRUSTED_PROXIES="127.0.0.1")
    async with gw.client() as client:
        first = await client.get("/api/customer/x", headers={"X-Forwarded-For": "1.1.1.1, 2.2.2.2"})
        assert up.last.headers["x-forwarded-for"] == "1.1.1.1, 2.2.2.2"
        assert up.last.headers["x-real-ip"] == "2.2.2.2"
        second = await client.get("/api/customer/x", headers={"X-Forwarded-For": "9.9.9.9, 2.2.2.2"})
        third = await client.get("/api/customer/x", headers={"X-Forwarded-For": "2.2.2.2, 127.0.0.1"})
        assert up.last.headers["x-forwarded-for"] == "2.2.2.2"
        assert up.last.headers["x-real-ip"] == "2.2.2.2"
        fourth = await client.get("/api/customer/x", headers={"X-Forwarded-For": "2.2.2.2"})
        other = await client.get("/api/customer/x", headers={"X-Forwarded-For": "3.3.3.3"})
    assert [a.headers["ratelimit-remaining"] for a in (first, second, third)] == ["2", "1", "0"]
    assert fourth.status_code == 429
    assert other.status_code == 200 and other.headers["ratelimit-remaining"] == "2"


async def test_trusted_proxy_headers_for_scheme_and_host(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, TRUSTED_PROXIES="127.0.0.0/8")
    async with gw.client() as client:
        response = await client.get(
            "/api/customer/x",
            headers={
                "X-Forwarded-For": "garbage, 5.5.5.5",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "shop.example",
            },
        )
        malformed = await client.get("/api/customer/x", headers={"X-Forwarded-For": "not-an-ip"})
        malformed_seen = up.last.headers
    seen = up.requests[0].headers
    assert seen["x-forwarded-for"] == "garbage, 5.5.5.5"
    assert seen["x-real-ip"] == "5.5.5.5"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == "shop.example"
    assert response.headers["strict-transport-security"] == "max-age=15552000; includeSubDomains"
    assert malformed.status_code == 200
    assert malformed_seen["x-forwarded-for"] == "127.0.0.1"
    assert malformed_seen["x-real-ip"] == "127.0.0.1"


async def test_preflight_is_answered_by_the_gateway(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=1)
    async with gw.client() as client:
        answers = [
            await client.options(
                "/api/customer/customers/login",
                headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
            )
            for _ in range(3)
        ]
        counted = await client.get("/api/customer/x")
    response = answers[0]
    assert all(a.status_code == 204 for a in answers)  # not counted by the limiter
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "GET,POST,PUT,DELETE,PATCH,OPTIONS"
    allowed = response.headers["access-control-allow-headers"].split(",")
    for name in ("Content-Type", "Authorization", "X-Service-Key", "X-Requested-With", "X-Request-ID"):
        assert name in allowed
    assert "ratelimit-limit" not in response.headers
    assert counted.status_code == 200
    assert up.requests[-1].method == "GET" and len(up.requests) == 1  # the preflights were never forwarded


async def test_plain_options_is_forwarded(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        response = await client.options("/api/customer/x", headers={"Origin": "https://shop.example"})
    assert response.status_code == 200
    assert up.last.method == "OPTIONS"


async def test_cors_list_echoes_listed_origins_only(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, CORS_ORIGIN="https://shop.example,https://admin.example")
    async with gw.client() as client:
        good = await client.get("/api/customer/x", headers={"Origin": "https://shop.example"})
        evil = await client.get("/api/customer/x", headers={"Origin": "https://evil.example"})
        preflight_evil = await client.options(
            "/api/customer/x", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
    assert good.headers["access-control-allow-origin"] == "https://shop.example"
    assert good.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in good.headers.get_list("vary")
    assert "access-control-allow-origin" not in evil.headers
    assert "access-control-allow-origin" not in preflight_evil.headers


async def test_service_cors_headers_are_replaced_not_duplicated(start_gateway, upstream):
    async def cors(request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True},
            headers={
                "Access-Control-Allow-Origin": "https://service-own.example",
                "Access-Control-Allow-Credentials": "false",
                "X-Frame-Options": "SAMEORIGIN",
                "X-Powered-By": "Express",
            },
        )

    up = await upstream(cors)
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        response = await client.get("/api/customer/x", headers={"Origin": "https://shop.example"})
    assert response.headers.get_list("access-control-allow-origin") == ["*"]
    assert response.headers.get_list("access-control-allow-credentials") == ["true"]
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert "x-powered-by" not in response.headers


@pytest.mark.parametrize("path", ["/api/customer/x", "/health", "/nothing", "/api/docs"])
async def test_security_headers_on_every_answer(start_gateway, upstream, path):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        response = await client.get(path)
        spoofed = await client.get(path, headers={"X-Forwarded-Proto": "https"})  # untrusted peer: ignored
    for answer in (response, spoofed):
        headers = answer.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-dns-prefetch-control"] == "off"
        assert headers["x-download-options"] == "noopen"
        assert headers["x-permitted-cross-domain-policies"] == "none"
        assert headers["x-xss-protection"] == "0"
        assert headers["content-security-policy"].startswith("default-src 'self';base-uri 'self';")
        assert "upgrade-insecure-requests" not in headers["content-security-policy"]
        assert "strict-transport-security" not in headers
        assert "x-powered-by" not in headers


async def test_hsts_with_trusted_https_proto(start_gateway):
    gw = await start_gateway(TRUSTED_PROXIES="127.0.0.1")
    async with gw.client() as client:
        response = await client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"] == "max-age=15552000; includeSubDomains"


def _json_of(size: int) -> bytes:
    items = []
    total = 2
    i = 0
    while total < size - 40:
        item = f'{{"id":{i},"name":"product number {i}"}}'
        items.append(item)
        total += len(item) + 1
        i += 1
    return ("[" + ",".join(items) + "]").encode()


async def test_compression_rules(start_gateway, upstream):
    big, small = _json_of(5000), _json_of(500)
    png = b"\x89PNG\r\n\x1a\n" + bytes(6000)

    async def answers(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/big"):
            return web.Response(body=big, content_type="application/json")
        if request.path.endswith("/small"):
            return web.Response(body=small, content_type="application/json")
        if request.path.endswith("/png"):
            return web.Response(body=png, content_type="image/png")
        if request.path.endswith("/problem"):
            return web.Response(body=big, content_type="application/problem+json")
        if request.path.endswith("/encoded"):
            return web.Response(
                body=gzip.compress(big), headers={"Content-Encoding": "gzip"}, content_type="application/json"
            )
        stream = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await stream.prepare(request)
        for _ in range(3):
            await stream.write(b"chunk of streamed text\n" * 10)
        await stream.write_eof()
        return stream

    up = await upstream(answers)
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    async with gw.client() as client:
        got = {}
        for name in ("big", "small", "png", "problem", "encoded", "stream"):
            got[name] = await client.get(f"/api/customer/{name}", headers={"Accept-Encoding": "gzip"})
        plain = await client.get("/api/customer/big", headers={"Accept-Encoding": "identity"})
        refused = await client.get("/api/customer/big", headers={"Accept-Encoding": "gzip;q=0, deflate"})
    assert got["big"].headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in got["big"].headers.get_list("vary")
    assert got["big"].content == big  # httpx decodes it
    assert "content-encoding" not in got["small"].headers and got["small"].content == small
    assert "content-encoding" not in got["png"].headers and got["png"].content == png
    assert got["problem"].headers["content-encoding"] == "gzip"
    assert got["encoded"].headers.get_list("content-encoding") == ["gzip"] and got["encoded"].content == big
    assert got["stream"].headers["content-encoding"] == "gzip"
    assert got["stream"].text == "chunk of streamed text\n" * 30
    assert "content-encoding" not in plain.headers and plain.content == big
    assert "content-encoding" not in refused.headers


async def test_gateway_own_json_is_compressed_too(start_gateway):
    gw = await start_gateway()
    async with gw.client() as client:
        raw = await client.get("/api/docs", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.json()["success"] is True


async def test_compressed_stream_arrives_chunk_by_chunk(start_gateway, upstream):
    import asyncio

    async def slow_json(request: web.Request) -> web.StreamResponse:
        stream = web.StreamResponse(headers={"Content-Type": "application/json"})
        await stream.prepare(request)
        await stream.write(b'[{"first":' + b"1" * 2000 + b"}")
        await asyncio.sleep(0.5)
        await stream.write(b"]")
        await stream.write_eof()
        return stream

    up = await upstream(slow_json)
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    decoder = zlib.decompressobj(31)
    async with gw.client() as client:
        async with client.stream("GET", "/api/customer/s", headers={"Accept-Encoding": "gzip"}) as response:
            assert response.headers["content-encoding"] == "gzip"
            raw = response.aiter_raw()
            first = decoder.decompress(await raw.__anext__())
            assert first.startswith(b'[{"first":')  # decodable before the service finished
            rest = b"".join([decoder.decompress(part) async for part in raw])
    assert first + rest + decoder.flush() == b'[{"first":' + b"1" * 2000 + b"}]"


async def test_access_log_line(start_gateway, upstream, caplog):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        async with gw.client() as client:
            await client.get(
                "/api/customer/customers/profile?token=secret",
                headers={"X-Request-ID": "log-1", "Authorization": "Bearer hidden"},
            )
            await client.get("/nothing", headers={"X-Request-ID": "log-2"})
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert any(
        line.startswith("GET /api/customer/customers/profile -> customer 200 ")
        and line.endswith("rid=log-1 ip=127.0.0.1")
        for line in lines
    ), lines
    assert any(line.startswith("GET /nothing -> gateway 404 ") and "rid=log-2" in line for line in lines)
    assert not any("secret" in line or "hidden" in line for line in lines)


async def test_access_log_json_fields(start_gateway, upstream, caplog):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, LOG_FORMAT="json")
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        async with gw.client() as client:
            await client.get("/api/customer/x?q=1", headers={"X-Request-ID": "json-1"})
    record = next(r for r in caplog.records if r.name == "gateway.access")
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["method"] == "GET" and fields["path"] == "/api/customer/x" and fields["target"] == "customer"
    assert fields["status"] == 200 and fields["requestId"] == "json-1" and fields["clientIp"] == "127.0.0.1"
    assert isinstance(fields["durationMs"], float)


async def test_metrics(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, RATE_LIMIT_MAX=2, TRUSTED_PROXIES="127.0.0.1")
    async with gw.client() as client:
        await client.get("/api/customer/x")
        await client.get("/api/sellers/x")  # refused: sellers is down
        await client.get("/api/customer/x")  # over the limit
        text = (await client.get("/metrics", headers={"X-Forwarded-For": "7.7.7.7"})).text
    assert 'gateway_proxy_requests_total{service="customer",status="200"} 1.0' in text
    assert 'gateway_proxy_requests_total{service="sellers",status="503"} 1.0' in text
    assert "gateway_proxy_duration_seconds_bucket" in text
    assert 'gateway_circuit_state{service="customer"} 0.0' in text
    assert "gateway_rate_limited_total 1.0" in text
    assert "http_requests_total" in text


TOKEN = "eyJhbGciOiJIUzI1NiJ9.dmVyaWZ5LW1l.c2lnbmVkLXNlY3JldA"


async def test_token_paths_are_redacted_in_the_logs(start_gateway, upstream, caplog):
    """Email-verification and reset tokens travel in URL paths: the gateway's access log and
    its upstream-failure warning show ``[redacted]`` instead (issue 11 item 8)."""
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, LOG_FORMAT="json")
    logger = logging.getLogger("gateway")
    attach = caplog.handler not in logging.getLogger().handlers  # configure_logging may have replaced it
    if attach:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="gateway"):
            async with gw.client() as client:
                verified = await client.get(f"/api/customer/customers/verify-email/{TOKEN}")
                reset = await client.post(f"/api/sellers/sellers/reset-password/{TOKEN}", json={})
    finally:
        if attach:
            logger.removeHandler(caplog.handler)
    assert verified.status_code == 200 and up.last.raw_path == f"/api/v1/customers/verify-email/{TOKEN}"
    assert reset.status_code == 503  # sellers is down: the proxy's warning names the path too
    gateway_records = [r for r in caplog.records if r.name.startswith("gateway")]
    lines = [r.getMessage() for r in gateway_records]
    assert any(line.startswith("GET /api/customer/customers/verify-email/[redacted] -> customer 200") for line in lines)
    assert any(line.startswith("POST /api/sellers/sellers/reset-password/[redacted] -> sellers") for line in lines)
    assert any("reset-password/[redacted] -> sellers failed" in line for line in lines)
    assert not any(TOKEN in line for line in lines)
    assert not any(TOKEN in str(getattr(r, "fields", "")) for r in gateway_records)
