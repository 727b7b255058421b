"""Field rules for request bodies, with the contracts' messages ("First name is required",
"Please provide a valid phone number" …). Used from pydantic ``mode="before"`` validators;
each raises ``ValueError(message)``, which the shared handler answers verbatim under the
field's name.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BeforeValidator

from shared.passwords import too_long
from shared.validation import is_valid_email, normalize_email, parse_bool

PHONE_RE = re.compile(r"^[0-9]{10,15}$")
POSTAL_RE = re.compile(r"^[A-Za-z0-9\s-]{3,10}$")
URL_RE = re.compile(r"^https?://\S+$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)


def is_blank(value: Any) -> bool:
    """None, or a string of only white space."""
    return value is None or (isinstance(value, str) and not value.strip())


def blank_to_none(value: Any) -> Any:
    """``""`` (or white space) as None: "absent" on create, "clear" on update."""
    return None if isinstance(value, str) and not value.strip() else value


Blankable = BeforeValidator(blank_to_none)
"""``Annotated[str | None, Blankable]``: an optional string where ``""`` means None."""


def with_required(data: Any, names: tuple[str, ...]) -> Any:
    """Present missing ``names`` as None (in a ``model_validator(mode="before")``) so their
    field validators run and say "<Label> is required" with the contract's wording."""
    if isinstance(data, dict):
        data = dict(data)
        for name in names:
            data.setdefault(name, None)
    return data


def check_text(value: Any, label: str, *, max_len: int, required: bool = False, min_len: int = 0) -> str | None:
    """Trimmed text of ``min_len``..``max_len`` chars; blank is None (or "<label> is required")."""
    if is_blank(value):
        if required:
            raise ValueError(f"{label} is required")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    value = value.strip()
    if len(value) < min_len:
        raise ValueError(f"{label} must be at least {min_len} characters")
    if len(value) > max_len:
        raise ValueError(f"{label} cannot exceed {max_len} characters")
    return value


def check_name(value: Any, label: str) -> str:
    """A required person name of 2–50 characters, trimmed."""
    return check_text(value, label, min_len=2, max_len=50, required=True)  # type: ignore[return-value]


def check_password(value: Any, label: str = "Password") -> str:
    """A new password: 6–50 characters and at most 72 bytes of UTF-8 (bcrypt's limit)."""
    if value is None or value == "":
        raise ValueError(f"{label} is required")
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    if len(value) < 6:
        raise ValueError(f"{label} must be at least 6 characters")
    if len(value) > 50:
        raise ValueError(f"{label} cannot exceed 50 characters")
    if too_long(value):
        raise ValueError(f"{label} cannot exceed 72 bytes")
    return value


def check_login_password(value: Any) -> str:
    """A password given to sign in: present, a string, at most 72 bytes."""
    if value is None or value == "":
        raise ValueError("Password is required")
    if not isinstance(value, str):
        raise ValueError("Password must be a string")
    if too_long(value):
        raise ValueError("Password cannot exceed 72 bytes")
    return value


def check_email(value: Any) -> str:
    """A required, valid address, trimmed and lower-cased."""
    if is_blank(value):
        raise ValueError("Email is required")
    if not isinstance(value, str) or not is_valid_email(normalize_email(value)):
        raise ValueError("Please provide a valid email address")
    return normalize_email(value)


def check_phone(value: Any, *, required: bool = False) -> str | None:
    """10–15 digits; blank is None unless ``required``."""
    if is_blank(value):
        if required:
            raise ValueError("Phone is required")
        return None
    if not isinstance(value, str) or not PHONE_RE.match(value.strip()):
        raise ValueError("Please provide a valid phone number")
    return value.strip()


def check_date(value: Any, label: str, *, not_future: bool = False) -> str | None:
    """``YYYY-MM-DD`` (a full ISO time is cut to its date); blank is None."""
    if is_blank(value):
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        value = value.strip()
        day = (
            date.fromisoformat(value)
            if len(value) == 10
            else datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        )
    except ValueError:
        raise ValueError(f"Please provide a valid {label.lower()}") from None
    if not_future and day > datetime.now(UTC).date():
        raise ValueError(f"{label} cannot be in the future")
    return day.isoformat()


def check_media_ref(value: Any, label: str) -> str | None:
    """A media UUID or an http(s) URL (≤ 500 chars); blank is None."""
    value = check_text(value, label, max_len=500)
    if value is not None and not UUID4_RE.match(value) and not URL_RE.match(value):
        raise ValueError(f"{label} must be a media id or an http(s) URL")
    return value


def is_media_id(value: str | None) -> bool:
    """True for a media UUID (URLs are not marked used in the media service)."""
    return bool(value and UUID4_RE.match(value))


def check_bool(value: Any, name: str) -> bool:
    """A required boolean given as a boolean, ``"true"``/``"false"`` or 1/0;
    otherwise "<name> must be a boolean"."""
    parsed = parse_bool(value)
    if parsed is None:
        raise ValueError(f"{name} must be a boolean")
    return parsed


def lax_bool(message: str) -> BeforeValidator:
    """A validator accepting booleans, ``"true"``/``"false"`` and 1/0; None stays None."""

    def convert(value: Any) -> Any:
        if value is None:
            return None
        parsed = parse_bool(value)
        if parsed is None:
            raise ValueError(message)
        return parsed

    return BeforeValidator(convert)
