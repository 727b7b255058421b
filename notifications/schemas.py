"""Typed request bodies and ``*Public`` answer models, with the contract's checks and messages.

The request models are what the OpenAPI document shows and what FastAPI parses; each runs the
contract's checks in a ``before`` validator, written by hand because the contract fixes their
order and messages (aliases where the canonical spelling wins, "required" before type errors,
one ``errors`` item per bad field, ``Invalid SMTP settings`` as the top message for SMTP).
Those checks raise :class:`~shared.responses.ValidationFailed`, which pydantic lets through and
the shared handler answers. Template syntax and the rendering budget are checked by the domain,
off the event loop.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from notifications.rendering import Kind
from shared.responses import InvalidId, Pagination, ValidationFailed

SyntaxCheck = Callable[[Kind, str], str | None]
Status = Literal["pending", "sent", "failed"]
TransportName = Literal["smtp", "file"]

MAX_EMAIL_CHARS = 254
MAX_NAME_CHARS = 255
MAX_SUBJECT_CHARS = 500
MAX_BODY_BYTES = 256 * 1024
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_ID = 2**63 - 1
MAX_LIMIT = 100
ENCRYPTIONS = ("tls", "ssl", "none")

_ID = re.compile(r"[1-9][0-9]{0,18}")
_DIGITS = re.compile(r"[0-9]{1,12}")
_CODE = re.compile(r"[a-z0-9_]{2,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


class Errors:
    """Collects ``{"field", "message"}`` items; :meth:`raise_if_any` raises one 400 with all of them."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, name: str, message: str) -> None:
        self.items.append({"field": name, "message": message})

    def raise_if_any(self, message: str | None = None) -> None:
        if self.items:
            raise ValidationFailed(message, errors=self.items)


NOT_AN_OBJECT = "Body must be a JSON object"


