"""Fixtures: the app in-process on a temporary database, and a real aiosmtpd server on a free
loopback port that records what it received and can be told to refuse."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from notifications.app import create_app
from notifications.settings import NotificationsSettings
from shared.testing import free_port, lifespan_client

SERVICE_KEY = "test-service-key"
AUTH = {"X-Service-Key": SERVICE_KEY}


def pytest_configure(config: pytest.Config) -> None:
    # The test servers allow AUTH without TLS on loopback on purpose.
    config.addinivalue_line("filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning")


def make_settings(data_dir: Path, **overrides: Any) -> NotificationsSettings:
    values: dict[str, Any] = {
        "DATA_DIR": str(data_dir),
        "SERVICE_KEY": SERVICE_KEY,
        "SMTP_LOCAL_HOSTNAME": "tests.local",
        "NOTIFY_WORKER_INTERVAL_SECONDS": 0.1,
        "SMTP_TIMEOUT_SECONDS": 5,
        "LOG_LEVEL": "warning",
    }
    values.update(overrides)
    return NotificationsSettings(_env_file=None, **values)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def app_client(data_dir: Path) -> Callable[..., Any]:
    """``async with app_client(**settings) as client`` — the app running on ``data_dir``."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(data_dir, **overrides))
        async with lifespan_client(app, headers=AUTH) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

    return run


@pytest.fixture
async def client(app_client: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client() as c:
        yield c


async def wait_for(check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``check`` until true (no wall-clock assertion: the timeout only stops a stuck test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def history_row(client: httpx.AsyncClient, history_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/history/{history_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def wait_status(client: httpx.AsyncClient, history_id: int, status: str, timeout: float = 15.0) -> dict:
    async def done() -> bool:
        return (await history_row(client, history_id))["status"] == status

    await wait_for(done, timeout=timeout, what=f"history {history_id} to become {status}")
    return await history_row(client, history_id)


def parse_eml(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


# ---------------------------------------------------------------------------- SMTP server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records messages; ``rcpt_replies`` are answered (in order) before accepting."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: list[str] = field(default_factory=list)
    always_refuse: str | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            if self.always_refuse:
                return self.always_refuse
            if self.rcpt_replies:
                return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, login))
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real aiosmtpd server in its own thread on a loopback port."""

    def __init__(
        self,
        port: int | None = None,
        *,
        credentials: tuple[str, str] | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port or free_port()
        self.recorder = SmtpRecorder()
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs.update(auth_required=True, auth_require_tls=False, authenticator=self._authenticator(credentials))
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        self.controller = Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=implicit_tls,
            server_hostname="localhost",
            **kwargs,
        )

    def _authenticator(self, credentials: tuple[str, str]):
        def authenticate(server, session, envelope, mechanism, auth_data):
            if isinstance(auth_data, LoginPassword):
                pair = (auth_data.login.decode(), auth_data.password.decode())
                self.recorder.logins.append(pair)
                return AuthResult(success=pair == credentials, handled=False, auth_data=auth_data)
            return AuthResult(success=False, handled=False)

        return authenticate

    @property
    def received(self) -> list[Received]:
        return self.recorder.received

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def smtp_settings(port: int, **extra: Any) -> dict[str, Any]:
    """A POST /smtp body pointing at a local server without TLS or auth."""
    body = {
        "host": "127.0.0.1",
        "port": port,
        "encryption": "none",
        "from_email": "shop@example.com",
        "from_name": "The Shop",
    }
    body.update(extra)
    return body


def self_signed_context(tmp_path: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for localhost / 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context
