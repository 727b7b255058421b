"""Upload (4.1): types by content, thumbnails, limits, hostile inputs (checklist 1-14, 23, 34)."""

from __future__ import annotations

import io
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.media.media_kit import (
    API,
    KEY,
    UPLOAD,
    bearer,
    bomb_png_bytes,
    doc_bytes,
    docx_bytes,
    elf_bytes,
    exif_jpeg_bytes,
    files_under,
    gif_bytes,
    jpeg_bytes,
    multipart,
    pdf_bytes,
    pe_bytes,
    png_bytes,
    upload,
    webp_bytes,
)

# The bomb tests trip Pillow's own warning on the way to our limit; the refusal is what counts.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ALLOWED = "File type not allowed. Supported: jpg, jpeg, png, gif, webp, pdf, doc, docx, txt"


def row_count(settings) -> int:
    with sqlite3.connect(settings.database_path) as db:
        return db.execute("SELECT COUNT(*) FROM media_files").fetchone()[0]


async def thumbnail_of(client: httpx.AsyncClient, media_id: str) -> Image.Image:
    response = await client.get(f"{API}/serve-thumb/{media_id}")
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


def assert_refused(response: httpx.Response, status: int, message: str, settings, media_root: Path) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["message"] == message
    assert row_count(settings) == 0
    assert files_under(media_root) == []


# -- checklist 1-4 -------------------------------------------------------------------------------


async def test_jpeg_profile_upload_anonymous(client: httpx.AsyncClient) -> None:
    response = await upload(client, jpeg_bytes((640, 480)), "shoe.jpg", upload_type="profile")
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["message"] == "File uploaded successfully"
    data = body["data"]
    assert UUID4.match(data["id"])
    assert data["content_type"] == "image/jpeg"
    assert data["has_thumbnail"] is True
    assert data["upload_type"] == "profile"
    assert data["original_filename"] == "shoe.jpg"
    assert data["file_extension"] == "jpg"
    assert data["access_url"] == f"/media/serve/{data['id']}"
    assert data["thumbnail_url"] == f"/media/serve-thumb/{data['id']}"
    assert data["file_size"] == len(jpeg_bytes((640, 480)))


@pytest.mark.parametrize(("sent", "stored"), [("product", "temp"), (None, "temp"), ("  SERVICE ", "service")])
async def test_upload_type_values(client: httpx.AsyncClient, sent: str | None, stored: str) -> None:
    response = await upload(client, jpeg_bytes(), "a.jpg", upload_type=sent)
    assert response.status_code == 201
    assert response.json()["data"]["upload_type"] == stored


@pytest.mark.parametrize("file_first", [True, False])
async def test_part_order_does_not_matter(client: httpx.AsyncClient, file_first: bool) -> None:
    parts = [("file", "x.png", png_bytes()), ("type", None, b"profile"), ("other", None, b"ignored")]
    body, ctype = multipart(parts if file_first else parts[::-1])
    response = await client.post(UPLOAD, content=body, headers={"Content-Type": ctype})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["upload_type"] == "profile"


async def test_type_comes_from_content_not_name(client: httpx.AsyncClient) -> None:
    response = await upload(client, png_bytes(), "photo.jpg", part_type="image/jpeg")
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["content_type"] == "image/png"
    assert data["file_extension"] == "png"
    assert data["original_filename"] == "photo.jpg"


# -- accepted kinds ---------------------------------------------------------------------------


async def test_gif_and_webp_get_thumbnails(client: httpx.AsyncClient) -> None:
    gif = (await upload(client, gif_bytes(), "anim.gif")).json()["data"]
    assert (gif["content_type"], gif["has_thumbnail"]) == ("image/gif", True)
    thumb = await thumbnail_of(client, gif["id"])
    assert thumb.format == "GIF" and thumb.size == (120, 90)
    assert getattr(thumb, "n_frames", 1) == 1  # first frame only

    webp = (await upload(client, webp_bytes((600, 300)), "w.webp")).json()["data"]
    assert (webp["content_type"], webp["file_extension"]) == ("image/webp", "webp")
    thumb = await thumbnail_of(client, webp["id"])
    assert thumb.format == "WEBP" and thumb.size == (300, 150)


