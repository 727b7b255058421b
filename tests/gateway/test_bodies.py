"""Request bodies: streamed to the service, the 10 MB JSON limit (contract §4.1 step 4, §7.1;
checklist 34, 35)."""

from __future__ import annotations

import asyncio
import hashlib
import os

from aiohttp import web

MB = 1024 * 1024


async def test_json_with_a_large_content_length_is_refused_unsent(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url)
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/customer/customers/signup HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n{" % (11 * MB)
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 413")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = int(lengths[0])
    assert await reader.readexactly(length) == b'{"success":false,"message":"Request body too large"}'
    writer.close()
    assert up.requests == [] and up.connections == 0


async def test_json_suffix_types_are_limited_too(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, MAX_JSON_BODY_BYTES=1000)
    async with gw.client() as client:
        response = await client.post(
            "/api/customer/x",
            content=b"[" + b"1," * 600 + b"1]",
            headers={"Content-Type": "application/merge-patch+json"},
        )
        ok = await client.post("/api/customer/x", content=b"x" * 5000, headers={"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert ok.status_code == 200
    assert [r.body for r in up.requests] == [b"x" * 5000]


async def test_chunked_json_is_cut_at_the_limit(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(CUSTOMER_SERVICE_URL=up.url, MAX_JSON_BODY_BYTES=256 * 1024)

    async def body():
        for _ in range(40):  # 40 x 16 KB = 640 KB, chunked
            yield b" " * 16384
            await asyncio.sleep(0)

    async with gw.client() as client:
        response = await client.post("/api/customer/x", content=body(), headers={"Content-Type": "application/json"})
        small = await client.post("/api/customer/x", json={"name": "fine"})
    assert response.status_code == 413
    assert response.json() == {"success": False, "message": "Request body too large"}
    assert small.status_code == 200
    # the service never got a complete oversized body
    assert all(len(r.body) <= 256 * 1024 for r in up.requests)


async def test_multipart_upload_arrives_intact_and_in_chunks(start_gateway, upstream):
    up = await upstream()
    gw = await start_gateway(MEDIA_SERVICE_URL=up.url)
    payload = os.urandom(10 * MB)
    boundary = "----gatewaytest"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    async with gw.client() as client:
        response = await client.post(
            "/api/media/media/upload",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert response.status_code == 200
    seen = up.last
    assert seen.raw_path == "/api/v1/media/upload"
    assert seen.sha256 == hashlib.sha256(body).hexdigest()
    assert seen.headers["content-length"] == str(len(body))
    assert seen.headers["content-type"] == f"multipart/form-data; boundary={boundary}"
    assert seen.chunks > 1


async def test_the_service_gets_the_first_chunk_before_the_client_finishes(start_gateway, upstream):
    first_chunk = asyncio.Event()
    release = asyncio.Event()

    async def consume(request: web.Request) -> web.Response:
        total = 0
        async for chunk in request.content.iter_any():
            total += len(chunk)
            first_chunk.set()
        return web.json_response({"received": total})

    consume.raw = True  # type: ignore[attr-defined]
    up = await upstream(consume)
    gw = await start_gateway(MEDIA_SERVICE_URL=up.url)

    async def body():
        yield b"a" * 65536
        await release.wait()  # the client holds the rest back until the service has the start
        yield b"b" * 65536

    async def client_side() -> int:
        async with gw.client() as client:
            response = await client.post(
                "/api/media/media/upload", content=body(), headers={"Content-Type": "application/octet-stream"}
            )
            return response.json()["received"]

    task = asyncio.create_task(client_side())
    await asyncio.wait_for(first_chunk.wait(), 5)
    release.set()
    assert await task == 131072


async def test_client_gone_mid_upload_aborts_the_forwarded_request(start_gateway, upstream):
    aborted = asyncio.Event()

    async def consume(request: web.Request) -> web.Response:
        try:
            async for _ in request.content.iter_any():
                pass
        except Exception:
            aborted.set()
            raise
        return web.json_response({"ok": True})

    consume.raw = True  # type: ignore[attr-defined]
    up = await upstream(consume)
    gw = await start_gateway(MEDIA_SERVICE_URL=up.url)
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/media/media/upload HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 1000000\r\n\r\n" + b"z" * 100_000
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    await asyncio.wait_for(aborted.wait(), 5)
    async with gw.client() as client:  # the gateway is fine afterwards
        assert (await client.get("/health")).status_code == 200


async def test_service_refusing_an_upload_early_is_answered(start_gateway, upstream):
    async def refuse(request: web.Request) -> web.Response:
        await request.content.read(65536)  # looks at the start, then refuses the rest
        return web.json_response({"success": False, "message": "File too large"}, status=413)

    refuse.raw = True  # type: ignore[attr-defined]
    up = await upstream(refuse)
    gw = await start_gateway(MEDIA_SERVICE_URL=up.url)

    async def body():
        for _ in range(80):  # 5 MB
            yield b"q" * 65536

    async with gw.client() as client:
        response = await client.post(
            "/api/media/media/upload", content=body(), headers={"Content-Type": "multipart/form-data; boundary=x"}
        )
        after = await client.get("/health")
    assert response.status_code == 413
    assert response.json()["message"] == "File too large"
    assert after.status_code == 200
