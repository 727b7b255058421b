"""Serving and metadata (4.2-4.4): headers, conditional requests, ranges (checklist 15-22, 37, 38)."""

from __future__ import annotations

import uuid
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from tests.media.media_kit import (
    API,
    KEY,
    gif_bytes,
    jpeg_bytes,
    multipart,
    pdf_bytes,
    png_bytes,
    stored_path,
    unlink,
    upload,
    uploaded_id,
)

MEDIA_FILE_FIELDS = {
    "id",
    "original_filename",
    "stored_filename",
    "file_size",
    "file_extension",
    "content_type",
    "upload_type",
    "access_url",
    "thumbnail_url",
    "has_thumbnail",
    "is_used",
    "uploaded_at",
    "updated_at",
}


@pytest.fixture
async def jpeg(client: httpx.AsyncClient) -> tuple[str, bytes]:
    data = jpeg_bytes((1200, 900), quality=90)
    return await uploaded_id(client, data, "photo.jpg"), data


async def test_serve_original_with_contract_headers(client: httpx.AsyncClient, jpeg) -> None:
    media_id, data = jpeg
    response = await client.get(f"{API}/serve/{media_id}")
    assert response.status_code == 200
    assert response.content == data
    headers = response.headers
    assert headers["content-type"] == "image/jpeg"
    assert headers["content-length"] == str(len(data))
    assert headers["cache-control"] == "public, max-age=86400"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-disposition"] == "inline; filename=\"photo.jpg\"; filename*=UTF-8''photo.jpg"
    assert headers["etag"].startswith('"') and len(headers["etag"]) == 66
    meta = (await client.get(f"{API}/{media_id}")).json()["data"]
    assert parsedate_to_datetime(headers["last-modified"]).strftime("%Y-%m-%dT%H:%M:%SZ") == meta["uploaded_at"]


async def test_if_none_match_gives_304(client: httpx.AsyncClient, jpeg) -> None:
    media_id, _ = jpeg
    url = f"{API}/serve/{media_id}"
    etag = (await client.get(url)).headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await client.get(url, headers={"If-None-Match": header, "Range": "bytes=0-9"})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "public, max-age=86400"
        assert "last-modified" in response.headers
    miss = await client.get(url, headers={"If-None-Match": '"something-else"'})
    assert miss.status_code == 200


async def test_if_modified_since(client: httpx.AsyncClient, jpeg) -> None:
    media_id, _ = jpeg
    url = f"{API}/serve/{media_id}"
    last_modified = (await client.get(url)).headers["last-modified"]
    assert (await client.get(url, headers={"If-Modified-Since": last_modified})).status_code == 304
    older = format_datetime(parsedate_to_datetime(last_modified).replace(year=2020), usegmt=True)
    assert (await client.get(url, headers={"If-Modified-Since": older})).status_code == 200
    assert (await client.get(url, headers={"If-Modified-Since": "not a date"})).status_code == 200
    # If-None-Match wins over If-Modified-Since
    both = {"If-Modified-Since": last_modified, "If-None-Match": '"nope"'}
    assert (await client.get(url, headers=both)).status_code == 200