async def test_png_transparency_is_kept_in_thumbnail(client: httpx.AsyncClient) -> None:
    media_id = (await upload(client, png_bytes((640, 480)), "t.png")).json()["data"]["id"]
    thumb = await thumbnail_of(client, media_id)
    assert thumb.format == "PNG" and thumb.size == (300, 225)
    assert thumb.mode == "RGBA"
    assert thumb.getpixel((10, 100))[3] == 255  # the opaque red half
    assert thumb.getpixel((290, 100))[3] == 0  # the transparent half


async def test_text_upload_and_served_as_plain_utf8(client: httpx.AsyncClient) -> None:
    text = "\ufeffHello, wörld!\n\tSecond line\r\n".encode()
    response = await upload(client, text, "notes.txt")
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["content_type"], data["file_extension"], data["has_thumbnail"]) == ("text/plain", "txt", False)
    assert data["thumbnail_url"] is None
    served = await client.get(f"{API}/serve/{data['id']}")
    assert served.headers["content-type"] == "text/plain; charset=utf-8"
    assert served.content == text


async def test_docx_and_pdf_accepted(client: httpx.AsyncClient) -> None:
    docx = await upload(client, docx_bytes(), "cv.docx")
    assert docx.status_code == 201
    assert docx.json()["data"]["content_type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert docx.json()["data"]["has_thumbnail"] is False
    pdf = await upload(client, pdf_bytes(), "invoice.pdf")
    assert pdf.status_code == 201
    assert (pdf.json()["data"]["content_type"], pdf.json()["data"]["file_extension"]) == ("application/pdf", "pdf")


async def test_word_97_doc_accepted(client: httpx.AsyncClient) -> None:
    response = await upload(client, doc_bytes(), "letter.doc")
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert (data["content_type"], data["file_extension"]) == ("application/msword", "doc")


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (doc_bytes("Workbook"), "sheet.doc"),
        (docx_bytes(with_document=False), "notword.docx"),
        (docx_bytes(with_macros=True), "macro.docx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "broken.doc"),
    ],
    ids=["ole-excel", "zip-without-document", "docm-with-vba", "ole-broken"],
)
async def test_other_containers_refused(client, settings, media_root, content: bytes, name: str) -> None:
    response = await upload(client, content, name)
    assert_refused(response, 415, ALLOWED, settings, media_root)


# -- hostile inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (pe_bytes(), "cat.jpg"),
        (elf_bytes(), "dog.jpg"),
        (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\0" * 100, "mac.png"),
        (b"<html><script>alert(1)</script></html>", "a.txt"),
        (b'  \n<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>', "a.png"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "b.svg"),
        (b"#!/bin/sh\nrm -rf /\n", "run.txt"),
        (b"text with a \x00 NUL byte", "nul.txt"),
        (b"caf\xe9 in latin-1", "latin1.txt"),
        (b"PK\x05\x06" + b"\0" * 18, "empty.zip"),
    ],
    ids=["pe", "elf", "macho", "html", "svg-after-whitespace", "svg", "shebang", "nul", "not-utf8", "empty-zip"],
)
async def test_disguised_and_markup_content_is_refused(
    client: httpx.AsyncClient, settings, media_root: Path, content: bytes, name: str
) -> None:
    response = await upload(client, content, name, part_type="image/jpeg")
    assert_refused(response, 415, ALLOWED, settings, media_root)
    assert response.json()["errors"] == [{"field": "file", "message": "Unsupported file content"}]


async def test_markup_after_a_long_whitespace_run_is_refused(client, settings, media_root) -> None:
    # The first bytes are all whitespace; the whole-file check must still see the "<".
    response = await upload(client, b" " * 5000 + b"<html></html>", "pad.txt")
    assert_refused(response, 415, ALLOWED, settings, media_root)


async def test_executable_refused_without_reading_the_rest(client, settings, media_root) -> None:
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        prefix, ctype = multipart([("file", "evil.jpg", b"")])
        head = prefix[: prefix.index(b"\r\n\r\n") + 4]
        yield head
        for _ in range(40):
            pulled += 1
            yield pe_bytes() + b"\0" * (256 * 1024)

    response = await client.post(UPLOAD, content=body(), headers={"Content-Type": multipart([])[1]})
    assert_refused(response, 415, ALLOWED, settings, media_root)
    assert pulled < 5


