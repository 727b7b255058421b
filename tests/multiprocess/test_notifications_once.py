"""Two notifications instances on one database (one of them with two uvicorn workers) and a
real aiosmtpd server: emails queued while the server is away are all delivered once it is
back, each exactly once, although every worker process polls the same due rows."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.multiprocess.conftest import KEY, Processes, wait_until
from tests.notifications.conftest import SmtpServer, free_port

AUTH = {"X-Service-Key": KEY}
EMAILS = 30


def test_every_queued_email_is_sent_once(processes: Processes, tmp_path: Path) -> None:
    smtp_port = free_port()  # nothing listens yet: every first attempt fails and is retried
    env = {
        "DATA_DIR": str(tmp_path / "notifications"),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_ENCRYPTION": "none",
        "SMTP_FROM_EMAIL": "shop@example.com",
        "SMTP_LOCAL_HOSTNAME": "tests.local",
        "SMTP_TIMEOUT_SECONDS": "5",
        "NOTIFY_SYNC_SEND_TIMEOUT_SECONDS": "2",
        "NOTIFY_RETRY_BASE_SECONDS": "0.3",
        "NOTIFY_RETRY_MAX_DELAY_SECONDS": "0.3",
        "NOTIFY_MAX_ATTEMPTS": "1000",
        "NOTIFY_WORKER_INTERVAL_SECONDS": "0.1",
    }
    first = processes.start("notifications", {**env, "WEB_CONCURRENCY": "2"})
    second = processes.start("notifications", env)
    urls = [first.url, second.url]

    queued: list[int] = []
    for i in range(EMAILS):
        response = httpx.post(
            f"{urls[i % 2]}/api/v1/send",
            json={
                "template": "welcome_customer",
                "recipient_email": f"user{i}@example.com",
                "data": {"customer_name": f"User {i}", "login_url": "https://shop.test/login"},
            },
            headers=AUTH,
            timeout=10,
        )
        assert response.status_code == 202, response.text
        queued.append(response.json()["data"]["id"])
    assert len(set(queued)) == EMAILS

    server = SmtpServer(smtp_port).start()  # now every worker process races for the due rows
    try:

        def all_sent() -> bool:
            page = httpx.get(
                f"{urls[1]}/api/v1/history", params={"status": "sent", "limit": 100}, headers=AUTH, timeout=10
            )
            return page.json()["data"]["pagination"]["total"] == EMAILS

        wait_until(all_sent, seconds=90, what="every queued email to be sent")
        details = [httpx.get(f"{urls[0]}/api/v1/history/{i}", headers=AUTH, timeout=10).json()["data"] for i in queued]
        processes.stop_all()  # no send can still be in flight when the server's mailbox is read
    finally:
        server.stop()

    received = [r.message["Message-ID"] for r in server.received]
    assert sorted(received) == sorted(d["message_id"] for d in details)  # each once, none twice
    assert sorted(r.rcpt_tos[0] for r in server.received) == sorted(f"user{i}@example.com" for i in range(EMAILS))
