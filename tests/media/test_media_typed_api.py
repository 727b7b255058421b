"""The typed media API (issue 10): a document that describes every body and answer, hostile
query values refused with 400, "newest first" true within one second, and the shape shared
with the other services (issue 12)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from media import domain
from media.app import create_app
from media.repository import MediaRepository
from shared.testing import lifespan_client
from shared.validation import MAX_PAGE
from tests.media.media_kit import API, KEY, bearer, png_bytes, upload, uploaded_id

BULK_BODIES = ("validate", "bulk-mark-used", "mark-used", "mark-not-used")


async def test_document_declares_every_body_and_answer(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    upload_body = paths["/api/v1/media/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload_body["required"] == ["file"]
    assert upload_body["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": upload_body["properties"]["file"]["description"],
    }
    for name in BULK_BODIES:
        schema = paths[f"/api/v1/media/{name}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert {"$ref": "#/components/schemas/IdsBody"} in schema["anyOf"], name
    listing = {p["name"]: p for p in paths["/api/v1/media"]["get"]["parameters"]}
    assert set(listing) == {"page", "limit", "type", "is_used"}
    assert listing["page"]["schema"]["anyOf"][0]["maximum"] == MAX_PAGE
    for path, item in paths.items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], (method, path)
            for code, answer in operation["responses"].items():
                for content in answer.get("content", {}).values():
                    assert content["schema"] != {}, (method, path, code)
            success = [c for c in operation["responses"] if c.startswith("2")]
            assert success, (method, path)
    serve = paths["/api/v1/media/serve/{media_id}"]["get"]["responses"]
    assert {"200", "206", "304", "400", "404", "416"} <= set(serve)
    assert "image/png" in serve["200"]["content"] and "application/json" not in serve["200"]["content"]
    stats = paths["/api/v1/media/stats"]["get"]["responses"]
    assert stats["200"]["content"]["application/json"]["schema"]["$ref"].endswith("Envelope_StatsPublic_")


async def test_page_past_64_bits_is_400_not_500(client: httpx.AsyncClient) -> None:
    for page in ("99999999999999999999", "9534223455524278272", str(MAX_PAGE + 1), "0", "-1", "x"):
        response = await client.get(API, params={"page": page}, headers=KEY)
        assert response.status_code == 400, page
        assert response.json()["success"] is False
        assert response.json()["errors"][0]["field"] == "page"
    last = await client.get(f"{API}/list", params={"page": MAX_PAGE, "limit": 100}, headers=KEY)
    assert last.status_code == 200 and last.json()["data"]["files"] == []


@pytest.mark.parametrize("value", [{"limit": "101"}, {"limit": "0"}, {"type": "product"}, {"is_used": "true"}])
async def test_list_filters_out_of_range_are_400(client: httpx.AsyncClient, value: dict[str, str]) -> None:
    response = await client.get(API, params=value, headers=KEY)
    assert (response.status_code, response.json()["message"]) == (400, "Validation error")


async def test_newest_first_within_one_second(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamps have second resolution; uploads that share one are listed in reverse upload
    order (the old tie-break by random id gave any order)."""
    monkeypatch.setattr(domain, "stamp", lambda moment=None: "2026-01-01T00:00:00Z")
    ids = [await uploaded_id(client, png_bytes((20 + i, 20)), f"{i}.png") for i in range(8)]
    listed = (await client.get(API, params={"limit": 100}, headers=KEY)).json()["data"]["files"]
    assert [f["id"] for f in listed] == ids[::-1]
    second = (await client.get(API, params={"limit": 3, "page": 2}, headers=KEY)).json()["data"]["files"]
    assert [f["id"] for f in second] == ids[::-1][3:6]


@pytest.mark.parametrize("path", ["validate", "bulk-mark-used"])
async def test_bulk_bodies_of_every_shape_answer_the_contract_message(client: httpx.AsyncClient, path: str) -> None:
    url = f"{API}/{path}"
    for raw in (b"", b"null", b"[]", b'"x"', b"5", b'{"fileIds": null}', b'{"fileIds": {"a": 1}}'):
        response = await client.post(url, content=raw, headers={**KEY, "Content-Type": "application/json"})
        assert (response.status_code, response.json()["message"]) == (400, "fileIds array is required"), raw
    # fileIds wins when both keys are sent, even when it is not a list
    both = await client.post(url, json={"fileIds": "abc", "ids": [str(uuid.uuid4())]}, headers=KEY)
    assert both.json()["message"] == "fileIds array is required"
    odd_items = await client.post(url, json={"ids": [None, 5, {"a": 1}, ["x"], True]}, headers=KEY)
    assert odd_items.status_code == 200
    assert [item["id"] for item in odd_items.json()["data"].get("files", odd_items.json()["data"].get("results"))] == [
        None,
        5,
        {"a": 1},
        ["x"],
        True,
    ]


@pytest.mark.parametrize("path", ["mark-used", "mark-not-used"])
async def test_strict_bodies_of_every_shape(client: httpx.AsyncClient, path: str) -> None:
    url = f"{API}/{path}"
    for raw in (b"", b"null", b"[1]", b'{"ids": "x"}'):
        response = await client.post(url, content=raw, headers={**KEY, "Content-Type": "application/json"})
        assert (response.status_code, response.json()["message"]) == (400, "Invalid or missing ids array"), raw
    empty = await client.post(url, json={"fileIds": []}, headers=KEY)
    assert empty.json()["message"] == "No IDs provided"
    odd = await client.post(url, json={"ids": [5]}, headers=KEY)
    assert odd.json()["message"] == "Invalid UUID format: 5"
    too_many = await client.post(url, json={"fileIds": [str(uuid.uuid4())] * 101}, headers=KEY)
    assert too_many.json()["errors"][0]["field"] == "fileIds"


async def test_lone_surrogate_in_an_id_is_refused_before_the_route(client: httpx.AsyncClient) -> None:
    body = b'{"fileIds": ["\\ud800"]}'
    for path in BULK_BODIES:
        response = await client.post(f"{API}/{path}", content=body, headers={**KEY, "Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["success"] is False, path


async def test_media_id_with_trailing_newline_is_malformed(client: httpx.AsyncClient) -> None:
    media_id = await uploaded_id(client, png_bytes(), "a.png")
    for url in (f"{API}/{media_id}%0A", f"{API}/serve/{media_id}%0A", f"{API}/info/{media_id}%0A"):
        response = await client.get(url)
        assert (response.status_code, response.json()["message"]) == (400, "Invalid media ID format"), url
    marked = await client.post(f"{API}/mark-used", json={"ids": [media_id + "\n"]}, headers=KEY)
    assert marked.status_code == 400


async def test_create_app_takes_a_store(make_settings, tmp_path: Path, token) -> None:
    """``create_app(settings, *, store=None, transports=None)`` like every service."""
    settings = make_settings()
    store = MediaRepository(tmp_path / "elsewhere.db")
    app = create_app(settings, store=store, transports={})
    async with lifespan_client(app) as client:
        response = await upload(client, png_bytes(), "a.png", headers=bearer(token("seller", sub="s" * 24)))
        assert response.status_code == 201
        assert app.state.media.repo is store
        assert await store.get(response.json()["data"]["id"]) is not None
    assert (tmp_path / "elsewhere.db").exists()
    assert not settings.database_path.exists()
