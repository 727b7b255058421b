"""Bootstrap of the first super_admin and the demo data (checklist 10–11)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from admin.__main__ import main as admin_main
from admin.app import create_app
from admin.domain import BootstrapRefused
from shared.store import open_store
from shared.testing import lifespan_client, running
from tests.admin.conftest import API, settings_for

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "ENV": "production",
    "JWT_SECRET": "a-production-secret-of-at-least-32-characters",
    "SERVICE_KEY": "a-production-service-key-of-at-least-32-chars",
}


def run_admin(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m admin ...`` in a fresh process with only the given settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ADMIN_", "ENV", "MONGODB"))}
    base.update(
        {
            "DATA_DIR": str(tmp_path / "admin"),
            "BCRYPT_ROUNDS": "4",
            "PORT": "0",
            "LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT),
        }
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "admin", *args],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_without_admin_password_exits_before_listening(tmp_path):
    # checklist 10, first half: the real process exits non-zero and says why (never the password)
    result = run_admin(tmp_path, **PRODUCTION, ADMIN_EMAIL="root@example.com")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ADMIN_PASSWORD must be set when ENV=production" in output
    assert "listening" not in output.lower().replace("before listening", "")


@pytest.mark.parametrize(
    ("email", "password", "reason"),
    [
        (None, "Str0ng-pass!", "ADMIN_EMAIL must be set"),
        ("root@example.com", None, "ADMIN_PASSWORD must be set"),
        ("root@example.com", "admin123", "must not be the development default"),
        ("root@example.com", "Qz7#k", "breaks the password rule"),
        ("root@example.com", "x" * 51, "breaks the password rule"),
    ],
)
async def test_production_bootstrap_refusals(tmp_path, capfd, caplog, email, password, reason):
    settings = settings_for(tmp_path, **PRODUCTION, ADMIN_EMAIL=email, ADMIN_PASSWORD=password)
    app = create_app(settings)
    with pytest.raises(BootstrapRefused, match=reason):
        async with running(app):
            pass
    logged = capfd.readouterr().out + caplog.text  # root logging may or may not be ours yet
    assert reason in logged
    if password:
        assert password not in logged


async def test_production_with_both_set_starts_and_that_admin_logs_in(tmp_path, capfd, caplog):
    # checklist 10, second half
    settings = settings_for(tmp_path, **PRODUCTION, ADMIN_EMAIL=" Root@Example.com ", ADMIN_PASSWORD="Str0ng-pass!")
    async with lifespan_client(create_app(settings)) as client:
        login = await client.post(f"{API}/login", json={"email": "root@example.com", "password": "Str0ng-pass!"})
        assert login.status_code == 200
        assert login.json()["data"]["admin"]["role"] == "super_admin"
        assert login.json()["data"]["admin"]["firstName"] == "Super"
        default = await client.post(f"{API}/login", json={"email": "admin@example.com", "password": "admin123"})
        assert default.status_code == 401
    assert "Str0ng-pass!" not in capfd.readouterr().out + caplog.text


async def test_existing_admins_need_no_bootstrap_settings_in_production(tmp_path):
    async with running(create_app(settings_for(tmp_path))):
        pass  # development start: the default super_admin exists now
    async with lifespan_client(create_app(settings_for(tmp_path, **PRODUCTION))) as client:
        assert (await client.get("/health")).status_code == 200


async def test_two_instances_starting_together_create_one_admin(tmp_path):
    settings = settings_for(tmp_path, ADMIN_EMAIL="root@example.com", ADMIN_PASSWORD="together1")
    apps = [create_app(settings) for _ in range(4)]

    async def start(app):
        async with running(app):
            await asyncio.sleep(0.05)

    await asyncio.gather(*(start(app) for app in apps))
    store = open_store(mongodb_uri=None, data_dir=settings.DATA_DIR, database="admin_db")
    await store.connect()
    try:
        rows = await store.collection("admins").find({})
    finally:
        await store.close()
    assert [r["email"] for r in rows] == ["root@example.com"]


def test_demo_data_twice(tmp_path, monkeypatch, capsys):
    # checklist 11: ``python -m admin demo-data`` is ``admin.__main__.main(["demo-data"])``; run twice
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "admin"))
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    monkeypatch.setenv("ENV", "development")
    assert admin_main(["demo-data"]) == 0
    assert "admin@example.com, manager@example.com, moderator@example.com" in capsys.readouterr().out
    assert admin_main(["demo-data"]) == 0
    assert "none (all present)" in capsys.readouterr().out
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("JWT_SECRET", PRODUCTION["JWT_SECRET"])
    monkeypatch.setenv("SERVICE_KEY", PRODUCTION["SERVICE_KEY"])
    assert admin_main(["demo-data"]) == 1
    monkeypatch.setenv("ENV", "development")

    async def check() -> None:
        app = create_app(settings_for(tmp_path))
        async with lifespan_client(app) as client:
            assert await app.state.admins.repo.admins.count({}) == 3
            login = await client.post(f"{API}/login", json={"email": "manager@example.com", "password": "manager123"})
            assert login.status_code == 200 and login.json()["data"]["admin"]["role"] == "admin"

    asyncio.run(check())


async def test_demo_admins_log_in_with_their_roles(tmp_path):
    app = create_app(settings_for(tmp_path))
    async with lifespan_client(app) as client:
        admins = app.state.admins
        added = await admins.add_demo_admins()
        assert added == ["manager@example.com", "moderator@example.com"]  # the super_admin was bootstrapped
        assert await admins.add_demo_admins() == []
        assert await admins.repo.admins.count({}) == 3
        for email, password, role, permissions in (
            ("manager@example.com", "manager123", "admin", 7),
            ("moderator@example.com", "moderator123", "moderator", 2),
            ("admin@example.com", "admin123", "super_admin", 8),
        ):
            login = await client.post(f"{API}/login", json={"email": email, "password": password})
            assert login.status_code == 200
            admin = login.json()["data"]["admin"]
            assert (admin["role"], len(admin["permissions"])) == (role, permissions)
        manager = await admins.repo.get_by_email("manager@example.com")
        assert (manager["firstName"], manager["lastName"], manager["createdBy"]) == ("Platform", "Manager", None)