async def test_truncated_jpeg(client, settings, media_root) -> None:
    data = jpeg_bytes((800, 600), quality=95)
    response = await upload(client, data[: len(data) // 2], "half.jpg")
    assert_refused(response, 400, "Invalid or corrupted image file", settings, media_root)


async def test_garbled_image_with_valid_magic(client, settings, media_root) -> None:
    response = await upload(client, b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, "g.png")
    assert_refused(response, 400, "Invalid or corrupted image file", settings, media_root)


async def test_decompression_bomb_png(client, settings, media_root) -> None:
    data = bomb_png_bytes(10_000, 10_000)
    assert len(data) < 2000
    response = await upload(client, data, "bomb.png")
    assert_refused(response, 400, "Image dimensions exceed the limit of 40000000 pixels", settings, media_root)


async def test_bomb_far_past_pillows_own_limit(client, settings, media_root) -> None:
    response = await upload(client, bomb_png_bytes(60_000, 60_000), "huge.png")
    assert_refused(response, 400, "Image dimensions exceed the limit of 40000000 pixels", settings, media_root)


async def test_pixel_limit_message_uses_the_setting(media_client, make_settings) -> None:
    async with media_client(MEDIA_MAX_PIXELS=1000) as client:
        response = await upload(client, jpeg_bytes((40, 30)), "small-but-over.jpg")
        assert response.status_code == 400
        assert response.json()["message"] == "Image dimensions exceed the limit of 1000 pixels"


async def test_hostile_filename_is_sanitized(client: httpx.AsyncClient, media_root: Path, tmp_path: Path) -> None:
    outside_before = set(files_under(tmp_path))
    body, ctype = multipart([("file", "../../etc/passwd.png", png_bytes())])
    response = await client.post(UPLOAD, content=body, headers={"Content-Type": ctype})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["original_filename"] == "passwd.png"
    media_id = data["id"]
    stored = media_root / media_id[0:2] / media_id[2:4] / f"{media_id.replace('-', '_')}.png"
    assert stored.is_file()
    new_files = set(files_under(tmp_path)) - outside_before
    assert all(p.is_relative_to(media_root) or p.name.startswith("media.db") for p in new_files)
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("..\\..\\windows\\evil\x00.png", "evil.png"),
        ("../\x00../x\x01\x1f.png", "x.png"),
        ("/", "file"),
        ("   ", "file"),
        ("ü" * 300 + ".png", "ü" * 255),
        ('my "best" café.jpg', 'my "best" café.jpg'),
        ("a%22b.png", 'a"b.png'),  # browsers send a quote as %22
    ],
)
async def test_filename_rules(client: httpx.AsyncClient, sent: str, stored: str) -> None:
    body, ctype = multipart([("file", sent, png_bytes())])
    response = await client.post(UPLOAD, content=body, headers={"Content-Type": ctype})
    assert response.status_code == 201
    assert response.json()["data"]["original_filename"] == stored


# -- size limits ----------------------------------------------------------------------------------


async def test_exact_limit_accepted_one_more_byte_refused(client, settings, media_root: Path) -> None:
    limit = settings.MEDIA_MAX_BYTES
    assert limit == 10 * 1024 * 1024
    exact = pdf_bytes()
    exact += b"\n" * (limit - len(exact))
    response = await upload(client, exact, "exact.pdf")
    assert response.status_code == 201, response.text
    assert response.json()["data"]["file_size"] == limit
    before = files_under(media_root)

    response = await upload(client, exact + b"\n", "over.pdf")
    assert response.status_code == 413
    assert response.json()["message"] == "File size exceeds maximum limit (10MB)"
    assert files_under(media_root) == before
    assert not any((media_root / ".tmp").iterdir())
    assert row_count(settings) == 1


async def test_eleven_megabyte_body(client, settings, media_root) -> None:
    response = await upload(client, jpeg_bytes() + b"\0" * (11 * 1024 * 1024), "big.jpg")
    assert_refused(response, 413, "File size exceeds maximum limit (10MB)", settings, media_root)


async def test_content_length_over_limit_refused_before_reading(client, settings, media_root) -> None:
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        pulled += 1
        yield b"x"

    oversized = settings.MEDIA_MAX_BYTES + 1024 * 1024 + 1
    response = await client.post(
        UPLOAD,
        content=body(),
        headers={"Content-Type": multipart([])[1], "Content-Length": str(oversized)},
    )
    assert_refused(response, 413, "File size exceeds maximum limit (10MB)", settings, media_root)
    assert pulled == 0


