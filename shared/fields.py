"""Field rules for request bodies, with the contracts' messages ("First name is required",
"Please provide a valid phone number" …). Used from pydantic ``mode="before"`` validators;
each raises ``ValueError(message)``, which the shared handler answers verbatim under the
field's name.
"""


import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, WithJsonSchema, model_validator

from shared.passwords import too_long
from shared.validation import MAX_PAGE, is_valid_email, normalize_email, parse_bool

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


def require_fields(*names: str) -> Any:
    """A ``model_validator(mode="before")`` for a model's body: :func:`with_required` of
    ``names`` (``_require = require_fields("email", "password")`` in the class)."""
    return model_validator(mode="before")(classmethod(lambda cls, data: with_required(data, names)))


def check_text(value: Any, label: str, *, max_len: int, required: bool = False, min_len: int = 0) -> str | None:
    """Trimmed text of ``min_len``..``max_len`` chars; blank is None (or "<label> is required")."""
    if is_blank(value):
        if required:
            raise ValueError(f"{label} is required")
        return None
    return trimmed_text(value, label, max_len=max_len, min_len=min_len)


def trimmed_text(value: Any, label: str, *, max_len: int, min_len: int = 0, too_short: str | None = None) -> str:
    """``value`` trimmed, a string of ``min_len``..``max_len`` characters; ``too_short`` is
    the message below ``min_len`` (default "<label> must be at least <min_len> characters")."""
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    value = value.strip()
    if len(value) < min_len:
        raise ValueError(too_short or f"{label} must be at least {min_len} characters")
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


MEDIA_ID_RE = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)


def is_media_id(value: object) -> bool:
    """True for a media id: a string of the hyphenated UUID shape, any case, matched whole
    (the media contract's rule; URLs are not marked used in the media service)."""
    return isinstance(value, str) and MEDIA_ID_RE.fullmatch(value) is not None


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


# Named request types. Routes and request models use these instead of ``Any`` plus a
# validator, so the OpenAPI document shows the real type and the contracts' lax forms
# (booleans as "true"/1, numbers as strings, "" for absent) stay accepted.

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _lax_bool(value: Any, info: ValidationInfo) -> Any:
    parsed = parse_bool(value)
    if parsed is None:
        raise ValueError(f"{info.field_name or 'value'} must be a boolean")
    return parsed


LaxBool = Annotated[
    bool,
    BeforeValidator(_lax_bool),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "boolean"},
                {"type": "string", "enum": ["true", "false", "1", "0"]},
                {"type": "integer", "enum": [0, 1]},
            ]
        }
    ),
]
"""A boolean sent as ``true``/``false``, ``"true"``/``"false"`` or 1/0 (the clients send all three)."""


def _object_id(value: Any) -> Any:
    if not isinstance(value, str) or not OBJECT_ID_RE.fullmatch(value):
        raise ValueError("Invalid ID format")
    return value.lower()


OBJECT_ID_RE = re.compile(r"[0-9a-fA-F]{24}")

ObjectIdStr = Annotated[
    str, BeforeValidator(_object_id), WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{24}$"})
]
"""A 24-hex document id (lower-cased); anything else is 400 ``Invalid ID format``."""


def _empty_as_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


EmptyAsNone = BeforeValidator(_empty_as_none)
"""``Annotated[int | None, EmptyAsNone]``: a query value sent empty (``?page=``) counts as absent."""

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""Any integer a store can hold (nothing outside 64 bits reaches a store)."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A validated ``page``/``limit`` pair."""

    page: int
    limit: int

    @property
    def skip(self) -> int:
        return (self.page - 1) * self.limit


def page_query(*, default_limit: int = 10, max_limit: int = 100) -> Callable[..., Awaitable[PageRequest]]:
    """A dependency reading ``?page=`` (1..MAX_PAGE) and ``?limit=`` (1..``max_limit``), both
    documented as bounded integers; out of range is a 400, never a silent clamp.

    ``Paging = Annotated[PageRequest, Depends(page_query(default_limit=20))]`` in ``deps.py``.
    """

    async def dependency(
        page: Annotated[int | None, Query(ge=1, le=MAX_PAGE), EmptyAsNone] = None,
        limit: Annotated[int | None, Query(ge=1, le=max_limit), EmptyAsNone] = None,
    ) -> PageRequest:
        return PageRequest(page=page or 1, limit=limit or default_limit)

    return dependency


def _no_lone_surrogates(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text contains invalid characters") from None
    return value


CleanStr = Annotated[str, AfterValidator(_no_lone_surrogates)]
"""A string with no lone surrogate (``"\\ud800"``); JSON bodies are checked for them as a
whole by the app factory, this is for values that arrive another way."""


def _object_id_param(value: Any) -> Any:
    from shared.validation import object_id  # the contracts' top-level 400 "Invalid ID format"

    return object_id(value)


ObjectIdParam = Annotated[
    str, BeforeValidator(_object_id_param), WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{24}$"})
]
"""A 24-hex id in a path or query: anything else answers 400 with the top-level message
``Invalid ID format`` (the contracts' answer for a malformed ``:id``), documented as a
pattern. The validator raises the shared ``InvalidId`` itself, which pydantic lets through."""
