"""Small input rules several services share: ids, emails, pagination, booleans, money."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from fastapi import Request

from shared.responses import BadRequest, InvalidId, ValidationFailed
from shared.store import is_object_id

EMAIL_RE = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
MAX_EMAIL_LENGTH = 254
MAX_PAGE = 1_000_000
"""The largest ``page`` accepted: far beyond any real listing, far inside 64 bits once
multiplied by a limit (SQLite's OFFSET overflows past 2**63)."""


def normalize_email(value: str) -> str:
    """Trim and lower-case an email address (done before storing and before every lookup)."""
    return value.strip().lower()


def is_valid_email(value: str) -> bool:
    """A pragmatic address check: one ``@``, a dot in the domain, no spaces, ≤ 254 chars."""
    return len(value) <= MAX_EMAIL_LENGTH and bool(EMAIL_RE.match(value))


def object_id(value: Any) -> str:
    """``value`` if it is a 24-hex ObjectId string, else 400 ``Invalid ID format``."""
    if not is_object_id(value):
        raise InvalidId()
    return value.lower()


def parse_bool(value: Any) -> bool | None:
    """``True``/``False`` for booleans, ``"true"``/``"false"``, ``1``/``0``; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def page_params(page: Any, limit: Any, *, default_limit: int = 10, max_limit: int = 100) -> tuple[int, int]:
    """Validate ``page`` ≥ 1 and ``limit`` in 1..``max_limit`` (absent or ``""`` → defaults).

    Out of range is a 400, never a silent clamp.
    """
    errors = []
    result = []
    for name, raw, default, upper in (("page", page, 1, MAX_PAGE), ("limit", limit, default_limit, max_limit)):
        if raw is None or raw == "":
            result.append(default)
            continue
        text = str(raw).strip()
        try:
            # 20 digits is past any bound; refusing longer text keeps int() cheap.
            number = MAX_PAGE + 1 if len(text) > 20 and text.isdigit() else int(text)
        except ValueError:
            errors.append({"field": name, "message": f"{name} must be an integer"})
            continue
        if number < 1 or (upper is not None and number > upper):
            bound = f"between 1 and {upper}" if upper else "at least 1"
            errors.append({"field": name, "message": f"{name} must be {bound}"})
            continue
        result.append(number)
    if errors:
        raise ValidationFailed(errors=errors)
    return result[0], result[1]


def pagination(page: int, limit: int, total: int) -> dict[str, int]:
    """The ``pagination`` object every list answers (both page-count spellings)."""
    pages = (total + limit - 1) // limit if limit else 0
    return {"page": page, "limit": limit, "total": total, "pages": pages, "totalPages": pages}


def fields_of(doc: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """``{name: doc.get(name)}`` for each of ``names``, in that order: the fields a view
    copies as stored (None when absent)."""
    return {name: doc.get(name) for name in names}


def to_cents(value: Any) -> int:
    """A money amount as integer cents, rounded half-up (``Decimal``, never float sums)."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError("must be a number") from None
    if not amount.is_finite():
        raise ValueError("must be a number")
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> float:
    """Integer cents as a JSON number with two decimals."""
    return float(Decimal(cents) / 100)


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object: 400 for malformed JSON or any other JSON value.

    For routes that read loosely typed bodies themselves (service endpoints whose contract
    gives each missing field its own message).
    """
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("Invalid JSON in request body") from None
    if not isinstance(body, dict):
        raise ValidationFailed.field("body", "Request body must be a JSON object")
    return body
