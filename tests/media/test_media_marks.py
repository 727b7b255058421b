"""validate, marks, list and stats (4.6-4.11, 4.13; checklist 24-30, 35, 36)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.media.media_kit import (
    API,
    KEY,
    bearer,
    column_by_id,
    jpeg_bytes,
    pdf_bytes,
    png_bytes,
    set_columns,
    uploaded_id,
)


async def meta(client: httpx.AsyncClient, media_id: str) -> dict:
    return (await client.get(f"{API}/{media_id}")).json()["data"]


async def test_validate_in_order_with_both_spellings(client: httpx.AsyncClient) -> None:
    good = await uploaded_id(client, jpeg_bytes(), "product-image.jpg")
    unknown = str(uuid.uuid4())
    answers = []
    for key in ("fileIds", "ids"):
        response = await client.post(f"{API}/validate", json={key: [good, unknown, "x"]}, headers=KEY)
        assert response.status_code == 200
        assert response.json()["message"] == "File validation completed"
        answers.append(response.json()["data"])
    assert answers[0] == answers[1]
    files, summary = answers[0]["files"], answers[0]["summary"]
    assert summary == {"total": 3, "valid": 1, "invalid": 2}
    assert [f["id"] for f in files] == [good, unknown, "x"]
    first = files[0]
    assert first["valid"] is True and first["exists"] is True
    assert first["filename"] == f"{good.replace('-', '_')}.jpg"
    assert first["original_name"] == "product-image.jpg"
    assert first["file_type"] == "image/jpeg"
    assert first["url"] == f"/media/serve/{good}"
    assert first["thumbnail_url"] == f"/media/serve-thumb/{good}"
    assert first["is_used"] == 0 and isinstance(first["file_size"], int) and first["uploaded_at"].endswith("Z")
    assert files[1] == {"id": unknown, "valid": False, "exists": False, "reason": "File not found"}
    assert files[2] == {"id": "x", "valid": False, "exists": False, "reason": "Invalid UUID format"}


async def test_validate_echoes_duplicates_case_and_non_strings(client: httpx.AsyncClient) -> None:
    good = await uploaded_id(client, png_bytes(), "a.png")
    ids = [good.upper(), good, 42, None]
    response = await client.post(f"{API}/validate", json={"fileIds": ids, "ids": ["ignored"]}, headers=KEY)
    files = response.json()["data"]["files"]
    assert [f["id"] for f in files] == ids
    assert [f["valid"] for f in files] == [True, True, False, False]
    assert files[2]["reason"] == files[3]["reason"] == "Invalid UUID format"


async def test_validate_auth(client: httpx.AsyncClient, token) -> None:
    body = {"fileIds": [str(uuid.uuid4())]}
    url = f"{API}/validate"
    cases = [
        ({}, 401, "Access token required"),
        ({"X-Service-Key": "wrong"}, 403, "Invalid or missing service key"),
        ({"X-Service-Key": ""}, 403, "Invalid or missing service key"),
        (bearer(token("customer")), 403, "Admin access required"),
        (bearer(token("seller")), 403, "Admin access required"),
        (bearer(token("customer", expires_in=-5)), 401, "Token expired"),
        (bearer(token("admin", token_type="refresh")), 401, "Invalid token"),
    ]
    for headers, status, message in cases:
        response = await client.post(url, json=body, headers=headers)
        assert (response.status_code, response.json()["message"]) == (status, message), headers
    assert (await client.post(url, json=body, headers=bearer(token("admin")))).status_code == 200
    assert (await client.post(url, json=body, headers={"X-Service-Key": "second-key"})).status_code == 200


@pytest.mark.parametrize("path", ["validate", "bulk-mark-used"])
async def test_bulk_id_list_validation(client: httpx.AsyncClient, path: str) -> None:
    url = f"{API}/{path}"
    for body in ({"fileIds": []}, {}, {"fileIds": "abc"}, [1, 2], {"ids": []}):
        response = await client.post(url, json=body, headers=KEY)
        assert (response.status_code, response.json()["message"]) == (400, "fileIds array is required"), body
    too_many = await client.post(url, json={"fileIds": [str(uuid.uuid4()) for _ in range(101)]}, headers=KEY)
    assert too_many.status_code == 400
    assert too_many.json()["message"] == "Validation error"
    assert too_many.json()["errors"][0]["field"] == "fileIds"
    exactly = await client.post(url, json={"fileIds": [str(uuid.uuid4()) for _ in range(100)]}, headers=KEY)
    assert exactly.status_code == 200
    broken = await client.post(url, content=b"{not json", headers={**KEY, "Content-Type": "application/json"})
    assert broken.status_code == 400


async def test_bulk_mark_used(client: httpx.AsyncClient) -> None:
    good = await uploaded_id(client, jpeg_bytes(), "a.jpg")
    unknown = str(uuid.uuid4())
    response = await client.post(f"{API}/bulk-mark-used", json={"ids": [good, unknown, "bad"]}, headers=KEY)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Bulk mark as used completed"
    assert body["data"]["results"] == [
        {"id": good, "success": True, "message": "Marked as used"},
        {"id": unknown, "success": False, "message": "Media not found"},
        {"id": "bad", "success": False, "message": "Invalid UUID format"},
    ]
    assert body["data"]["summary"] == {"total": 3, "successful": 1, "failed": 2}
    assert (await meta(client, good))["is_used"] == 1
    again = await client.post(f"{API}/bulk-mark-used", json={"fileIds": [good]}, headers=KEY)
    assert again.json()["data"]["summary"] == {"total": 1, "successful": 1, "failed": 0}


async def test_bulk_mark_used_without_credentials_is_401(client: httpx.AsyncClient) -> None:
    # what the frontend's own call gets (section 5)
    response = await client.post(f"{API}/bulk-mark-used", json={"fileIds": [str(uuid.uuid4())]})
    assert (response.status_code, response.json()["message"]) == (401, "Access token required")


async def test_mark_one_used(client: httpx.AsyncClient, token) -> None:
    unknown = await client.post(f"{API}/mark-used/{uuid.uuid4()}", headers=KEY)
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Media not found or failed to update")
    bad = await client.post(f"{API}/mark-used/nope", headers=KEY)
    assert (bad.status_code, bad.json()["message"]) == (400, "Invalid media ID format")
    good = await uploaded_id(client, png_bytes(), "a.png")
    for headers in (KEY, bearer(token("admin"))):
        response = await client.post(f"{API}/mark-used/{good}", headers=headers)
        assert response.status_code == 200
        assert response.json()["message"] == "Media marked as used"
        assert response.json()["data"] == {"media_id": good}
    assert (await meta(client, good))["is_used"] == 1
    denied = await client.post(f"{API}/mark-used/{good}", headers=bearer(token("seller")))
    assert denied.status_code == 403


async def test_mark_used_bulk_count_answer(client: httpx.AsyncClient) -> None:
    a = await uploaded_id(client, png_bytes(), "a.png")
    b = await uploaded_id(client, png_bytes(), "b.png")
    unknown = str(uuid.uuid4())
    ids = [a, a.upper(), b, unknown]
    response = await client.post(f"{API}/mark-used", json={"ids": ids}, headers=KEY)
    assert response.status_code == 200
    assert response.json()["message"] == "Successfully marked 2 files as used"
    assert response.json()["data"] == {"updated_count": 2, "ids": ids}
    assert (await meta(client, b))["is_used"] == 1


async def test_mark_used_bulk_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    good = await uploaded_id(client, png_bytes(), "a.png")
    response = await client.post(f"{API}/mark-used", json={"ids": [good, "bad"]}, headers=KEY)
    assert (response.status_code, response.json()["message"]) == (400, "Invalid UUID format: bad")
    assert (await meta(client, good))["is_used"] == 0


@pytest.mark.parametrize("path", ["mark-used", "mark-not-used"])
async def test_strict_list_messages(client: httpx.AsyncClient, path: str) -> None:
    url = f"{API}/{path}"
    cases = [
        ({}, "Invalid or missing ids array"),
        ({"ids": "x"}, "Invalid or missing ids array"),
        ({"ids": []}, "No IDs provided"),
        ({"fileIds": []}, "No IDs provided"),
        ({"ids": [str(uuid.uuid4()), 7]}, "Invalid UUID format: 7"),
    ]
    for body, message in cases:
        response = await client.post(url, json=body, headers=KEY)
        assert (response.status_code, response.json()["message"]) == (400, message), body
    too_many = await client.post(url, json={"ids": [str(uuid.uuid4()) for _ in range(101)]}, headers=KEY)
    assert (too_many.status_code, too_many.json()["message"]) == (400, "Validation error")


async def test_mark_not_used(client: httpx.AsyncClient, settings) -> None:
    a = await uploaded_id(client, png_bytes(), "a.png")
    b = await uploaded_id(client, png_bytes(), "b.png")
    await client.post(f"{API}/mark-used", json={"ids": [a]}, headers=KEY)
    set_columns(settings.database_path, b, unused_since="2020-01-01T00:00:00Z")
    response = await client.post(f"{API}/mark-not-used", json={"fileIds": [a, b]}, headers=KEY)
    assert response.status_code == 200
    assert response.json()["message"] == "Successfully marked 2 files as not used"
    assert response.json()["data"]["updated_count"] == 2
    rows = column_by_id(settings.database_path, "unused_since")
    assert rows[b] == "2020-01-01T00:00:00Z"  # already unused: keeps its start
    assert rows[a] > "2020-01-01T00:00:00Z"  # was used: starts now
    assert (await meta(client, a))["is_used"] == 0


async def test_list_validation_and_pagination(client: httpx.AsyncClient, token) -> None:
    types = [None, "profile", None]
    ids = [await uploaded_id(client, png_bytes(), f"{i}.png", upload_type=t) for i, t in enumerate(types)]
    for params in ({"limit": 101}, {"limit": 0}, {"page": 0}, {"type": "product"}, {"is_used": "true"}, {"page": "x"}):
        response = await client.get(API, params=params, headers=KEY)
        assert (response.status_code, response.json()["message"]) == (400, "Validation error"), params
        assert response.json()["errors"]
    response = await client.get(f"{API}/list", params={"page": 2, "limit": 1}, headers=bearer(token("admin")))
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Files retrieved successfully"
    assert body["data"]["pagination"] == {"page": 2, "limit": 1, "total": 3, "pages": 3, "totalPages": 3}
    assert len(body["data"]["files"]) == 1
    item = body["data"]["files"][0]
    assert {"uploader_role", "uploader_id", "is_used", "has_thumbnail"} <= set(item)
    assert "sha256" not in item and "unused_since" not in item and "thumb_filename" not in item
    everything = (await client.get(API, params={"limit": 100}, headers=KEY)).json()["data"]["files"]
    assert sorted(f["id"] for f in everything) == sorted(ids)
    profiles = (await client.get(API, params={"type": "profile"}, headers=KEY)).json()["data"]
    assert [f["id"] for f in profiles["files"]] == [ids[1]]
    await client.post(f"{API}/mark-used/{ids[0]}", headers=KEY)
    used = (await client.get(API, params={"is_used": 1}, headers=KEY)).json()["data"]["files"]
    assert [f["id"] for f in used] == [ids[0]]
    assert (await client.get(API, headers=bearer(token("seller")))).status_code == 403
    assert (await client.get(API)).status_code == 401


async def test_stats(client: httpx.AsyncClient, token, settings) -> None:
    empty = (await client.get(f"{API}/stats", headers=KEY)).json()["data"]
    assert empty["total_files"] == 0
    assert set(empty["by_upload_type"]) == {"profile", "service", "temp"}

    jpeg, pdf = jpeg_bytes(), pdf_bytes()
    a = await uploaded_id(client, jpeg, "a.jpg", upload_type="profile")
    await uploaded_id(client, jpeg, "b.jpg")
    c = await uploaded_id(client, pdf, "c.pdf")
    await client.post(f"{API}/mark-used/{a}", headers=KEY)
    set_columns(settings.database_path, c, unused_since="2020-01-01T00:00:00Z")

    response = await client.get(f"{API}/stats", headers=KEY)
    assert response.status_code == 200
    assert response.json()["message"] == "Media statistics retrieved"
    data = response.json()["data"]
    assert data["total_files"] == 3
    assert data["total_bytes"] == 2 * len(jpeg) + len(pdf)
    assert data["thumbnail_count"] == 2
    assert data["used"] == {"count": 1, "bytes": len(jpeg)}
    assert data["unused"] == {"count": 2, "bytes": len(jpeg) + len(pdf)}
    assert data["cleanup_eligible"] == {"count": 1, "bytes": len(pdf)}
    assert data["by_upload_type"] == {
        "profile": {"count": 1, "bytes": len(jpeg)},
        "service": {"count": 0, "bytes": 0},
        "temp": {"count": 2, "bytes": len(jpeg) + len(pdf)},
    }
    assert data["by_content_type"] == {
        "image/jpeg": {"count": 2, "bytes": 2 * len(jpeg)},
        "application/pdf": {"count": 1, "bytes": len(pdf)},
    }


async def test_stats_is_service_key_only(client: httpx.AsyncClient, token) -> None:
    only_admin = await client.get(f"{API}/stats", headers=bearer(token("admin")))
    assert (only_admin.status_code, only_admin.json()["message"]) == (401, "Invalid or missing service key")
    wrong = await client.get(f"{API}/stats", headers={"X-Service-Key": "nope"})
    assert (wrong.status_code, wrong.json()["message"]) == (403, "Invalid or missing service key")
