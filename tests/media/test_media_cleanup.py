"""Delete and cleanup (4.5, 4.12, R5 sweep, R10; checklist 31-33)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from media import domain
from tests.media.media_kit import (
    API,
    KEY,
    bearer,
    files_under,
    jpeg_bytes,
    pdf_bytes,
    set_columns,
    stored_path,
    uploaded_id,
)


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def age_file(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


async def test_cleanup_removes_only_expired_unused(client: httpx.AsyncClient, settings, media_root: Path) -> None:
    old = await uploaded_id(client, jpeg_bytes(), "old.jpg")
    used = await uploaded_id(client, jpeg_bytes(), "used.jpg", upload_type="profile")
    fresh = await uploaded_id(client, jpeg_bytes(), "fresh.jpg")
    db = settings.database_path
    set_columns(db, old, unused_since=ago(hours=25), uploaded_at=ago(hours=25))
    set_columns(db, used, is_used=1, unused_since=None, uploaded_at=ago(days=30))
    set_columns(db, fresh, unused_since=ago(hours=1), uploaded_at=ago(hours=1))
    size = len(jpeg_bytes())

    response = await client.post(f"{API}/cleanup", headers=KEY)
    assert response.status_code == 200
    assert response.json()["message"] == "Cleaned up 1 temporary files"
    assert response.json()["data"] == {"deleted_count": 1, "total_found": 1, "freed_bytes": size}

    assert (await client.get(f"{API}/{old}")).status_code == 404
    assert not stored_path(media_root, old, "jpg").exists()
    assert not stored_path(media_root, old, "jpg", thumb=True).exists()
    assert (await client.get(f"{API}/serve/{used}")).status_code == 200
    assert (await client.get(f"{API}/serve/{fresh}")).status_code == 200
    again = await client.post(f"{API}/cleanup", headers=KEY)
    assert again.json()["data"] == {"deleted_count": 0, "total_found": 0, "freed_bytes": 0}
    assert "media_cleanup_deleted_total 1.0" in (await client.get("/metrics")).text


async def test_ttl_depends_on_upload_type(media_client) -> None:
    async with media_client(MEDIA_TEMP_TTL_HOURS=1, MEDIA_UNUSED_TTL_HOURS=48) as client:
        settings = client.app.state.settings  # type: ignore[attr-defined]
        temp = await uploaded_id(client, pdf_bytes(), "t.pdf")
        profile = await uploaded_id(client, pdf_bytes(), "p.pdf", upload_type="profile")
        service = await uploaded_id(client, pdf_bytes(), "s.pdf", upload_type="service")
        for media_id in (temp, profile, service):
            set_columns(settings.database_path, media_id, unused_since=ago(hours=2))
        data = (await client.post(f"{API}/cleanup", headers=KEY)).json()["data"]
        assert data["deleted_count"] == 1
        assert (await client.get(f"{API}/{temp}")).status_code == 404
        assert (await client.get(f"{API}/{profile}")).status_code == 200
        set_columns(settings.database_path, profile, unused_since=ago(hours=49))
        assert (await client.post(f"{API}/cleanup", headers=KEY)).json()["data"]["deleted_count"] == 1
        assert (await client.get(f"{API}/{service}")).status_code == 200


async def test_marked_not_used_starts_a_new_period(client: httpx.AsyncClient, settings) -> None:
    media_id = await uploaded_id(client, pdf_bytes(), "x.pdf")
    set_columns(settings.database_path, media_id, uploaded_at=ago(days=10), unused_since=None, is_used=1)
    await client.post(f"{API}/mark-not-used", json={"ids": [media_id]}, headers=KEY)
    data = (await client.post(f"{API}/cleanup", headers=KEY)).json()["data"]
    assert data["deleted_count"] == 0  # released just now, although uploaded long ago


async def test_file_marked_used_during_a_run_survives(client: httpx.AsyncClient, settings, media_root: Path) -> None:
    keep = await uploaded_id(client, jpeg_bytes(), "keep.jpg")
    drop = await uploaded_id(client, jpeg_bytes(), "drop.jpg")
    for media_id in (keep, drop):
        set_columns(settings.database_path, media_id, unused_since=ago(hours=30))
    service = client.app.state.media  # type: ignore[attr-defined]
    read_candidates = service.repo.cleanup_candidates

    async def candidates_then_a_mark(**cutoffs: str) -> list:
        found = await read_candidates(**cutoffs)
        # a caller marks one id used after the run has read its candidates
        marked = await client.post(f"{API}/mark-used/{keep}", headers=KEY)
        assert marked.status_code == 200
        return found

    service.repo.cleanup_candidates = candidates_then_a_mark
    data = (await client.post(f"{API}/cleanup", headers=KEY)).json()["data"]
    assert data == {"deleted_count": 1, "total_found": 2, "freed_bytes": len(jpeg_bytes())}
    assert (await client.get(f"{API}/serve/{keep}")).status_code == 200
    assert stored_path(media_root, keep, "jpg", thumb=True).exists()
    assert (await client.get(f"{API}/{drop}")).status_code == 404


async def test_runs_are_serialized(client: httpx.AsyncClient, settings) -> None:
    ids = [await uploaded_id(client, pdf_bytes(), f"{i}.pdf") for i in range(5)]
    for media_id in ids:
        set_columns(settings.database_path, media_id, unused_since=ago(days=3))
    answers = await asyncio.gather(*(client.post(f"{API}/cleanup", headers=KEY) for _ in range(3)))
    counts = sorted(a.json()["data"]["deleted_count"] for a in answers)
    assert counts == [0, 0, 5]


async def test_cleanup_sweeps_abandoned_temp_files(client: httpx.AsyncClient, media_root: Path) -> None:
    tmp = media_root / ".tmp"
    stale, recent = tmp / "stale.part", tmp / "recent.part"
    stale.write_bytes(b"x")
    recent.write_bytes(b"y")
    age_file(stale, 2 * 3600)
    await client.post(f"{API}/cleanup", headers=KEY)
    assert files_under(tmp) == [recent]


async def test_start_up_sweeps_temp_files(make_settings, media_client) -> None:
    settings = make_settings()
    tmp = settings.media_root / ".tmp"
    tmp.mkdir(parents=True)
    (tmp / "left-over.part").write_bytes(b"x")
    age_file(tmp / "left-over.part", 7200)
    async with media_client():
        assert files_under(tmp) == []


async def test_cleanup_auth(client: httpx.AsyncClient, token) -> None:
    assert (await client.post(f"{API}/cleanup")).status_code == 401
    assert (await client.post(f"{API}/cleanup", headers=bearer(token("seller")))).status_code == 403
    assert (await client.post(f"{API}/cleanup", headers=bearer(token("admin")))).status_code == 200


async def test_background_cleanup_runs_and_survives_a_failure(
    media_client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(domain, "FIRST_CLEANUP_DELAY_SECONDS", 0.01)
    async with media_client(MEDIA_CLEANUP_INTERVAL_SECONDS=0.02) as client:
        service = client.app.state.media  # type: ignore[attr-defined]
        real = service.repo.cleanup_candidates
        calls = 0

        async def flaky(**cutoffs: str) -> list:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("disk hiccup")
            return await real(**cutoffs)

        service.repo.cleanup_candidates = flaky
        media_id = await uploaded_id(client, pdf_bytes(), "bg.pdf")
        set_columns(service.settings.database_path, media_id, unused_since=ago(days=2))
        for _ in range(500):  # bounded wait for the timer
            if (await client.get(f"{API}/{media_id}")).status_code == 404:
                break
            await asyncio.sleep(0.01)
        assert (await client.get(f"{API}/{media_id}")).status_code == 404
        assert calls >= 2
    assert "media cleanup run failed" in caplog.text


# -- delete (checklist 33) ----------------------------------------------------------------------


async def test_delete_permissions(client: httpx.AsyncClient, token, media_root: Path) -> None:
    owner_sub = "65a1f0c2e4b0a1b2c3d4e5f6"
    owner = token("customer", sub=owner_sub)
    mine = await uploaded_id(client, jpeg_bytes(), "mine.jpg", headers=bearer(owner))

    other = await client.delete(f"{API}/{mine}", headers=bearer(token("customer")))
    assert (other.status_code, other.json()["message"]) == (403, "You can only delete your own files")
    same_id_other_role = await client.delete(f"{API}/{mine}", headers=bearer(token("seller", sub=owner_sub)))
    assert same_id_other_role.status_code == 403

    response = await client.delete(f"{API}/{mine}", headers=bearer(owner))
    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "File deleted successfully"}
    assert not stored_path(media_root, mine, "jpg").exists()
    assert not stored_path(media_root, mine, "jpg", thumb=True).exists()
    assert (await client.get(f"{API}/serve/{mine}")).status_code == 404

    anonymous = await uploaded_id(client, jpeg_bytes(), "anon.jpg")
    seller = await client.delete(f"{API}/delete/{anonymous}", headers=bearer(token("seller")))
    assert (seller.status_code, seller.json()["message"]) == (403, "You can only delete your own files")
    by_key = await client.delete(f"{API}/delete/{anonymous}", headers=KEY)
    assert by_key.status_code == 200
    second = await client.delete(f"{API}/{anonymous}", headers=KEY)
    assert (second.status_code, second.json()["message"]) == (404, "Media not found")

    used = await uploaded_id(client, jpeg_bytes(), "used.jpg")
    await client.post(f"{API}/mark-used/{used}", headers=KEY)
    assert (await client.delete(f"{API}/{used}", headers=bearer(token("admin")))).status_code == 200
    assert files_under(media_root) == []


async def test_delete_errors(client: httpx.AsyncClient, token) -> None:
    assert (await client.delete(f"{API}/{uuid.uuid4()}")).status_code == 401
    assert (await client.delete(f"{API}/{uuid.uuid4()}", headers={"X-Service-Key": "bad"})).status_code == 403
    bad = await client.delete(f"{API}/nope", headers=KEY)
    assert (bad.status_code, bad.json()["message"]) == (400, "Invalid media ID format")
    missing = await client.delete(f"{API}/{uuid.uuid4()}", headers=bearer(token("customer")))
    assert (missing.status_code, missing.json()["message"]) == (404, "Media not found")


async def test_delete_when_files_already_gone(client: httpx.AsyncClient, media_root: Path) -> None:
    media_id = await uploaded_id(client, pdf_bytes(), "x.pdf")
    stored_path(media_root, media_id, "pdf").unlink()
    assert (await client.delete(f"{API}/{media_id}", headers=KEY)).status_code == 200


async def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    """Several processes (uvicorn workers) opening one new database file at once: each opens,
    the schema is applied once."""
    from media.repository import MediaRepository

    path = tmp_path / "together" / "media.db"
    repos = [MediaRepository(path) for _ in range(4)]
    try:
        await asyncio.gather(*(repo.open() for repo in repos))
        assert all([await repo.ping() for repo in repos])
        async with repos[0].db.execute("SELECT version FROM schema_migrations") as cursor:
            assert [row[0] for row in await cursor.fetchall()] == [1]
    finally:
        for repo in repos:
            await repo.close()


async def test_two_processes_clean_up_each_file_once(client: httpx.AsyncClient, settings, media_client) -> None:
    """A second app on the same DATA_DIR and MEDIA_ROOT (another process): cleanups running in
    both at once delete each eligible row, and its files, exactly once between them."""
    ids = [await uploaded_id(client, pdf_bytes(), f"{i}.pdf") for i in range(8)]
    for media_id in ids:
        set_columns(settings.database_path, media_id, unused_since=ago(days=3))
    async with media_client() as other:
        answers = await asyncio.gather(*(c.post(f"{API}/cleanup", headers=KEY) for c in (client, other, client, other)))
    data = [a.json()["data"] for a in answers]
    assert sum(d["deleted_count"] for d in data) == 8
    assert sum(d["freed_bytes"] for d in data) == 8 * len(pdf_bytes())
    for media_id in ids:
        assert (await client.get(f"{API}/{media_id}")).status_code == 404
