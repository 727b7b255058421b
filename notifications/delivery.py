"""Building the message (R4) and the two transports (R5): SMTP through aiosmtplib, or an
``.eml`` file in the outbox folder. Each attempt ends in an :class:`Outcome`: delivered,
transient (worth retrying) or permanent (a 5xx reply: final at once)."""

from __future__ import annotations

import asyncio
import email.policy
import errno as errno_names
import os
import re
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

import aiosmtplib

Encryption = Literal["tls", "ssl", "none"]
Transport = Literal["smtp", "file"]


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Literal["sent", "transient", "permanent"]
    transport: Transport
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to connect; ``password`` is the decrypted secret (never logged)."""

    host: str
    port: int
    username: str
    password: str | None
    encryption: Encryption

    def __repr__(self) -> str:  # keeps the password out of any accidental log line
        return f"SmtpTarget(host={self.host!r}, port={self.port}, encryption={self.encryption!r})"


@dataclass(frozen=True, slots=True)
class Content:
    """A history row's fixed parts of the message."""

    message_id: str
    recipient_email: str
    recipient_name: str
    subject: str
    body_html: str | None
    body_text: str | None


# ---------------------------------------------------------------------------- the message

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "ul", "ol", "table", "hr", "blockquote", "pre"}
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title"})


class _TextFromHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """Tags dropped, entities decoded, block ends → new lines."""
    parser = _TextFromHtml()
    parser.feed(html)
    parser.close()
    lines = (line.strip() for line in "".join(parser.parts).splitlines())
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip() + "\n"


def build_message(content: Content, *, from_name: str, from_email: str, now: datetime) -> EmailMessage:
    """The RFC 5322 message: headers through the email API only, text/plain before text/html."""
    addresses = (content.recipient_email, from_email)
    policy = email.policy.SMTP if all(a.isascii() for a in addresses) else email.policy.SMTPUTF8
    msg = EmailMessage(policy=policy)
    msg["From"] = Address(display_name=from_name, addr_spec=from_email)
    msg["To"] = Address(display_name=content.recipient_name, addr_spec=content.recipient_email)
    msg["Subject"] = content.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = content.message_id
    msg["Reply-To"] = from_email
    html, text = content.body_html, content.body_text
    if html and not text:
        text = html_to_text(html)
    msg.set_content(text or "", subtype="plain", charset="utf-8")
    if html:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


# ---------------------------------------------------------------------------- the transports


def _os_error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno and exc.errno in errno_names.errorcode:
        return f"[Errno {exc.errno}] {os.strerror(exc.errno)}"
    return str(exc) or type(exc).__name__


def _reply_text(text: str) -> str:
    return " ".join(text.split())


def classify_smtp_error(exc: BaseException) -> Outcome:
    """5xx replies are permanent; every other failure (4xx, network, TLS, timeout) is transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code > 0:
        text = f"SMTP Error: {exc.code} {_reply_text(exc.message)}".rstrip()
        return Outcome("permanent" if 500 <= exc.code <= 599 else "transient", "smtp", text)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return Outcome("transient", "smtp", f"SMTP timeout: {exc}" if str(exc) else "SMTP timeout")
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        return Outcome("transient", "smtp", f"SMTP connection failed: {_os_error_text(cause)}")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return Outcome("transient", "smtp", f"SMTP connection lost: {exc}")
    if isinstance(exc, ssl.SSLError):
        return Outcome("transient", "smtp", f"SMTP TLS failed: {exc}")
    if isinstance(exc, OSError):
        return Outcome("transient", "smtp", f"SMTP connection failed: {_os_error_text(exc)}")
    return Outcome("transient", "smtp", f"SMTP error: {exc}")


async def send_smtp(
    data: bytes,
    target: SmtpTarget,
    *,
    sender: str,
    recipient: str,
    timeout: float,
    verify_certs: bool,
    local_hostname: str | None,
) -> Outcome:
    """One SMTP transaction on a new connection; never raises for delivery failures.

    The message goes as the bytes already serialized (with the envelope given), so aiosmtplib
    does not copy and re-parse the headers; addresses are ASCII (see ``schemas.email_or_none``).
    """
    try:
        await aiosmtplib.send(
            data,
            sender=sender,
            recipients=[recipient],
            hostname=target.host,
            port=target.port,
            username=target.username or None,
            password=(target.password or "") if target.username else None,
            use_tls=target.encryption == "ssl",
            start_tls=target.encryption == "tls",
            validate_certs=verify_certs,
            timeout=timeout,
            local_hostname=local_hostname,
        )
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
        return classify_smtp_error(exc)
    return Outcome("sent", "smtp")


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, directory / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def serialize(msg: EmailMessage) -> bytes:
    """The message as sent and as written to the outbox (CRLF line ends)."""
    return msg.as_bytes(policy=msg.policy)


# Building and serializing a message is pure-Python CPU work (the email package parses and
# folds every header): under a burst of sends it was ~40 % of the event loop's time, during
# which no request (nor /health) was answered. It runs on this one thread instead: one thread,
# so composing adds a single contender for the GIL however many sends run at once.
_COMPOSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compose")


async def compose(make: Callable[[], bytes]) -> bytes:
    """``make()`` (build and serialize a message) on the composing thread, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_COMPOSER, make)


async def write_eml(data: bytes, *, outbox: Path, history_id: int) -> Outcome:
    """The whole message to ``<outbox>/<id>.eml`` (temp name + rename, off the event loop)."""
    try:
        await asyncio.to_thread(_write_atomically, outbox, f"{history_id}.eml", data)
    except OSError as exc:
        return Outcome("transient", "file", f"Outbox write failed: {_os_error_text(exc)}")
    return Outcome("sent", "file")
