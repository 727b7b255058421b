"""scripts/backup and scripts/restore against the real processes: a backup taken while the
services run, restored into a fresh folder, answers the same customers, products, media
and notification history when the services start there."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.system.conftest import ROOT, running_stack
from tests.system.test_through_gateway import jpeg, wait_for

SELLER = {
    "firstName": "Ada", "lastName": "Byte", "email": "ada@example.com", "password": "secret123",
    "confirmPassword": "secret123", "phone": "1234567890", "businessName": "Ada's Lamps",
    "businessType": "individual",
    "address": {"street": "1 Main St", "city": "Austin", "state": "TX", "country": "USA", "postalCode": "73301"},
}  # fmt: skip
CUSTOMER = {"firstName": "Bob", "lastName": "Stone", "email": "bob@example.com", "password": "secret123"}


def run_script(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "backup.py"), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_backup_while_running_then_restore_into_a_fresh_folder(tmp_path):
    original, restored, saved = tmp_path / "original", tmp_path / "restored", tmp_path / "backup"
    with running_stack(original) as stack:
        async with httpx.AsyncClient(base_url=stack.gateway, timeout=10) as gw:
            assert (await gw.post("/api/customer/customers/register", json=CUSTOMER)).status_code == 201
            signup = await gw.post("/api/sellers/sellers/signup", json=SELLER)
            auth = {"Authorization": f"Bearer {signup.json()['data']['token']}"}
            image = jpeg()
            uploaded = await gw.post(
                "/api/media/media/upload", files={"file": ("a.jpg", image, "image/jpeg")},
                data={"type": "product"}, headers=auth,
            )  # fmt: skip
            image_id = uploaded.json()["data"]["id"]
            product = {"name": "Lamp", "price": 9.5, "category": "home", "stock": 3, "images": [{"media_id": image_id}]}
            created = await gw.post("/api/products/products", json=product, headers=auth)
            assert created.status_code == 201, created.text
            history = stack.urls["notifications"] + "/api/v1/history"
            key = {"X-Service-Key": "system-test-key"}

            async def welcomes_sent() -> bool:
                rows = (await gw.get(history, headers=key)).json()["data"]["history"]
                return len(rows) >= 2 and all(row["status"] == "sent" for row in rows)

            await wait_for(welcomes_sent)
            sent_before = (await gw.get(history, headers=key)).json()
        printed = run_script("backup", "--data-dir", str(original), "--into", str(saved))
        assert "databases" in printed

    run_script("restore", str(saved), "--data-dir", str(restored))
    with running_stack(restored) as stack:
        async with httpx.AsyncClient(base_url=stack.gateway, timeout=10) as gw:
            for path, who in (("/api/customer/customers/login", CUSTOMER), ("/api/sellers/sellers/login", SELLER)):
                login = await gw.post(path, json={"email": who["email"], "password": "secret123"})
                assert login.status_code == 200, login.text
            listing = (await gw.get("/api/products/products")).json()["data"]
            assert [p["name"] for p in listing] == ["Lamp"]
            served = await gw.get(f"/media/{image_id}")
            assert served.status_code == 200 and served.content == image
            history = stack.urls["notifications"] + "/api/v1/history"
            sent_after = (await gw.get(history, headers={"X-Service-Key": "system-test-key"})).json()
            assert sent_after["data"] == sent_before["data"]


def test_restore_refuses_to_overwrite_without_force(tmp_path):
    import sqlite3

    data = tmp_path / "data"
    data.mkdir()
    sqlite3.connect(data / "x.sqlite3").execute("create table t(a)").connection.commit()
    run_script("backup", "--data-dir", str(data), "--into", str(tmp_path / "b"))
    refused = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "backup.py"), "restore", str(tmp_path / "b"), "--data-dir", str(data)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "refusing to overwrite" in refused.stderr
    assert "restored 1 databases" in run_script("restore", str(tmp_path / "b"), "--data-dir", str(data), "--force")