def json_object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else 400 ``Body must be a JSON object``."""
    if not isinstance(value, dict):
        raise ValidationFailed.field("body", NOT_AN_OBJECT)
    return value


def parse_id(value: str) -> int | None:
    """An id path segment: 400 ``Invalid ID format`` unless ``^[1-9][0-9]{0,18}$``; None when too big to exist."""
    if not _ID.fullmatch(value):
        raise InvalidId()
    number = int(value)
    return number if number <= MAX_ID else None


def email_or_none(value: str) -> str | None:
    """The normalized address (syntax only, no DNS, no display name), or None when invalid.

    Non-ASCII local parts are refused (they need SMTPUTF8, which Python's email headers and many
    servers do not carry); an internationalized domain is kept in its ASCII (IDNA) form.
    """
    if len(value) > MAX_EMAIL_CHARS or _CONTROL.search(value):
        return None
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return info.ascii_email or info.normalized


def strip_controls(value: str) -> str:
    return _CONTROL.sub("", value)


def _first_sent(body: Mapping[str, Any], *names: str) -> Any:
    """The value of the first spelling that is present and not null (canonical first)."""
    for name in names:
        if body.get(name) is not None:
            return body[name]
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# ---------------------------------------------------------------------------- /send


@dataclass(frozen=True, slots=True)
class SendRequest:
    template: str
    recipient_email: str
    recipient_name: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def parse_send(body: Mapping[str, Any]) -> SendRequest:
    template = _first_sent(body, "template", "templateCode", "template_code")
    recipient = _first_sent(body, "recipient_email", "recipientEmail")
    name = _first_sent(body, "recipient_name", "recipientName")
    data = body.get("data")

    required = Errors()
    if _blank(template):
        required.add("template", "Template is required")
    if _blank(recipient):
        required.add("recipient_email", "Recipient email is required")
    required.raise_if_any("Template and recipient email are required")

    errors = Errors()
    email: str | None = None
    if not isinstance(template, str):
        errors.add("template", "Template must be a string")
    if not isinstance(recipient, str):
        errors.add("recipient_email", "Recipient email must be a string")
    else:
        email = email_or_none(recipient.strip())
        if email is None:
            errors.add("recipient_email", "Invalid email address")
    clean_name = ""
    if name is not None:
        if not isinstance(name, str):
            errors.add("recipient_name", "Recipient name must be a string")
        else:
            clean_name = strip_controls(name).strip()
            if len(clean_name) > MAX_NAME_CHARS:
                errors.add("recipient_name", f"Recipient name must be at most {MAX_NAME_CHARS} characters")
    if data is not None and not isinstance(data, dict):
        errors.add("data", "Data must be a JSON object")
    errors.raise_if_any()
    assert isinstance(template, str) and email is not None
    return SendRequest(template=template.strip(), recipient_email=email, recipient_name=clean_name, data=data or {})


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise ValidationFailed.field(
            "Idempotency-Key", f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )
    return value.strip()


# ---------------------------------------------------------------------------- templates


@dataclass(frozen=True, slots=True)
class TemplateInput:
    name: str
    code: str
    subject: str
    body_html: str | None
    body_text: str | None
    variables: list[str] | None
    is_active: int


def _check_name(errors: Errors, value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors.add("name", "Name is required" if _blank(value) else "Name must be a string")
    elif len(value.strip()) > MAX_NAME_CHARS:
        errors.add("name", f"Name must be at most {MAX_NAME_CHARS} characters")
    else:
        return value.strip()
    return None


def _check_source(errors: Errors, kind: Kind, value: Any, check: SyntaxCheck | None) -> None:
    """Type, size and Jinja syntax of one source (``value`` already known to be non-null)."""
    label = {"subject": "Subject", "body_html": "body_html", "body_text": "body_text"}[kind]
    if not isinstance(value, str):
        errors.add(kind, f"{label} must be a string")
        return
    if kind == "subject":
        if not value.strip():
            errors.add(kind, "Subject is required")
            return
        if len(value) > MAX_SUBJECT_CHARS:
            errors.add(kind, f"Subject must be at most {MAX_SUBJECT_CHARS} characters")
            return
    elif len(value.encode("utf-8")) > MAX_BODY_BYTES:
        errors.add(kind, f"{label} must be at most {MAX_BODY_BYTES // 1024} KiB")
        return
    problem = check(kind, value) if check is not None else None
    if problem:
        errors.add(kind, problem)


def _check_variables(errors: Errors, value: Any) -> list[str] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add("variables", "Variables must be a list of strings or a JSON string holding one")
        return None
    return value


def _check_active(errors: Errors, value: Any) -> int | None:
    if value is True or value is False or (isinstance(value, int) and value in (0, 1)):
        return int(value)
    errors.add("is_active", "is_active must be 0, 1, true or false")
    return None


def parse_template_create(body: Mapping[str, Any], check: SyntaxCheck | None = None) -> TemplateInput:
    errors = Errors()
    name = _check_name(errors, body.get("name"))
    code = body.get("code")
    if _blank(code):
        errors.add("code", "Code is required")
    elif not isinstance(code, str) or not _CODE.fullmatch(code):
        errors.add("code", "Code must match ^[a-z0-9_]{2,64}$")
    subject = body.get("subject")
    if _blank(subject):
        errors.add("subject", "Subject is required")
    else:
        _check_source(errors, "subject", subject, check)
    bodies: dict[Kind, str | None] = {}
    for kind in ("body_html", "body_text"):
        value = body.get(kind)
        bodies[kind] = value
        if value is not None:
            _check_source(errors, kind, value, check)
    if not any(isinstance(v, str) and v.strip() for v in bodies.values()) and not any(
        e["field"] in ("body_html", "body_text") for e in errors.items
    ):
        errors.add("body_html", "At least one of body_html and body_text must be non-empty")
    variables = _check_variables(errors, body["variables"]) if body.get("variables") is not None else None
    is_active = _check_active(errors, body["is_active"]) if body.get("is_active") is not None else 1
    errors.raise_if_any()
    assert name is not None and isinstance(code, str) and isinstance(subject, str) and is_active is not None
    return TemplateInput(
        name=name,
        code=code,
        subject=subject,
        body_html=bodies["body_html"],
        body_text=bodies["body_text"],
        variables=variables,
        is_active=is_active,
    )


TEMPLATE_UPDATE_FIELDS = ("name", "subject", "body_html", "body_text", "variables", "is_active")


def parse_template_update(body: Mapping[str, Any], check: SyntaxCheck | None = None) -> dict[str, Any]:
    """The changes to apply (``code`` is ignored; ``variables: null`` counts as not sent)."""
    if not any(k in body for k in TEMPLATE_UPDATE_FIELDS):
        raise ValidationFailed.field("body", "No fields to update")
    errors = Errors()
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _check_name(errors, body["name"])
    if "subject" in body:
        if _blank(body["subject"]):
            errors.add("subject", "Subject is required")
        else:
            _check_source(errors, "subject", body["subject"], check)
            changes["subject"] = body["subject"]
    for kind in ("body_html", "body_text"):
        if kind in body:
            if body[kind] is not None:
                _check_source(errors, kind, body[kind], check)
            changes[kind] = body[kind]
    if body.get("variables") is not None:
        changes["variables"] = _check_variables(errors, body["variables"])
    if "is_active" in body:
        changes["is_active"] = _check_active(errors, body["is_active"])
    errors.raise_if_any()
    return changes


# ---------------------------------------------------------------------------- SMTP settings


@dataclass(frozen=True, slots=True)
class SmtpInput:
    host: str
    port: int
    username: str
    password: str | None
    encryption: str
    from_email: str
    from_name: str

    def __repr__(self) -> str:
        return f"SmtpInput(host={self.host!r}, port={self.port}, encryption={self.encryption!r})"


def _valid_host(value: str) -> bool:
    if not value or len(value) > 255 or any(c.isspace() for c in value) or "://" in value:
        return False
    try:
        ipaddress.ip_address(value.strip("[]"))
        return True
    except ValueError:
        return bool(_HOSTNAME.fullmatch(value))


def _smtp_host(errors: Errors, host: Any) -> str | None:
    if _blank(host):
        errors.add("host", "Host is required")
    elif not isinstance(host, str) or not _valid_host(host):
        errors.add("host", "Host must be a hostname or IP address, without scheme or spaces")
    else:
        return host.strip("[]") if ":" in host else host
    return None


def _smtp_port(errors: Errors, port: Any) -> int | None:
    if port is None:
        return 587
    if isinstance(port, str) and _DIGITS.fullmatch(port.strip()):
        port = int(port.strip())
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors.add("port", "Port must be an integer between 1 and 65535")
        return None
    return port


def _smtp_username(errors: Errors, username: Any) -> str:
    if username is None:
        return ""
    if not isinstance(username, str) or len(username) > MAX_NAME_CHARS or _CONTROL.search(username):
        errors.add("username", f"Username must be a string of at most {MAX_NAME_CHARS} characters")
        return ""
    return username


def _smtp_encryption(errors: Errors, encryption: Any) -> str:
    if encryption is None:
        return "tls"
    if not isinstance(encryption, str) or encryption not in ENCRYPTIONS:
        errors.add("encryption", "Encryption must be one of tls, ssl, none")
        return "tls"
    return encryption


def _smtp_from_email(errors: Errors, from_email: Any) -> str | None:
    if _blank(from_email):
        errors.add("from_email", "From email is required")
        return None
    normalized = email_or_none(from_email.strip()) if isinstance(from_email, str) else None
    if normalized is None:
        errors.add("from_email", "Invalid email address")
    return normalized


def _smtp_from_name(errors: Errors, from_name: Any) -> str:
    if from_name is None:
        return "System"
    if not isinstance(from_name, str):
        errors.add("from_name", "From name must be a string")
        return "System"
    from_name = strip_controls(from_name).strip() or "System"
    if len(from_name) > MAX_NAME_CHARS:
        errors.add("from_name", f"From name must be at most {MAX_NAME_CHARS} characters")
    return from_name


def parse_smtp(body: Mapping[str, Any]) -> SmtpInput:
    """POST /smtp (and the ``SMTP_*`` environment): 400 ``Invalid SMTP settings`` with field errors."""
    errors = Errors()
    host = _smtp_host(errors, body.get("host"))
    port = _smtp_port(errors, body.get("port"))
    username = _smtp_username(errors, body.get("username"))
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        errors.add("password", "Password must be a string")
    encryption = _smtp_encryption(errors, body.get("encryption"))
    from_email = _smtp_from_email(errors, body.get("from_email"))
    from_name = _smtp_from_name(errors, body.get("from_name"))
    errors.raise_if_any("Invalid SMTP settings")
    assert host is not None and port is not None and from_email is not None
    return SmtpInput(
        host=host,
        port=port,
        username=username,
        password=password,
        encryption=encryption,
        from_email=from_email,
        from_name=from_name,
    )


# ---------------------------------------------------------------------------- typed bodies


def _fields_of(parsed: Any) -> dict[str, Any]:
    """The fields of a parsed input (a dataclass) as the typed body's values, not copied."""
    return {f.name: getattr(parsed, f.name) for f in fields(parsed)}