async def test_byte_ranges(client: httpx.AsyncClient, jpeg) -> None:
    media_id, data = jpeg
    url = f"{API}/serve/{media_id}"
    size = len(data)

    first = await client.get(url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    assert first.content == data[:100]
    assert first.headers["content-length"] == "100"

    tail = await client.get(url, headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, data[-10:])
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"

    open_ended = await client.get(url, headers={"Range": f"bytes={size - 5}-"})
    assert (open_ended.status_code, open_ended.content) == (206, data[-5:])

    clamped = await client.get(url, headers={"Range": f"bytes=10-{size * 2}"})
    assert (clamped.status_code, clamped.content) == (206, data[10:])

    whole_suffix = await client.get(url, headers={"Range": f"bytes=-{size * 2}"})
    assert (whole_suffix.status_code, whole_suffix.content) == (206, data)

    for unsatisfiable in (f"bytes={size}-", "bytes=-0", f"bytes={size + 100}-{size + 200}"):
        refused = await client.get(url, headers={"Range": unsatisfiable})
        assert refused.status_code == 416, unsatisfiable
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.json()["message"] == "Requested range not satisfiable"

    for ignored in ("bytes=0-1,5-9", "items=0-5", "bytes=9-2", "bytes=abc", "bytes=-"):
        full = await client.get(url, headers={"Range": ignored})
        assert (full.status_code, full.content) == (200, data), ignored


async def test_if_range(client: httpx.AsyncClient, jpeg) -> None:
    media_id, data = jpeg
    url = f"{API}/serve/{media_id}"
    etag = (await client.get(url)).headers["etag"]
    matching = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (matching.status_code, matching.content) == (206, data[:10])
    stale = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert (stale.status_code, stale.content) == (200, data)


async def test_content_disposition_of_unicode_and_quotes(client: httpx.AsyncClient) -> None:
    media_id = await uploaded_id(client, jpeg_bytes(), 'my "best" café.jpg')
    response = await client.get(f"{API}/serve/{media_id}")
    disposition = response.headers["content-disposition"]
    assert 'filename="my _best_ caf_.jpg"' in disposition
    assert "filename*=UTF-8''my%20%22best%22%20caf%C3%A9.jpg" in disposition
    assert disposition.startswith("inline; ")
    thumb = await client.get(f"{API}/serve-thumb/{media_id}")
    assert "filename*=UTF-8''thumb_my%20%22best%22%20caf%C3%A9.jpg" in thumb.headers["content-disposition"]


async def test_backslash_in_name_is_not_echoed_raw(client: httpx.AsyncClient) -> None:
    body, ctype = multipart([("file", "a\u202eb.png", png_bytes())])
    media_id = (await client.post(f"{API}/upload", content=body, headers={"Content-Type": ctype})).json()["data"]["id"]
    disposition = (await client.get(f"{API}/serve/{media_id}")).headers["content-disposition"]
    assert 'filename="a_b.png"' in disposition


async def test_serve_thumb_and_fallback(client: httpx.AsyncClient, jpeg) -> None:
    media_id, data = jpeg
    original = await client.get(f"{API}/serve/{media_id}")
    thumb = await client.get(f"{API}/serve-thumb/{media_id}", headers={"Range": "bytes=0-9"})
    assert thumb.status_code == 200  # Range ignored on thumbnails
    assert thumb.content != data and thumb.content[:3] == b"\xff\xd8\xff"
    assert thumb.headers["etag"] == original.headers["etag"][:-1] + '-thumb"'
    assert "accept-ranges" not in thumb.headers
    assert thumb.headers["cache-control"] == "public, max-age=86400"
    again = await client.get(f"{API}/serve-thumb/{media_id}", headers={"If-None-Match": thumb.headers["etag"]})
    assert again.status_code == 304

    pdf = pdf_bytes()
    pdf_id = await uploaded_id(client, pdf, "doc.pdf")
    fallback = await client.get(f"{API}/serve-thumb/{pdf_id}")
    assert fallback.status_code == 200
    assert fallback.content == pdf
    assert fallback.headers["content-type"] == "application/pdf"
    assert fallback.headers["etag"] == (await client.get(f"{API}/serve/{pdf_id}")).headers["etag"]
    assert 'filename="thumb_doc.pdf"' in fallback.headers["content-disposition"]


async def test_thumbnail_missing_on_disk_falls_back_then_404(client, jpeg, media_root: Path) -> None:
    media_id, data = jpeg
    unlink(stored_path(media_root, media_id, "jpg", thumb=True))
    fallback = await client.get(f"{API}/serve-thumb/{media_id}")
    assert (fallback.status_code, fallback.content) == (200, data)
    unlink(stored_path(media_root, media_id, "jpg"))
    gone = await client.get(f"{API}/serve-thumb/{media_id}")
    assert (gone.status_code, gone.json()["message"]) == (404, "Thumbnail not found")


@pytest.mark.parametrize("path", ["serve/{}", "serve-thumb/{}", "{}", "info/{}"])
async def test_bad_and_unknown_ids(client: httpx.AsyncClient, path: str) -> None:
    bad = await client.get(f"{API}/{path.format('abc')}")
    assert (bad.status_code, bad.json()["message"]) == (400, "Invalid media ID format")
    unknown = await client.get(f"{API}/{path.format(uuid.uuid4())}")
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Media not found")
    assert unknown.json()["success"] is False


async def test_ids_are_case_insensitive(client: httpx.AsyncClient, jpeg) -> None:
    media_id, data = jpeg
    response = await client.get(f"{API}/serve/{media_id.upper()}")
    assert (response.status_code, response.content) == (200, data)


async def test_file_missing_on_disk(client: httpx.AsyncClient, media_root: Path, settings) -> None:
    media_id = await uploaded_id(client, pdf_bytes(), "gone.pdf")
    unlink(stored_path(media_root, media_id, "pdf"))
    response = await client.get(f"{API}/serve/{media_id}")
    assert (response.status_code, response.json()["message"]) == (404, "File not found on disk")
    assert (await client.get(f"{API}/{media_id}")).status_code == 200  # the row is still answered
    checked = await client.post(f"{API}/validate", json={"fileIds": [media_id]}, headers=KEY)
    item = checked.json()["data"]["files"][0]
    assert (item["valid"], item["exists"], item["reason"]) == (False, True, "File not found on disk")
    assert item["filename"] == f"{media_id.replace('-', '_')}.pdf"


@pytest.mark.parametrize("alias", ["", "info/"])
async def test_metadata_has_every_field(client: httpx.AsyncClient, jpeg, alias: str) -> None:
    media_id, data = jpeg
    response = await client.get(f"{API}/{alias}{media_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "File retrieved successfully"
    meta = body["data"]
    assert set(meta) == MEDIA_FILE_FIELDS
    assert meta["is_used"] == 0 and type(meta["is_used"]) is int
    assert meta["stored_filename"] == f"{media_id.replace('-', '_')}.jpg"
    assert meta["file_size"] == len(data)
    assert meta["has_thumbnail"] is True
    assert meta["uploaded_at"].endswith("Z") and len(meta["uploaded_at"]) == 20


async def test_head_has_headers_and_no_body(client: httpx.AsyncClient, jpeg) -> None:
    media_id, data = jpeg
    response = await client.head(f"{API}/serve/{media_id}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert response.content == b""
    assert response.headers["etag"]
    thumb = await client.head(f"{API}/serve-thumb/{media_id}")
    assert thumb.status_code == 200 and thumb.content == b""
    assert int(thumb.headers["content-length"]) > 0


async def test_unknown_routes_and_methods(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"{API}/x/y")
    assert missing.status_code == 404 and missing.json()["success"] is False
    wrong = await client.put(f"{API}/upload")
    assert wrong.status_code == 405 and wrong.json()["success"] is False
    # fixed segments are never taken for an id
    assert (await client.get(f"{API}/upload")).status_code == 405
    assert (await client.get(f"{API}/stats")).json()["message"] == "Invalid or missing service key"


async def test_health(client: httpx.AsyncClient, media_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["service"] == "media-service" and body["status"] == "healthy"
    assert (body["database"], body["storage"]) == ("connected", "writable")
    (media_root / ".tmp").rmdir()
    down = await client.get("/health")
    assert down.status_code == 503
    assert (down.json()["status"], down.json()["storage"]) == ("unhealthy", "not writable")

    async def broken_ping() -> bool:
        raise OSError("database is gone")

    monkeypatch.setattr(client.app.state.media.repo, "ping", broken_ping)  # type: ignore[attr-defined]
    no_db = (await client.get("/health")).json()
    assert (no_db["status"], no_db["database"]) == ("unhealthy", "disconnected")


async def test_served_types_never_include_markup(client: httpx.AsyncClient) -> None:
    media_id = await uploaded_id(client, b"just text, <b>not</b> html", "page.html")
    response = await client.get(f"{API}/serve/{media_id}")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith('inline; filename="page.html"')


async def test_gif_serves_with_its_type(client: httpx.AsyncClient) -> None:
    media_id = await uploaded_id(client, gif_bytes(), "a.gif")
    thumb = await client.get(f"{API}/serve-thumb/{media_id}")
    assert thumb.headers["content-type"] == "image/gif"
    response = await upload(client, gif_bytes(), "b.gif")
    assert response.status_code == 201