async def test_chunked_body_cut_off_at_lowered_limit(media_client, make_settings) -> None:
    settings = make_settings(MEDIA_MAX_BYTES=1024 * 1024)
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        head, _ = multipart([("file", "huge.pdf", b"")])
        yield head[: head.index(b"\r\n\r\n") + 4] + b"%PDF-1.4\n"
        for _ in range(50):  # 50 MB
            pulled += 1
            yield b"0" * (1024 * 1024)

    async with media_client(MEDIA_MAX_BYTES=1024 * 1024) as client:
        response = await client.post(UPLOAD, content=body(), headers={"Content-Type": multipart([])[1]})
    assert response.status_code == 413
    assert response.json()["message"] == "File size exceeds maximum limit (1MB)"
    assert response.headers["connection"] == "close"  # no Content-Length: not drained
    assert pulled <= 2
    assert files_under(settings.media_root) == []


async def test_fractional_limit_label(media_client) -> None:
    async with media_client(MEDIA_MAX_BYTES=1536 * 1024) as client:
        response = await upload(client, b"a" * (1536 * 1024 + 1), "t.txt")
    assert response.json()["message"] == "File size exceeds maximum limit (1.5MB)"


# -- malformed requests ------------------------------------------------------------------------


async def test_malformed_uploads(client, settings, media_root) -> None:
    cases: list[tuple[bytes, str, str]] = []
    body, ctype = multipart([("type", None, b"profile")])
    cases.append((body, ctype, "No file uploaded"))
    body, ctype = multipart([("file", None, b"plain field, not a file")])
    cases.append((body, ctype, "No file uploaded"))
    body, ctype = multipart([("file", "empty.txt", b"")])
    cases.append((body, ctype, "Uploaded file is empty"))
    body, ctype = multipart([("file", "a.png", png_bytes()), ("file", "b.png", png_bytes())])
    cases.append((body, ctype, "Only one file per request"))
    body, ctype = multipart([("file", "a.png", png_bytes())])
    cases.append((body[:-40], ctype, "Invalid multipart body"))  # no closing boundary
    cases.append((b'{"file": "x"}', "application/json", "Invalid multipart body"))
    cases.append((b"garbage", "multipart/form-data", "Invalid multipart body"))  # no boundary
    cases.append((b"garbage without boundary lines", "multipart/form-data; boundary=zzz", "Invalid multipart body"))
    for content, content_type, message in cases:
        response = await client.post(UPLOAD, content=content, headers={"Content-Type": content_type})
        assert response.status_code == 400, (message, response.text)
        assert response.json()["message"] == message
    assert row_count(settings) == 0
    assert files_under(media_root) == []


