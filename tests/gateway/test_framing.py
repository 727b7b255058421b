"""Request smuggling (issue 11 item 4): a request framed by both ``Content-Length`` and
``Transfer-Encoding`` is refused by the gateway itself, whichever HTTP parser uvicorn runs
(h11 accepts such requests), and the ``Content-Length`` the gateway forwards is always the
number of bytes it sends. Raw socket requests against real uvicorn servers; the byte-count
checks drive the app in-process with a hand-made ASGI ``receive``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.app import create_app
from gateway.settings import SERVICES, GatewaySettings
from tests.gateway.conftest import dead_url, raw_request

# The chunked body (what h11 reads) is longer than the Content-Length: forwarded with the
# client's length, its tail would be read by the service as the start of the next request on
# the pooled connection.
_TAIL = b"GET /api/v1/admin HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLE = (
    b"POST /api/customer/customers/login HTTP/1.1\r\n"
    b"Host: gateway\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 7\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n" + f"{7 + len(_TAIL):x}\r\n".encode() + b'{"x":1}' + _TAIL + b"\r\n0\r\n\r\n"
)


@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_content_length_with_transfer_encoding_is_refused(start_gateway, upstream, http):
    up = await upstream()
    gw = await start_gateway(http=http, CUSTOMER_SERVICE_URL=up.url)
    status, headers, body = await raw_request(gw.url, SMUGGLE)
    assert status == 400
    if http == "h11":  # httptools refuses it before the app runs, with its own text answer
        assert json.loads(body) == {
            "success": False,
            "message": "Content-Length and Transfer-Encoding must not be sent together",
        }
        assert headers["connection"] == "close"
        assert headers["x-request-id"] and headers["x-content-type-options"] == "nosniff"
    await asyncio.sleep(0.05)
    assert up.requests == []
    # the next user's request is answered normally
    async with gw.client() as client:
        after = await client.get("/api/customer/customers/profile")
    assert after.status_code == 200
    assert [seen.raw_path for seen in up.requests] == ["/api/v1/customers/profile"]


@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_gateway_routes_refuse_it_too(start_gateway, http):
    gw = await start_gateway(http=http)
    request = b"POST /health HTTP/1.1\r\nHost: g\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    status, _, _ = await raw_request(gw.url, request)
    assert status == 400


@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_forwarded_length_is_the_bytes_sent(start_gateway, upstream, http):
    up = await upstream()
    gw = await start_gateway(http=http, CUSTOMER_SERVICE_URL=up.url)
    payload = b'{"name":"' + b"x" * 200_000 + b'"}'
    chunked_body = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (payload[:70_000], payload[70_000:])
    )
    request = (
        b"POST /api/customer/a HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked_body + b"0\r\n\r\n"
    )
    status, _, _ = await raw_request(gw.url, request)
    assert status == 200
    async with gw.client() as client:
        sized = await client.post("/api/customer/b", content=payload, headers={"Content-Type": "application/json"})
    assert sized.status_code == 200
    chunked_seen, sized_seen = up.requests
    assert chunked_seen.body == payload and "content-length" not in chunked_seen.headers
    assert sized_seen.body == payload
    assert sized_seen.header_names.count("content-length") == 1
    assert sized_seen.headers["content-length"] == str(len(payload))


# -- in-process: a body whose bytes differ from its Content-Length is never forwarded ----------


async def _call(app: Any, headers: list[tuple[bytes, bytes]], messages: list[dict]) -> tuple[int, dict]:
    sent: list[dict] = []
    queue = list(messages)

    async def receive() -> dict:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/customer/upload",
        "raw_path": b"/api/customer/upload",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"gateway"), (b"content-type", b"application/octet-stream"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body) if body else {}


@pytest.fixture
async def gateway_app(upstream):
    up = await upstream()
    values: dict[str, Any] = {f"{name.upper()}_SERVICE_URL": dead_url() for name in SERVICES}
    values.update(ENV="test", LOG_LEVEL="warning", CUSTOMER_SERVICE_URL=up.url)
    app = create_app(GatewaySettings(**values))
    state = app.state.gateway
    await state.open()
    try:
        yield app, up
    finally:
        await state.close()


def _body(*chunks: bytes) -> list[dict]:
    return [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]


@pytest.mark.parametrize(
    ("length", "chunks"),
    [
        (b"10", [b"12345"]),  # fewer bytes in one message
        (b"3", [b"12345"]),  # more bytes in one message
        (b"10", [b"12345", b"678901234567"]),  # more bytes, streamed
        (b"10", [b"123", b"45"]),  # fewer bytes, streamed
        (b"10", [b"1234567890123", b""]),  # more in the first of several messages
    ],
)
async def test_body_differing_from_its_length_is_not_forwarded(gateway_app, length, chunks):
    app, up = gateway_app
    status, body = await _call(app, [(b"content-length", length)], _body(*chunks))
    assert status == 400
    assert body == {"success": False, "message": "Invalid Content-Length"}
    await asyncio.sleep(0.05)
    assert up.requests == []


async def test_differing_repeated_lengths_and_both_framings_are_refused(gateway_app):
    app, up = gateway_app
    status, body = await _call(app, [(b"content-length", b"5"), (b"content-length", b"6")], _body(b"12345"))
    assert (status, body["message"]) == (400, "Invalid Content-Length")
    status, body = await _call(app, [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")], _body(b"12345"))
    assert (status, body["message"]) == (400, "Content-Length and Transfer-Encoding must not be sent together")
    assert up.requests == []


async def test_matching_length_is_forwarded_once(gateway_app):
    app, up = gateway_app
    status, _ = await _call(app, [(b"content-length", b"10"), (b"content-length", b"10")], _body(b"12345", b"67890"))
    assert status == 200
    assert up.last.body == b"1234567890"
    assert up.last.header_names.count("content-length") == 1 and up.last.headers["content-length"] == "10"
