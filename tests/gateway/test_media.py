"""``/media/{id}`` and ``/thumb/{id}`` (contract §4.6; checklist 18–22), in front of a small
media stand-in serving files by UUID with ETag, Range and 304."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid

import pytest
from aiohttp import web

from tests.gateway.conftest import dead_url

KNOWN = str(uuid.uuid4())
ORIGINAL = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)
THUMB = b"\x89PNG\r\n\x1a\n" + os.urandom(2_000)


def media_handler(calls: list[tuple[str, str, dict[str, str]]]):
    async def handle(request: web.Request) -> web.StreamResponse:
        calls.append((request.method, request.path, {k.lower(): v for k, v in request.headers.items()}))
        kind, _, media_id = request.path.removeprefix("/api/v1/media/").partition("/")
        if media_id.lower() != KNOWN:
            body = {"success": False, "message": "Media not found"} if kind == "serve" else {"success": False}
            return web.json_response(body, status=404)
        data = ORIGINAL if kind == "serve" else THUMB
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        headers = {
            "Content-Type": "image/png",
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Last-Modified": "Thu, 01 Jan 2026 00:00:00 GMT",
            "Cache-Control": "no-store",
            "X-Internal": "not-for-clients",
        }
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        if "Range" in request.headers:
            start_text, _, end_text = request.headers["Range"].removeprefix("bytes=").partition("-")
            start, end = int(start_text), int(end_text or len(data) - 1)
            if start >= len(data):
                return web.json_response(
                    {"success": False, "message": "Range not satisfiable"},
                    status=416,
                    headers={"Content-Range": f"bytes */{len(data)}"},
                )
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return web.Response(status=206, body=data[start : end + 1], headers=headers)
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(data))})
        response = web.StreamResponse(headers={**headers, "Content-Length": str(len(data))})
        await response.prepare(request)
        for offset in range(0, len(data), 65536):
            await response.write(data[offset : offset + 65536])
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    handle.raw = True  # type: ignore[attr-defined]
    return handle


@pytest.fixture
async def media(upstream):
    calls: list[tuple[str, str, dict[str, str]]] = []
    up = await upstream(media_handler(calls))
    up.calls = calls  # type: ignore[attr-defined]
    return up


async def test_original_is_streamed_with_caching_headers(start_gateway, media):
    gw = await start_gateway(MEDIA_SERVICE_URL=media.url)
    async with gw.client() as client:
        response = await client.get(f"/media/{KNOWN}", headers={"Accept-Encoding": "gzip", "X-Request-ID": "m-1"})
    assert response.status_code == 200
    assert response.content == ORIGINAL
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(ORIGINAL))
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["x-service-name"] == "media"
    assert "content-encoding" not in response.headers
    assert "x-internal" not in response.headers
    assert response.headers["etag"] and response.headers["accept-ranges"] == "bytes"
    method, path, headers = media.calls[-1]
    assert (method, path) == ("GET", f"/api/v1/media/serve/{KNOWN}")
    assert headers["x-request-id"] == "m-1"


async def test_thumbnail(start_gateway, media):
    gw = await start_gateway(MEDIA_SERVICE_URL=media.url)
    async with gw.client() as client:
        response = await client.get(f"/thumb/{KNOWN.upper()}")
    assert response.status_code == 200
    assert response.content == THUMB
    assert response.headers["cache-control"] == "public, max-age=86400"
    assert media.calls[-1][1] == f"/api/v1/media/serve-thumb/{KNOWN.upper()}"


async def test_head_range_and_conditional_requests_pass_through(start_gateway, media):
    gw = await start_gateway(MEDIA_SERVICE_URL=media.url)
    async with gw.client() as client:
        head = await client.head(f"/media/{KNOWN}")
        part = await client.get(f"/media/{KNOWN}", headers={"Range": "bytes=10-19"})
        etag = part.headers["etag"]
        cached = await client.get(f"/media/{KNOWN}", headers={"If-None-Match": etag})
        beyond = await client.get(f"/media/{KNOWN}", headers={"Range": "bytes=99999999-"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(ORIGINAL))
    assert media.calls[0][0] == "HEAD"
    assert part.status_code == 206
    assert part.content == ORIGINAL[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(ORIGINAL)}"
    assert cached.status_code == 304 and cached.content == b""
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(ORIGINAL)}"
    assert beyond.json()["media_id"] == KNOWN


async def test_unknown_media_is_404_with_the_id(start_gateway, media):
    gw = await start_gateway(MEDIA_SERVICE_URL=media.url)
    unknown = str(uuid.uuid4())
    async with gw.client() as client:
        original = await client.get(f"/media/{unknown}")
        thumb = await client.get(f"/thumb/{unknown}")
    assert original.status_code == 404
    assert original.json() == {"success": False, "message": "Media not found", "media_id": unknown}
    assert thumb.status_code == 404
    assert thumb.json() == {"success": False, "message": "Thumbnail not found", "media_id": unknown}


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        ("not-a-uuid", 400),
        ("550e8400-e29b-41d4-a716-44665544000", 400),
        # decoded, the path has more segments than /media/{id}: no route matches
        ("..%2f..%2fetc", 404),
    ],
)
async def test_malformed_id_is_refused_without_a_call(start_gateway, media, bad, status):
    gw = await start_gateway(MEDIA_SERVICE_URL=media.url)
    async with gw.client() as client:
        response = await client.get(f"/media/{bad}")
    assert response.status_code == status
    if status == 400:
        assert response.json() == {"success": False, "message": "Invalid media ID format", "media_id": bad}
    else:
        assert response.json()["message"] == "Route not found"
    assert media.calls == []


async def test_not_a_uuid_is_exactly_400(start_gateway, media):
    gw = await start_gateway(MEDIA_SERVICE_URL=media.url)
    async with gw.client() as client:
        response = await client.get("/thumb/not-a-uuid")
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": "Invalid media ID format", "media_id": "not-a-uuid"}
    assert media.calls == []


async def test_media_down_is_503_and_counts_on_the_media_breaker(start_gateway):
    gw = await start_gateway(MEDIA_SERVICE_URL=dead_url(), CIRCUIT_COOLDOWN_MS=60_000)
    async with gw.client() as client:
        answers = [await client.get(f"/media/{KNOWN}") for _ in range(6)]
        proxied = await client.get("/api/media/media/list")
        circuit = (await client.get("/api/status")).json()["services"]["media"]["circuit"]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.json() == {"success": False, "message": "Media service unavailable", "media_id": KNOWN}
    assert "retry-after" in answers[-1].headers
    assert proxied.status_code == 503 and "retry-after" in proxied.headers
    assert circuit["state"] == "open"


async def test_media_timeout_is_504(start_gateway, upstream):
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response()

    hang.raw = True  # type: ignore[attr-defined]
    up = await upstream(hang)
    gw = await start_gateway(MEDIA_SERVICE_URL=up.url, MEDIA_TIMEOUT_MS=300)
    async with gw.client() as client:
        response = await client.get(f"/media/{KNOWN}")
    assert response.status_code == 504
    assert response.json() == {"success": False, "message": "Media service unavailable", "media_id": KNOWN}
