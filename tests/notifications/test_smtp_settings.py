"""SMTP settings: checklist 20–23, the encrypted password (R6) and settings from the environment (R8)."""

from __future__ import annotations

import sqlite3

import pytest
from cryptography.fernet import Fernet

from notifications.app import create_app
from notifications.crypto import PasswordBox, PasswordUndecryptable, derive_key
from notifications.settings import NotificationsSettings
from shared.testing import running
from tests.notifications.conftest import make_settings, smtp_settings

PASSWORD = "s3cret-Passw0rd!"


def stored_row(data_dir):
    with sqlite3.connect(data_dir / "notifications.db") as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM smtp_configs").fetchone())


async def test_no_configuration_on_fresh_database(client):
    response = await client.get("/api/v1/smtp")
    assert response.status_code == 404
    assert response.json() == {"success": False, "message": "No SMTP configuration found"}


async def test_password_encrypted_and_never_answered(client, data_dir):
    saved = await client.post(
        "/api/v1/smtp", json=smtp_settings(2525, username="mailer", password=PASSWORD, encryption="tls")
    )
    assert saved.status_code == 200
    assert saved.json()["message"] == "SMTP configuration updated successfully"
    got = await client.get("/api/v1/smtp")
    assert got.status_code == 200 and got.json()["message"] == "SMTP config retrieved"
    data = got.json()["data"]
    assert data["has_password"] is True
    assert "password" not in data and "password_encrypted" not in data
    assert set(data) == {
        "id",
        "host",
        "port",
        "username",
        "encryption",
        "from_email",
        "from_name",
        "is_active",
        "has_password",
        "created_at",
        "updated_at",
    }
    assert PASSWORD not in saved.text and PASSWORD not in got.text
    row = stored_row(data_dir)
    assert PASSWORD not in row["password_encrypted"]
    assert PasswordBox(make_settings(data_dir).NOTIFICATIONS_SECRET).decrypt(row["password_encrypted"]) == PASSWORD
    raw = (data_dir / "notifications.db").read_bytes()
    assert PASSWORD.encode() not in raw


async def test_password_kept_when_absent_removed_when_empty(client):
    await client.post("/api/v1/smtp", json=smtp_settings(2525, username="u", password=PASSWORD))
    again = await client.post("/api/v1/smtp", json=smtp_settings(2526, username="u"))
    assert again.json()["data"]["has_password"] is True and again.json()["data"]["port"] == 2526
    kept_null = await client.post("/api/v1/smtp", json=smtp_settings(2526, username="u", password=None))
    assert kept_null.json()["data"]["has_password"] is True
    removed = await client.post("/api/v1/smtp", json=smtp_settings(2526, username="u", password=""))
    assert removed.json()["data"]["has_password"] is False
    assert (await client.get("/api/v1/smtp")).json()["data"]["has_password"] is False


async def test_defaults_and_single_row(client):
    saved = (
        await client.post("/api/v1/smtp", json={"host": "mail.example.com", "from_email": "shop@example.com"})
    ).json()["data"]
    assert (saved["port"], saved["encryption"], saved["username"], saved["from_name"], saved["is_active"]) == (
        587,
        "tls",
        "",
        "System",
        1,
    )
    replaced = (
        await client.post(
            "/api/v1/smtp",
            json={
                "host": "10.0.0.1",
                "port": "465",
                "encryption": "ssl",
                "from_email": "b@example.com",
                "from_name": "Shop\r\nX",
            },
        )
    ).json()["data"]
    assert replaced["id"] == saved["id"] and replaced["created_at"] == saved["created_at"]
    assert (replaced["host"], replaced["port"], replaced["from_name"]) == ("10.0.0.1", 465, "ShopX")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"encryption": "starttls"}, "encryption"),
        ({"port": 70000}, "port"),
        ({"port": 0}, "port"),
        ({"port": True}, "port"),
        ({"port": "abc"}, "port"),
        ({"host": "smtp://mail.example.com"}, "host"),
        ({"host": "mail example.com"}, "host"),
        ({"host": ""}, "host"),
        ({"from_email": "nope"}, "from_email"),
        ({"from_email": None}, "from_email"),
        ({"username": 5}, "username"),
        ({"password": 5}, "password"),
        ({"from_name": "n" * 256}, "from_name"),
    ],
)
async def test_invalid_settings(client, patch, field):
    response = await client.post("/api/v1/smtp", json={**smtp_settings(25), **patch})
    assert response.status_code == 400
    assert response.json()["message"] == "Invalid SMTP settings"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await client.get("/api/v1/smtp")).status_code == 404


