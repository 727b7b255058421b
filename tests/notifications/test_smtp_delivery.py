"""Delivery through a real aiosmtpd server: checklist 24–31, TLS modes, timeouts, the retry worker."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from tests.notifications.conftest import (
    SmtpServer,
    free_port,
    history_row,
    self_signed_context,
    smtp_settings,
    wait_for,
    wait_status,
)

WELCOME = {
    "template": "welcome_customer",
    "recipient_email": "jane@example.com",
    "recipient_name": "Jane Doe",
    "data": {"customer_name": "<b>Jane</b>", "login_url": "https://shop.test/login"},
}
FAST_RETRY = {"NOTIFY_RETRY_BASE_SECONDS": 1, "NOTIFY_WORKER_INTERVAL_SECONDS": 0.1}


def near(text: str, seconds: float, slack: float = 3.0) -> bool:
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return abs((moment - datetime.now(UTC)).total_seconds() - seconds) <= slack


async def test_delivers_multipart_message(client, smtp_server):
    assert (await client.post("/api/v1/smtp", json=smtp_settings(smtp_server.port))).status_code == 200
    response = await client.post("/api/v1/send", json=WELCOME)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "sent" and data["transport"] == "smtp"
    assert len(smtp_server.received) == 1
    got = smtp_server.received[0]
    assert got.rcpt_tos == ["jane@example.com"] and got.mail_from == "shop@example.com"
    msg = got.message
    assert msg["Subject"] == "Welcome to E-commerce Platform, <b>Jane</b>!"
    assert msg["From"] == "The Shop <shop@example.com>" and msg["To"] == "Jane Doe <jane@example.com>"
    text, html = [p.get_content() for p in msg.iter_parts()]
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "Welcome, <b>Jane</b>!" in text
    assert "<h2>Welcome, &lt;b&gt;Jane&lt;/b&gt;!</h2>" in html and "<b>Jane" not in html
    row = await history_row(client, data["id"])
    assert row["message_id"] == msg["Message-ID"] and row["attempts"] == 1 and row["transport"] == "smtp"


async def test_authenticates_with_stored_credentials(client):
    server = SmtpServer(credentials=("mailer", "pa55word")).start()
    try:
        await client.post("/api/v1/smtp", json=smtp_settings(server.port, username="mailer", password="pa55word"))
        response = await client.post("/api/v1/send", json=WELCOME)
        assert response.status_code == 200, response.text
        assert server.recorder.logins == [("mailer", "pa55word")]
        assert len(server.received) == 1 and server.received[0].login == "mailer"
        await client.post("/api/v1/smtp", json=smtp_settings(server.port, username="mailer", password="wrong"))
        refused = await client.post("/api/v1/send", json=WELCOME)
        assert refused.status_code == 502
        assert refused.json()["message"].startswith("SMTP Error: 535")
    finally:
        server.stop()


async def test_closed_port_queues_for_retry(client):
    await client.post("/api/v1/smtp", json=smtp_settings(free_port()))
    response = await client.post("/api/v1/send", json=WELCOME)
    assert response.status_code == 202
    body = response.json()
    assert body["message"] == "Email queued for retry"
    data = body["data"]
    assert data["status"] == "pending" and data["attempts"] == 1 and data["transport"] == "smtp"
    assert data["error_message"] == "SMTP connection failed: [Errno 111] Connection refused"
    assert near(data["next_attempt_at"], 30)
    row = await history_row(client, data["id"])
    assert row["status"] == "pending" and row["attempts"] == 1 and near(row["next_attempt_at"], 30)
    health = (await client.get("/health")).json()
    assert health["pending"] == 1 and health["transport"] == "smtp"


async def test_worker_delivers_once_server_is_up(app_client):
    port = free_port()
    async with app_client(**FAST_RETRY) as c:
        await c.post("/api/v1/smtp", json=smtp_settings(port))
        queued = await c.post("/api/v1/send", json=WELCOME)
        assert queued.status_code == 202
        server = SmtpServer(port).start()
        try:
            row = await wait_status(c, queued.json()["data"]["id"], "sent")
            assert row["attempts"] == 2 and row["transport"] == "smtp" and row["next_attempt_at"] is None
            assert row["error_message"] is None and row["sent_at"]
            await asyncio.sleep(0.5)  # let the worker run a few more passes
            assert len(server.received) == 1
        finally:
            server.stop()


async def test_temporary_refusal_then_accept_delivers_exactly_once(app_client, smtp_server):
    smtp_server.recorder.rcpt_replies.append("451 4.3.0 Mailbox busy, try again later")
    async with app_client(**FAST_RETRY) as c:
        await c.post("/api/v1/smtp", json=smtp_settings(smtp_server.port))
        response = await c.post("/api/v1/send", json=WELCOME)
        assert response.status_code == 202
        assert response.json()["data"]["error_message"] == "SMTP Error: 451 4.3.0 Mailbox busy, try again later"
        row = await wait_status(c, response.json()["data"]["id"], "sent")
        assert row["attempts"] == 2
        await asyncio.sleep(0.5)
        assert len(smtp_server.received) == 1
        assert smtp_server.received[0].message["Message-ID"] == (await history_row(c, row["id"]))["message_id"]


async def test_permanent_refusal_is_final_at_once(app_client, smtp_server):
    smtp_server.recorder.always_refuse = "550 5.1.1 No such user here"
    async with app_client(**FAST_RETRY) as c:
        await c.post("/api/v1/smtp", json=smtp_settings(smtp_server.port))
        response = await c.post("/api/v1/send", json=WELCOME)
        assert response.status_code == 502
        assert response.json() == {"success": False, "message": "SMTP Error: 550 5.1.1 No such user here"}
        history = (await c.get("/api/v1/history")).json()["data"]["history"]
        assert history[0]["status"] == "failed"
        assert history[0]["error_message"] == "SMTP Error: 550 5.1.1 No such user here"
        smtp_server.recorder.always_refuse = None
        await asyncio.sleep(1.5)  # the worker runs every 0.1 s: it must leave the row alone
        row = await history_row(c, history[0]["id"])
        assert row["status"] == "failed" and row["attempts"] == 1
        assert smtp_server.received == []


async def test_bounded_attempts(app_client):
    async with app_client(NOTIFY_MAX_ATTEMPTS=2, **FAST_RETRY) as c:
        await c.post("/api/v1/smtp", json=smtp_settings(free_port()))
        response = await c.post("/api/v1/send", json=WELCOME)
        assert response.status_code == 202
        row = await wait_status(c, response.json()["data"]["id"], "failed")
        assert row["attempts"] == 2 and row["next_attempt_at"] is None
        assert row["error_message"].startswith("SMTP connection failed")


async def test_single_attempt_answers_502_with_last_error(app_client):
    async with app_client(NOTIFY_MAX_ATTEMPTS=1) as c:
        await c.post("/api/v1/smtp", json=smtp_settings(free_port()))
        response = await c.post("/api/v1/send", json=WELCOME)
        assert response.status_code == 502
        assert response.json()["message"] == "SMTP connection failed: [Errno 111] Connection refused"
        assert (await c.get("/api/v1/history?status=failed")).json()["data"]["pagination"]["total"] == 1


async def test_queued_row_survives_restart(app_client):
    port = free_port()
    async with app_client() as c:  # default 30 s backoff: nothing is retried in this instance
        await c.post("/api/v1/smtp", json=smtp_settings(port))
        queued = (await c.post("/api/v1/send", json=WELCOME)).json()["data"]
    server = SmtpServer(port).start()
    try:
        async with app_client(**FAST_RETRY) as c:
            with sqlite3.connect(c.app.state.settings.database_path) as db:  # make the retry due now
                db.execute(
                    "UPDATE email_history SET next_attempt_at = ?", (datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),)
                )
            row = await wait_status(c, queued["id"], "sent")
            assert row["attempts"] == 2
            await asyncio.sleep(0.3)
        assert len(server.received) == 1
    finally:
        server.stop()


async def test_two_workers_deliver_each_row_once(app_client):
    port = free_port()
    async with app_client(NOTIFY_MAX_ATTEMPTS=20) as c:
        await c.post("/api/v1/smtp", json=smtp_settings(port))
        ids = [
            (await c.post("/api/v1/send", json={**WELCOME, "recipient_email": f"u{i}@example.com"})).json()["data"][
                "id"
            ]
            for i in range(10)
        ]
        with sqlite3.connect(c.app.state.settings.database_path) as db:
            db.execute("UPDATE email_history SET next_attempt_at = '2000-01-01 00:00:00'")
    server = SmtpServer(port).start()
    try:
        async with (
            app_client(NOTIFY_WORKER_INTERVAL_SECONDS=0.05) as a,
            app_client(NOTIFY_WORKER_INTERVAL_SECONDS=0.05) as b,
        ):

            async def all_sent() -> bool:
                rows = (await a.get("/api/v1/history?status=sent")).json()["data"]["pagination"]["total"]
                return rows == 10

            await wait_for(all_sent, what="10 rows sent")
            await asyncio.sleep(0.3)
            for history_id in ids:
                assert (await history_row(b, history_id))["attempts"] == 2
        recipients = sorted(r.rcpt_tos[0] for r in server.received)
        assert recipients == sorted(f"u{i}@example.com" for i in range(10))
        assert len({r.message["Message-ID"] for r in server.received}) == 10
    finally:
        server.stop()


async def test_row_whose_first_attempt_never_ran_is_delivered(app_client, smtp_server):
    async with app_client(**FAST_RETRY) as c:
        await c.post("/api/v1/smtp", json=smtp_settings(smtp_server.port))
        past = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%d %H:%M:%S")
        with sqlite3.connect(c.app.state.settings.database_path) as db:
            cur = db.execute(
                "INSERT INTO email_history (template_code, recipient_email, recipient_name, subject, body_text,"
                " variables, status, message_id, locked_until, created_at, updated_at)"
                " VALUES ('manual', 'x@example.com', '', 'Crash test', 'Body', '{}', 'pending', '<m1@example.com>',"
                " ?, ?, ?)",
                (past, past, past),
            )
            history_id = cur.lastrowid
        row = await wait_status(c, history_id, "sent")
        assert row["attempts"] == 1
        assert [r.message["Message-ID"] for r in smtp_server.received] == ["<m1@example.com>"]


async def test_retry_uses_the_settings_current_at_that_attempt(app_client, smtp_server):
    async with app_client(**FAST_RETRY) as c:
        await c.post("/api/v1/smtp", json=smtp_settings(free_port()))
        queued = (await c.post("/api/v1/send", json=WELCOME)).json()["data"]
        await c.post("/api/v1/smtp", json=smtp_settings(smtp_server.port, from_email="new@example.com"))
        await wait_status(c, queued["id"], "sent")
        assert smtp_server.received[0].mail_from == "new@example.com"


async def test_silent_server_times_out_as_transient(app_client):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        async with app_client(NOTIFY_SYNC_SEND_TIMEOUT_SECONDS=0.5) as c:
            await c.post("/api/v1/smtp", json=smtp_settings(listener.getsockname()[1]))
            response = await c.post("/api/v1/send", json=WELCOME)
            assert response.status_code == 202
            assert "timeout" in response.json()["data"]["error_message"].lower()
    finally:
        listener.close()


@pytest.mark.parametrize("mode", ["tls", "ssl"])
async def test_tls_modes(client, tmp_path, mode):
    context = self_signed_context(tmp_path)
    server = SmtpServer(
        starttls=context if mode == "tls" else None, implicit_tls=context if mode == "ssl" else None
    ).start()
    try:
        await client.post("/api/v1/smtp", json=smtp_settings(server.port, encryption=mode))
        # The certificate is self-signed: verification fails, which is a transient (TLS) failure.
        verified = await client.post("/api/v1/send", json=WELCOME)
        assert verified.status_code == 202, verified.text
        assert server.received == []
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["tls", "ssl"])
async def test_tls_modes_without_verification(app_client, tmp_path, mode):
    context = self_signed_context(tmp_path)
    server = SmtpServer(
        starttls=context if mode == "tls" else None,
        implicit_tls=context if mode == "ssl" else None,
        credentials=("u", "p"),
    ).start()
    try:
        async with app_client(SMTP_TLS_VERIFY=False) as c:
            await c.post("/api/v1/smtp", json=smtp_settings(server.port, encryption=mode, username="u", password="p"))
            response = await c.post("/api/v1/send", json=WELCOME)
            assert response.status_code == 200, response.text
            assert len(server.received) == 1
    finally:
        server.stop()


async def test_encryption_none_never_upgrades(app_client, tmp_path):
    context = self_signed_context(tmp_path)
    server = SmtpServer(starttls=context).start()  # offers and requires STARTTLS
    try:
        async with app_client(SMTP_TLS_VERIFY=False) as c:
            await c.post("/api/v1/smtp", json=smtp_settings(server.port, encryption="none"))
            response = await c.post("/api/v1/send", json=WELCOME)
            assert response.status_code == 502  # 530 "Must issue a STARTTLS command first"
            assert response.json()["message"].startswith("SMTP Error: 530")
    finally:
        server.stop()


async def test_undecryptable_password_is_transient(app_client, smtp_server):
    async with app_client(NOTIFICATIONS_SECRET="first") as c:
        await c.post("/api/v1/smtp", json=smtp_settings(smtp_server.port, username="u", password="p"))
    async with app_client(NOTIFICATIONS_SECRET="second") as c:
        response = await c.post("/api/v1/send", json=WELCOME)
        assert response.status_code == 202
        assert response.json()["data"]["error_message"] == "SMTP password cannot be decrypted"
        assert smtp_server.received == []


async def test_unforeseen_failure_still_counts_as_an_attempt(app_client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("notifications.domain.build_message", broken)
    async with app_client(NOTIFY_MAX_ATTEMPTS=2, **FAST_RETRY) as c:
        response = await c.post("/api/v1/send", json=WELCOME)
        assert response.status_code == 202
        assert response.json()["data"]["error_message"] == "Delivery failed: RuntimeError"
        row = await wait_status(c, response.json()["data"]["id"], "failed")
        assert row["attempts"] == 2
