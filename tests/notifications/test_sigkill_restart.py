"""SIGKILL while messages are queued loses none: the real process (``python -m notifications``)
on a free port, an SMTP server that refuses (4xx) and then is gone, a kill -9, a restart and a
real aiosmtpd server that finally accepts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.notifications.conftest import AUTH, SERVICE_KEY, SmtpServer, free_port

REPO = Path(__file__).resolve().parents[2]


def start_service(port: int, smtp_port: int, data_dir: Path, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATA_DIR": str(data_dir),
        "SERVICE_KEY": SERVICE_KEY,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_ENCRYPTION": "none",
        "SMTP_FROM_EMAIL": "shop@example.com",
        "SMTP_LOCAL_HOSTNAME": "tests.local",
        "NOTIFY_RETRY_BASE_SECONDS": "1",
        "NOTIFY_RETRY_MAX_DELAY_SECONDS": "1",
        "NOTIFY_MAX_ATTEMPTS": "50",
        "NOTIFY_WORKER_INTERVAL_SECONDS": "0.2",
        "LOG_LEVEL": "info",
    }
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "notifications"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"service exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"service did not start: {log_path.read_text()[-2000:]}")


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


def test_sigkill_with_queued_messages_loses_none(tmp_path):
    port, smtp_port = free_port(), free_port()
    data_dir, log_path = tmp_path / "data", tmp_path / "service.log"
    refusing = SmtpServer(smtp_port)
    refusing.recorder.always_refuse = "451 4.3.2 System not accepting network messages"
    refusing.start()
    process = start_service(port, smtp_port, data_dir, log_path)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        ids: list[int] = []
        with httpx.Client(headers=AUTH, timeout=10) as client:
            for i in range(10):
                if i == 5:  # the second half meets no server at all
                    refusing.stop()
                response = client.post(
                    f"{base}/send",
                    json={
                        "template": "welcome_customer",
                        "recipient_email": f"user{i}@example.com",
                        "data": {"customer_name": f"User {i}", "login_url": "https://shop.test/login"},
                    },
                )
                assert response.status_code == 202, response.text
                ids.append(response.json()["data"]["id"])
            assert client.get(f"http://127.0.0.1:{port}/health").json()["pending"] == 10
        kill(process)
        assert refusing.received == []

        accepting = SmtpServer(smtp_port).start()
        try:
            process = start_service(port, smtp_port, data_dir, log_path)
            with httpx.Client(headers=AUTH, timeout=10) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    sent = client.get(f"{base}/history", params={"status": "sent", "limit": 100}).json()["data"]
                    if sent["pagination"]["total"] == 10:
                        break
                    time.sleep(0.2)
                rows = {r["id"]: r for r in sent["history"]}
                assert sorted(rows) == sorted(ids), log_path.read_text()[-3000:]
                details = [client.get(f"{base}/history/{i}").json()["data"] for i in ids]
            time.sleep(0.5)  # a few more worker passes: nothing may be sent twice
            received_ids = [r.message["Message-ID"] for r in accepting.received]
            assert sorted(received_ids) == sorted(d["message_id"] for d in details)
            subjects = {r.rcpt_tos[0]: r.message["Subject"] for r in accepting.received}
            assert subjects == {f"user{i}@example.com": f"Welcome to E-commerce Platform, User {i}!" for i in range(10)}
        finally:
            accepting.stop()
    finally:
        kill(process)