async def test_client_disconnect_leaves_nothing(client, settings, media_root) -> None:
    # A raw ASGI call, so the client can go away in the middle of the body.
    app = client.app  # type: ignore[attr-defined]
    body, ctype = multipart([("file", "a.pdf", pdf_bytes() + b"0" * 600_000)])
    messages = [
        {"type": "http.request", "body": body[:300_000], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": UPLOAD,
        "raw_path": UPLOAD.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", ctype.encode()), (b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert row_count(settings) == 0
    assert files_under(media_root) == []


# -- thumbnails -------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "thumb"), [((4000, 1000), (300, 75)), ((100, 80), (100, 80)), ((90, 600), (45, 300))])
async def test_thumbnail_fits_box_and_never_enlarges(client, size, thumb) -> None:
    media_id = (await upload(client, jpeg_bytes(size), "x.jpg")).json()["data"]["id"]
    image = await thumbnail_of(client, media_id)
    assert image.size == thumb
    assert image.format == "JPEG"


async def test_exif_orientation_applied_and_metadata_stripped(client: httpx.AsyncClient, media_root: Path) -> None:
    original = exif_jpeg_bytes()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the source has GPS
    media_id = (await upload(client, original, "gps.jpg")).json()["data"]["id"]
    thumb = await thumbnail_of(client, media_id)
    assert thumb.size == (150, 300)  # upright: portrait
    top, bottom = thumb.convert("RGB").getpixel((75, 20)), thumb.convert("RGB").getpixel((75, 280))
    assert top[0] > 200 and top[2] < 60  # red on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue below
    assert dict(thumb.getexif()) == {}
    assert "exif" not in thumb.info and "xmp" not in thumb.info
    raw = (await client.get(f"{API}/serve-thumb/{media_id}")).content
    assert b"Exif" not in raw and b"TestCam" not in raw
    # the original is served untouched
    assert (await client.get(f"{API}/serve/{media_id}")).content == original


# -- credentials on upload (R1, checklist 34) -------------------------------------------------------


async def test_uploader_recorded(client: httpx.AsyncClient, token) -> None:
    seller = token("seller", sub="65a1f0c2e4b0a1b2c3d4e5f6")
    ids = {
        "seller": (await upload(client, png_bytes(), "s.png", headers=bearer(seller))).json()["data"]["id"],
        "service": (await upload(client, png_bytes(), "k.png", headers=KEY)).json()["data"]["id"],
        "anon": (await upload(client, png_bytes(), "a.png")).json()["data"]["id"],
    }
    listed = (await client.get(API, params={"limit": 100}, headers=KEY)).json()["data"]["files"]
    by_id = {f["id"]: (f["uploader_role"], f["uploader_id"]) for f in listed}
    assert by_id[ids["seller"]] == ("seller", "65a1f0c2e4b0a1b2c3d4e5f6")
    assert by_id[ids["service"]] == ("service", None)
    assert by_id[ids["anon"]] == (None, None)


async def test_bad_credentials_refused_even_when_anonymous_allowed(client, token, settings, media_root) -> None:
    expired = token("customer", expires_in=-10)
    refresh = token("customer", token_type="refresh")
    cases = [
        ({"Authorization": f"Bearer {expired}"}, 401, "Token expired"),
        ({"Authorization": f"Bearer {refresh}"}, 401, "Invalid token"),
        ({"Authorization": "Bearer not.a.jwt"}, 401, "Invalid token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "Invalid token"),
        ({"X-Service-Key": "wrong"}, 403, "Invalid or missing service key"),
    ]
    for headers, status, message in cases:
        response = await upload(client, png_bytes(), "p.png", headers=headers)
        assert (response.status_code, response.json()["message"]) == (status, message)
    assert row_count(settings) == 0
    assert files_under(media_root) == []


async def test_anonymous_upload_can_be_disabled(media_client, token) -> None:
    async with media_client(MEDIA_ALLOW_ANONYMOUS=False) as client:
        response = await upload(client, png_bytes(), "p.png")
        assert (response.status_code, response.json()["message"]) == (401, "Access token required")
        ok = await upload(client, png_bytes(), "p.png", headers=bearer(token("customer")))
        assert ok.status_code == 201


async def test_concurrent_uploads_all_stored(client: httpx.AsyncClient, media_root: Path) -> None:
    import asyncio

    responses = await asyncio.gather(*(upload(client, jpeg_bytes((300 + i, 200)), f"{i}.jpg") for i in range(12)))
    ids = [r.json()["data"]["id"] for r in responses]
    assert all(r.status_code == 201 for r in responses)
    assert len(set(ids)) == 12
    assert not any((media_root / ".tmp").iterdir())
    for media_id in ids:
        assert uuid.UUID(media_id).version == 4


async def test_upload_metrics(client: httpx.AsyncClient) -> None:
    await upload(client, png_bytes(), "ok.png")
    await upload(client, pe_bytes(), "bad.jpg")
    await upload(client, b"\xff\xd8\xff" + b"x" * 100, "broken.jpg")
    text = (await client.get("/metrics")).text
    assert 'media_uploads_total{result="ok"} 1.0' in text
    assert 'media_uploads_total{result="unsupported"} 1.0' in text
    assert 'media_uploads_total{result="invalid"} 1.0' in text
    assert "media_cleanup_deleted_total" in text


async def test_row_insert_failure_leaves_nothing(client, settings, media_root, monkeypatch) -> None:
    service = client.app.state.media

    async def broken_insert(row: dict) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(service.repo, "insert", broken_insert)
    response = await upload(client, jpeg_bytes(), "x.jpg")
    assert_refused(response, 500, "Failed to save file information", settings, media_root)


async def test_thumbnail_failure_stores_without_thumbnail(client, media_root, monkeypatch) -> None:
    from media import images

    def broken(image: Image.Image) -> images.Thumbnail:
        raise OSError("encoder missing")

    monkeypatch.setattr(images, "_thumbnail", broken)
    response = await upload(client, jpeg_bytes(), "x.jpg")
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["has_thumbnail"], data["thumbnail_url"]) == (False, None)
    fallback = await client.get(f"{API}/serve-thumb/{data['id']}")
    assert fallback.content == jpeg_bytes()
    assert len(files_under(media_root)) == 1
