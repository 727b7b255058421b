"""The rules: templates, SMTP settings, sending with its attempts and retries, history answers.

No HTTP types here; failures the caller must see are the shared ``AppError`` subclasses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from email.errors import MessageError
from email.utils import make_msgid
from typing import Any

from markupsafe import escape
from prometheus_client import CollectorRegistry, Counter, Gauge

from notifications.crypto import PasswordBox, PasswordUndecryptable
from notifications.db import fmt, now_text, utcnow
from notifications.delivery import (
    Content,
    Outcome,
    SmtpTarget,
    Transport,
    build_message,
    compose,
    send_smtp,
    serialize,
    write_eml,
)
from notifications.rendering import SOURCES, Kind, Renderer, RenderError, build_context
from notifications.repository import (
    TEMPLATE_ROW,
    DuplicateCode,
    DuplicateIdempotencyKey,
    HistoryFilter,
    Repository,
    Row,
)
from notifications.schemas import SendRequest, SmtpInput, TemplateInput
from notifications.settings import NotificationsSettings
from shared.responses import BadGateway, BadRequest, Conflict, NotFound, ValidationFailed
from shared.validation import pagination

log = logging.getLogger("notifications")

LEASE_MARGIN_SECONDS = 30.0


# ---------------------------------------------------------------------------- answers


def template_answer(row: Row) -> dict[str, Any]:
    return {k: row[k] for k in ("id", *TEMPLATE_ROW)}


def smtp_answer(row: Row) -> dict[str, Any]:
    answer = {
        k: row[k] for k in ("id", "host", "port", "username", "encryption", "from_email", "from_name", "is_active")
    }
    answer["has_password"] = bool(row["password_encrypted"])
    answer["created_at"], answer["updated_at"] = row["created_at"], row["updated_at"]
    return answer


_SENSITIVE_KEY = re.compile(r"token|password|passwd|secret|reset|verif", re.IGNORECASE)
REDACTED = "[redacted]"
_MIN_SECRET_CHARS = 6


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings_in(v)]
    return []


def _redact_value(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            if _SENSITIVE_KEY.search(str(key)):
                secrets.extend(s for s in _strings_in(inner) if len(s) >= _MIN_SECRET_CHARS)
                out[key] = REDACTED
            else:
                out[key] = _redact_value(inner, secrets)
        return out
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    return value


def history_answer(row: Row, *, detail: bool = False) -> dict[str, Any]:
    """A history row as answered (R7): sensitive data values and their traces in the content redacted."""
    secrets: list[str] = []
    try:
        variables = json.dumps(
            _redact_value(json.loads(row["variables"]), secrets), separators=(",", ":"), ensure_ascii=False
        )
    except ValueError:
        variables = "{}"
    needles = sorted({form for s in secrets for form in (s, str(escape(s)))}, key=len, reverse=True)

    def scrub(text: str | None) -> str | None:
        if not text:
            return text
        for needle in needles:
            text = text.replace(needle, REDACTED)
        return text

    answer: dict[str, Any] = {
        "id": row["id"],
        "template_code": row["template_code"],
        "recipient_email": row["recipient_email"],
        "recipient_name": row["recipient_name"],
        "subject": scrub(row["subject"]),
        "status": row["status"],
        "transport": row["transport"],
        "attempts": row["attempts"],
        "next_attempt_at": row["next_attempt_at"],
        "variables": variables,
        "missing_variables": json.loads(row["missing_variables"] or "[]"),
        "sent_at": row["sent_at"],
        "error_message": scrub(row["error_message"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    if detail:
        answer["body_html"] = scrub(row["body_html"])
        answer["body_text"] = scrub(row["body_text"])
        answer["message_id"] = row["message_id"]
    return answer


def send_answer(row: Row) -> dict[str, Any]:
    """The ``data`` of a 200/202 ``/send`` answer."""
    missing = json.loads(row["missing_variables"] or "[]")
    if row["status"] == "sent":
        return {
            "id": row["id"],
            "status": "sent",
            "transport": row["transport"],
            "sent_at": row["sent_at"],
            "missing_variables": missing,
        }
    return {
        "id": row["id"],
        "status": row["status"],
        "transport": row["transport"],
        "attempts": row["attempts"],
        "next_attempt_at": row["next_attempt_at"],
        "error_message": row["error_message"],
        "missing_variables": missing,
    }


# ---------------------------------------------------------------------------- metrics


class DeliveryMetrics:
    """``notifications_emails_total{status,transport}`` (one per attempt, by the row's resulting
    status) and the ``notifications_queue_pending`` gauge."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.emails = Counter(
            "notifications_emails_total",
            "Email attempts by resulting status and transport",
            ["status", "transport"],
            registry=registry,
        )
        self.pending = Gauge("notifications_queue_pending", "History rows waiting for delivery", registry=registry)