_ACTIVE = WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]})
_PORT = WithJsonSchema(
    {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string", "pattern": "^[0-9]{1,5}$"}]}
)
_VARIABLES = WithJsonSchema({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]})


class SendBody(BaseModel):
    """``POST /send``. ``templateCode``/``template_code``, ``recipientEmail`` and ``recipientName``
    are accepted for the canonical names; the canonical spelling wins when several are sent."""

    model_config = ConfigDict(extra="ignore")

    template: str | None = Field(None, description="Template code (required, or one of its aliases)")
    templateCode: str | None = None
    template_code: str | None = None
    recipient_email: str | None = Field(None, max_length=MAX_EMAIL_CHARS, description="Required (or recipientEmail)")
    recipientEmail: str | None = None
    recipient_name: str | None = Field(None, max_length=MAX_NAME_CHARS)
    recipientName: str | None = None
    data: dict[str, Any] | None = Field(None, description="Template variables")

    @model_validator(mode="before")
    @classmethod
    def _contract(cls, value: Any) -> Any:
        return _fields_of(parse_send(json_object(value)))

    def to_request(self) -> SendRequest:
        assert self.template is not None and self.recipient_email is not None
        return SendRequest(
            template=self.template,
            recipient_email=self.recipient_email,
            recipient_name=self.recipient_name or "",
            data=self.data or {},
        )