async def test_health_reports_transport(client):
    assert (await client.get("/health")).json()["transport"] == "file"
    await client.post("/api/v1/smtp", json=smtp_settings(25))
    assert (await client.get("/health")).json()["transport"] == "smtp"


def test_fernet_key_derivation():
    key = Fernet.generate_key()
    assert derive_key(key.decode()) == key
    derived = derive_key("any passphrase")
    Fernet(derived)  # a valid key
    assert derived != derive_key("another passphrase")
    box = PasswordBox("one")
    token = box.encrypt("pw")
    assert PasswordBox("one").decrypt(token) == "pw"
    with pytest.raises(PasswordUndecryptable):
        PasswordBox("two").decrypt(token)


def test_development_secret_refused_in_production():
    with pytest.raises(ValueError, match="NOTIFICATIONS_SECRET"):
        NotificationsSettings(_env_file=None, ENV="production", JWT_SECRET="j" * 40, SERVICE_KEY="k" * 32)
    # issue 11 item 9: a short secret is refused in production too
    with pytest.raises(ValueError, match="NOTIFICATIONS_SECRET"):
        NotificationsSettings(
            _env_file=None, ENV="production", JWT_SECRET="j" * 40, SERVICE_KEY="k" * 32, NOTIFICATIONS_SECRET="short"
        )
    NotificationsSettings(
        _env_file=None,
        ENV="production",
        JWT_SECRET="j" * 40,
        SERVICE_KEY="a-production-service-key-of-32-chars",
        NOTIFICATIONS_SECRET="a-real-notifications-secret-of-32+",
    )


async def test_settings_from_environment_created_once(app_client, data_dir):
    env = {
        "SMTP_HOST": "mail.example.com",
        "SMTP_PORT": "2525",
        "SMTP_USERNAME": "env-user",
        "SMTP_PASSWORD": PASSWORD,
        "SMTP_ENCRYPTION": "none",
        "SMTP_FROM_EMAIL": "env@example.com",
        "SMTP_FROM_NAME": "Env",
    }
    async with app_client(**env) as c:
        data = (await c.get("/api/v1/smtp")).json()["data"]
        assert (
            data["host"],
            data["port"],
            data["username"],
            data["encryption"],
            data["from_email"],
            data["has_password"],
        ) == ("mail.example.com", 2525, "env-user", "none", "env@example.com", True)
        await c.post("/api/v1/smtp", json=smtp_settings(26))
    async with app_client(**env) as c:  # an existing row is never overwritten by the environment
        assert (await c.get("/api/v1/smtp")).json()["data"]["host"] == "127.0.0.1"
    assert PASSWORD not in stored_row(data_dir)["password_encrypted"]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SMTP_PORT": "70000"}, "SMTP_PORT"),
        ({"SMTP_ENCRYPTION": "starttls"}, "SMTP_ENCRYPTION"),
        ({"SMTP_FROM_EMAIL": "bad"}, "SMTP_FROM_EMAIL"),
    ],
)
async def test_invalid_environment_stops_startup(data_dir, env, named):
    settings = make_settings(data_dir, **{"SMTP_HOST": "mail.example.com", "SMTP_FROM_EMAIL": "a@example.com", **env})
    app = create_app(settings)
    with pytest.raises(RuntimeError, match=named):
        async with running(app):
            pass