# ---------------------------------------------------------------------------- the service


class Notifier:
    """Everything the API and the worker do, over one repository."""

    def __init__(
        self,
        *,
        settings: NotificationsSettings,
        repo: Repository,
        renderer: Renderer,
        box: PasswordBox,
        metrics: DeliveryMetrics,
        local_hostname: str | None = None,
    ) -> None:
        self.settings = settings
        self.repo = repo
        self.renderer = renderer
        self.box = box
        self.metrics = metrics
        self.local_hostname = local_hostname

    # ----------------------------------------------------------------- templates

    async def list_templates(self) -> list[dict[str, Any]]:
        return [template_answer(r) for r in await self.repo.list_templates()]

    async def get_template(self, *, template_id: int) -> dict[str, Any]:
        row = await self.repo.get_template(template_id=template_id)
        if row is None:
            raise NotFound("Template not found")
        return template_answer(row)

    async def create_template(self, *, data: TemplateInput) -> dict[str, Any]:
        sources: dict[Kind, str | None] = {
            "subject": data.subject,
            "body_html": data.body_html,
            "body_text": data.body_text,
        }
        await self._vet(sources)
        variables = data.variables
        if variables is None:
            variables = self.renderer.derived_variables(sources)
        now = now_text()
        values = {
            "name": data.name,
            "code": data.code,
            "subject": data.subject,
            "body_html": data.body_html,
            "body_text": data.body_text,
            "variables": json.dumps(variables),
            "is_active": data.is_active,
            "created_at": now,
            "updated_at": now,
        }
        try:
            new_id = await self.repo.insert_template(values=values)
        except DuplicateCode:
            raise Conflict(
                "Template code already exists", errors=[{"field": "code", "message": "Template code already exists"}]
            ) from None
        return await self.get_template(template_id=new_id)

    async def update_template(self, *, template_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        row = await self.repo.get_template(template_id=template_id)
        if row is None:
            raise NotFound("Template not found")
        merged = {**row, **changes}
        if not any(isinstance(merged[k], str) and merged[k].strip() for k in ("body_html", "body_text")):
            raise ValidationFailed.field("body_html", "At least one of body_html and body_text must be non-empty")
        await self._vet({kind: changes[kind] for kind in SOURCES if kind in changes})
        values = dict(changes)
        if "variables" in values:
            values["variables"] = json.dumps(values["variables"])
        values["updated_at"] = now_text()
        if not await self.repo.update_template(template_id=template_id, changes=values):
            raise NotFound("Template not found")
        return await self.get_template(template_id=template_id)

    async def delete_template(self, *, template_id: int) -> None:
        if not await self.repo.delete_template(template_id=template_id):
            raise NotFound("Template not found")

    def _context(self, data: Mapping[str, Any], *, recipient_name: str, recipient_email: str) -> dict[str, Any]:
        return build_context(
            data,
            now=utcnow(),
            company_name=self.settings.NOTIFY_COMPANY_NAME,
            support_email=self.settings.NOTIFY_SUPPORT_EMAIL,
            recipient_name=recipient_name,
            recipient_email=recipient_email,
        )

    async def _vet(self, sources: Mapping[Kind, str | None]) -> None:
        """Syntax and a trial render with the built-ins only (off the event loop): a template
        that cannot render within the budget even without data is refused when stored."""
        context = self._context({}, recipient_name="", recipient_email="recipient@example.com")
        errors = await self.renderer.vet(sources, context)
        if errors:
            raise ValidationFailed(errors=errors)

    # ----------------------------------------------------------------- SMTP settings

    async def get_smtp(self) -> dict[str, Any]:
        row = await self.repo.get_smtp()
        if row is None:
            raise NotFound("No SMTP configuration found")
        return smtp_answer(row)

    async def has_smtp(self) -> bool:
        return await self.repo.get_smtp() is not None

    async def save_smtp(self, *, data: SmtpInput, only_if_empty: bool = False) -> dict[str, Any]:
        """Create or replace the settings. ``password``: None keeps the stored one, ``""`` removes it."""
        keep = data.password is None
        token = self.box.encrypt(data.password) if data.password else None
        await self.repo.save_smtp(
            values={
                "host": data.host,
                "port": data.port,
                "username": data.username,
                "password_encrypted": token,
                "encryption": data.encryption,
                "from_email": data.from_email,
                "from_name": data.from_name,
                "now": now_text(),
            },
            keep_password=keep,
            only_if_empty=only_if_empty,
        )
        return await self.get_smtp()

    # ----------------------------------------------------------------- sending

    async def send(self, *, request: SendRequest, idempotency_key: str | None = None) -> Row:
        """Render, store and try once. Returns the row when sent or queued; raises 400/404/502 otherwise."""
        if idempotency_key is not None:
            earlier = await self.repo.find_by_idempotency_key(
                key=idempotency_key, template_code=request.template, recipient_email=request.recipient_email
            )
            if earlier is not None:
                return self._replay(earlier)
        template = await self.repo.get_active_template(code=request.template)
        if template is None:
            raise NotFound("Template not found")

        now = utcnow()
        sources = {kind: template[kind] for kind in SOURCES}
        context = build_context(
            request.data,
            now=now,
            company_name=self.settings.NOTIFY_COMPANY_NAME,
            support_email=self.settings.NOTIFY_SUPPORT_EMAIL,
            recipient_name=request.recipient_name,
            recipient_email=request.recipient_email,
        )
        smtp = await self.repo.get_smtp()  # one read serves the Message-ID domain and the first attempt
        from_email = smtp["from_email"] if smtp else self.settings.SMTP_FROM_EMAIL
        values: dict[str, Any] = {
            "template_code": request.template,
            "recipient_email": request.recipient_email,
            "recipient_name": request.recipient_name,
            "variables": json.dumps(request.data, separators=(",", ":"), ensure_ascii=False),
            "message_id": make_msgid(domain=_message_id_domain(from_email)),
            "idempotency_key": idempotency_key,
            "created_at": fmt(now),
            "updated_at": fmt(now),
        }
        try:
            rendered = await self.renderer.render_async(sources, context)
        except RenderError as exc:
            message = f"Template rendering failed: {exc}"
            values.update(status="failed", error_message=message)
            row, inserted = await self._insert(values, idempotency_key)
            if not inserted:
                return self._replay(row)
            self.metrics.emails.labels("failed", "none").inc()
            raise BadRequest(message) from None

        values.update(
            subject=rendered.subject,
            body_html=rendered.body_html,
            body_text=rendered.body_text,
            missing_variables=json.dumps(rendered.missing_variables),
            status="pending",
            locked_until=fmt(
                now + timedelta(seconds=self.settings.NOTIFY_SYNC_SEND_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)
            ),
        )
        row, inserted = await self._insert(values, idempotency_key)
        if inserted:
            row = await self.attempt(row=row, smtp=smtp, budget=self.settings.NOTIFY_SYNC_SEND_TIMEOUT_SECONDS)
        return self._replay(row)

    async def _insert(self, values: dict[str, Any], idempotency_key: str | None) -> tuple[Row, bool]:
        """Insert the row → (row, True); when the same idempotent request got there first → (its row, False)."""
        try:
            new_id = await self.repo.insert_history(values=values)
        except DuplicateIdempotencyKey:
            assert idempotency_key is not None
            earlier = await self.repo.find_by_idempotency_key(
                key=idempotency_key, template_code=values["template_code"], recipient_email=values["recipient_email"]
            )
            assert earlier is not None
            return earlier, False
        row = {
            "id": new_id,
            "subject": None,
            "body_html": None,
            "body_text": None,
            "missing_variables": "[]",
            "transport": None,
            "attempts": 0,
            "next_attempt_at": None,
            "locked_until": None,
            "sent_at": None,
            "error_message": None,
            **values,
        }
        return row, True

    @staticmethod
    def _replay(row: Row) -> Row:
        """The answer a row's state calls for: itself when sent or pending, else its error."""
        if row["status"] != "failed":
            return row
        message = row["error_message"] or "Email delivery failed"
        if row["subject"] is None:  # rendering failed: nothing was ever sent
            raise BadRequest(message)
        raise BadGateway(message)

    # ----------------------------------------------------------------- attempts

    async def attempt(self, *, row: Row, smtp: Row | None, budget: float) -> Row:
        """One delivery attempt of a claimed row with the current SMTP settings (None: the file
        transport), bounded by ``budget`` seconds; stores and returns the result.

        A cancellation (shutdown) stores nothing: the row keeps its lease and is taken again later.
        """
        transport: Transport = "smtp" if smtp else "file"
        try:
            async with asyncio.timeout(budget):
                outcome = await self._deliver(row, smtp, timeout=min(budget, self.settings.SMTP_TIMEOUT_SECONDS))
        except TimeoutError:
            outcome = Outcome(
                "transient",
                transport,
                f"SMTP timeout after {budget:g} s"
                if transport == "smtp"
                else f"Outbox write timed out after {budget:g} s",
            )
        except Exception as exc:  # an unforeseen failure still counts as an attempt, so it stays bounded
            log.exception("email %s: delivery attempt failed unexpectedly", row["id"])
            outcome = Outcome("transient", transport, f"Delivery failed: {type(exc).__name__}")

        now = utcnow()
        attempts = row["attempts"] + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "transport": outcome.transport,
            "updated_at": fmt(now),
            "next_attempt_at": None,
        }
        if outcome.kind == "sent":
            values.update(status="sent", sent_at=fmt(now), error_message=None)
        elif outcome.kind == "permanent" or attempts >= self.settings.NOTIFY_MAX_ATTEMPTS:
            values.update(status="failed", error_message=outcome.error)
        else:
            delay = min(
                self.settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** (attempts - 1),
                self.settings.NOTIFY_RETRY_MAX_DELAY_SECONDS,
            )
            values.update(
                status="pending", error_message=outcome.error, next_attempt_at=fmt(now + timedelta(seconds=delay))
            )
        await self.repo.record_attempt(history_id=row["id"], values=values)
        self.metrics.emails.labels(values["status"], outcome.transport).inc()
        if outcome.kind != "sent":
            log.warning(
                "email %s attempt %s via %s: %s (now %s)",
                row["id"],
                attempts,
                outcome.transport,
                outcome.error,
                values["status"],
            )
        return {**row, **values, "locked_until": None}

    async def _deliver(self, row: Row, smtp: Row | None, *, timeout: float) -> Outcome:
        transport: Transport = "smtp" if smtp else "file"
        content = Content(
            message_id=row["message_id"],
            recipient_email=row["recipient_email"],
            recipient_name=row["recipient_name"],
            subject=row["subject"] or "",
            body_html=row["body_html"],
            body_text=row["body_text"],
        )
        from_name = smtp["from_name"] if smtp else self.settings.SMTP_FROM_NAME
        from_email = smtp["from_email"] if smtp else self.settings.SMTP_FROM_EMAIL
        try:
            data = await compose(
                lambda: serialize(build_message(content, from_name=from_name, from_email=from_email, now=utcnow()))
            )
        except (ValueError, TypeError, IndexError, MessageError) as exc:
            return Outcome("permanent", transport, f"Message could not be built: {exc}")
        if smtp is None:
            return await write_eml(data, outbox=self.settings.outbox_dir, history_id=row["id"])
        password = None
        if smtp["password_encrypted"]:
            try:
                password = self.box.decrypt(smtp["password_encrypted"])
            except PasswordUndecryptable as exc:
                return Outcome("transient", "smtp", str(exc))
        target = SmtpTarget(
            host=smtp["host"],
            port=smtp["port"],
            username=smtp["username"],
            password=password,
            encryption=smtp["encryption"],
        )
        return await send_smtp(
            data,
            target,
            sender=from_email,
            recipient=row["recipient_email"],
            timeout=timeout,
            verify_certs=self.settings.SMTP_TLS_VERIFY,
            local_hostname=self.local_hostname,
        )

    async def run_due(self) -> int:
        """One worker pass: claim up to a batch of due rows and attempt them concurrently.

        Returns how many due rows were seen (a full batch means: look again at once).
        """
        now = now_text()
        lease_until = now_text(self.settings.SMTP_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)
        due = await self.repo.due_ids(now=now, limit=self.settings.NOTIFY_WORKER_BATCH)
        rows: list[Row] = []
        for history_id in due:
            if await self.repo.claim(history_id=history_id, now=now, lease_until=lease_until):
                row = await self.repo.get_history(history_id=history_id)
                if row is not None:
                    rows.append(row)
        if not rows:
            return len(due)
        smtp = await self.repo.get_smtp()
        results = await asyncio.gather(
            *(self.attempt(row=row, smtp=smtp, budget=self.settings.SMTP_TIMEOUT_SECONDS) for row in rows),
            return_exceptions=True,
        )
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("email %s: attempt crashed: %r", row["id"], result)
        return len(due)

    async def refresh_pending_gauge(self) -> int:
        pending = await self.repo.count_pending()
        self.metrics.pending.set(pending)
        return pending

    # ----------------------------------------------------------------- history

    async def list_history(self, *, where: HistoryFilter, page: int, limit: int) -> dict[str, Any]:
        rows, total = await self.repo.list_history(where=where, limit=limit, offset=(page - 1) * limit)
        return {"history": [history_answer(r) for r in rows], "pagination": pagination(page, limit, total)}

    async def get_history(self, *, history_id: int) -> dict[str, Any]:
        row = await self.repo.get_history(history_id=history_id)
        if row is None:
            raise NotFound("History record not found")
        return history_answer(row, detail=True)


def _message_id_domain(from_email: str) -> str:
    domain = from_email.rpartition("@")[2]
    return domain if domain and domain.isascii() and domain.replace(".", "").replace("-", "").isalnum() else "localhost"