class TemplateCreateBody(BaseModel):
    """``POST /templates``: at least one of ``body_html``/``body_text`` non-empty; each source is Jinja."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(max_length=MAX_NAME_CHARS)
    code: str = Field(pattern=r"^[a-z0-9_]{2,64}$")
    subject: str = Field(max_length=MAX_SUBJECT_CHARS)
    body_html: str | None = None
    body_text: str | None = None
    variables: Annotated[list[str] | None, _VARIABLES] = Field(
        None, description="A list of names, or a JSON string holding one; derived from the sources when omitted"
    )
    is_active: Annotated[int, _ACTIVE] = 1

    @model_validator(mode="before")
    @classmethod
    def _contract(cls, value: Any) -> Any:
        return _fields_of(parse_template_create(json_object(value)))

    def to_input(self) -> TemplateInput:
        return TemplateInput(**self.model_dump())


class TemplateUpdateBody(BaseModel):
    """``PUT /templates/{id}``: a partial update; ``code`` is ignored (codes never change)."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, max_length=MAX_NAME_CHARS)
    subject: str | None = Field(None, max_length=MAX_SUBJECT_CHARS)
    body_html: str | None = None
    body_text: str | None = None
    variables: Annotated[list[str] | None, _VARIABLES] = None
    is_active: Annotated[int | None, _ACTIVE] = None

    @model_validator(mode="before")
    @classmethod
    def _contract(cls, value: Any) -> Any:
        return parse_template_update(json_object(value))

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class SmtpBody(BaseModel):
    """``POST /smtp``: create or replace the settings (``password``: absent keeps, ``""`` removes)."""

    model_config = ConfigDict(extra="ignore")

    host: str = Field(max_length=255, description="Hostname or IP, no scheme")
    port: Annotated[int, _PORT] = 587
    username: str = ""
    password: str | None = None
    encryption: Literal["tls", "ssl", "none"] = "tls"
    from_email: str = Field(max_length=MAX_EMAIL_CHARS)
    from_name: str = Field("System", max_length=MAX_NAME_CHARS)

    @model_validator(mode="before")
    @classmethod
    def _contract(cls, value: Any) -> Any:
        return _fields_of(parse_smtp(json_object(value)))

    def to_input(self) -> SmtpInput:
        return SmtpInput(**self.model_dump())

    def __repr__(self) -> str:
        return f"SmtpBody(host={self.host!r}, port={self.port}, encryption={self.encryption!r})"


# ---------------------------------------------------------------------------- answers


class TemplatePublic(BaseModel):
    id: int
    name: str
    code: str
    subject: str
    body_html: str | None
    body_text: str | None
    variables: str = Field(description='A JSON array as a string: "[\\"a\\", \\"b\\"]"')
    is_active: int
    created_at: str
    updated_at: str


class SmtpConfigPublic(BaseModel):
    id: int
    host: str
    port: int
    username: str
    encryption: Literal["tls", "ssl", "none"]
    from_email: str
    from_name: str
    is_active: int
    has_password: bool
    created_at: str
    updated_at: str


class SendResultPublic(BaseModel):
    """200: ``sent`` with ``sent_at``; 202: ``pending`` with ``attempts``, ``next_attempt_at``, ``error_message``."""

    id: int
    status: Literal["sent", "pending"]
    transport: TransportName | None
    sent_at: str | None = None
    attempts: int | None = None
    next_attempt_at: str | None = None
    error_message: str | None = None
    missing_variables: list[str]


class HistoryRowPublic(BaseModel):
    id: int
    template_code: str
    recipient_email: str
    recipient_name: str
    subject: str | None
    status: Status
    transport: TransportName | None
    attempts: int
    next_attempt_at: str | None
    variables: str
    missing_variables: list[str]
    sent_at: str | None
    error_message: str | None
    created_at: str
    updated_at: str


class HistoryDetailPublic(HistoryRowPublic):
    body_html: str | None
    body_text: str | None
    message_id: str


class HistoryPagePublic(BaseModel):
    history: list[HistoryRowPublic]
    pagination: Pagination
