"""Request bodies every kind of account takes (customers and sellers): sign-in, tokens and
the password flows, with the contracts' messages.

Unknown fields are ignored. Required fields are declared with their real type (so the
OpenAPI document shows them); a missing one is presented to its validator as None so the
answer says "<Label> is required" in the contracts' words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from shared.fields import (
    ObjectIdStr,
    check_email,
    check_login_password,
    check_password,
    is_blank,
    require_fields,
    with_required,
)
from shared.responses import BadRequest, ValidationFailed
from shared.validation import object_id


class Body(BaseModel):
    """Base of every request body: unknown fields ignored, strings kept as sent."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


def required_text(value: Any, label: str) -> str:
    """A present string (not blank); "<label> is required" / "<label> must be a string"."""
    if value is None or value == "":
        raise ValueError(f"{label} is required")
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    return value


def required_token(value: Any, label: str) -> str:
    """A token string, trimmed; blank or not a string is "<label> is required"."""
    if is_blank(value) or not isinstance(value, str):
        raise ValueError(f"{label} is required")
    return value.strip()


def _password_alias(data: Any) -> Any:
    """``password`` stands for ``newPassword`` when that is absent or empty."""
    if isinstance(data, dict) and data.get("newPassword") in (None, "") and "password" in data:
        data = {**data, "newPassword": data["password"]}
    return data


class LoginIn(Body):
    email: str
    password: str

    _require = require_fields("email", "password")
    _email = field_validator("email", mode="before")(check_email)
    _password = field_validator("password", mode="before")(check_login_password)


class EmailIn(Body):
    email: str

    _require = require_fields("email")
    _email = field_validator("email", mode="before")(check_email)


class RefreshIn(Body):
    refreshToken: str = Field(min_length=1)

    _require = require_fields("refreshToken")
    _token = field_validator("refreshToken", mode="before")(lambda v: required_token(v, "Refresh token"))


class ResetPasswordIn(Body):
    """``token`` and ``newPassword`` (alias ``password``); ``confirmPassword`` must match when sent."""

    token: str = Field(min_length=1)
    newPassword: str = Field(min_length=6, max_length=50)
    confirmPassword: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _require(cls, data: Any) -> Any:
        return with_required(_password_alias(data), ("token", "newPassword"))

    _token = field_validator("token", mode="before")(lambda v: required_token(v, "Token"))
    _new = field_validator("newPassword", mode="before")(lambda v: check_password(v, "New password"))


class ChangePasswordIn(Body):
    currentPassword: str = Field(min_length=1)
    newPassword: str = Field(min_length=6, max_length=50)
    confirmPassword: str = Field(min_length=1)

    _require = require_fields("currentPassword", "newPassword", "confirmPassword")
    _current = field_validator("currentPassword", mode="before")(lambda v: required_text(v, "Current password"))
    _confirm = field_validator("confirmPassword", mode="before")(lambda v: required_text(v, "Confirm password"))
    _new = field_validator("newPassword", mode="before")(lambda v: check_password(v, "New password"))


# Bodies of the service endpoints. Their contracts answer some mistakes with a top-level
# message ("customerIds array is required"), so these validators raise the shared AppError
# itself (pydantic lets any other exception than ValueError through) instead of a field error.


def _id_model(field: str, annotation: Any, check: Callable[[Any], Any], doc: str, **constraints: Any) -> type[Body]:
    """A body with the one required ``field`` whose raw value ``check`` converts (or refuses)."""

    def require(cls: type[Body], data: Any) -> Any:
        return with_required(data, (field,))

    model = create_model(
        f"{field[0].upper()}{field[1:]}In",
        __base__=Body,
        __doc__=doc,
        __validators__={
            "require": model_validator(mode="before")(classmethod(require)),
            "check": field_validator(field, mode="before")(classmethod(lambda cls, value: check(value))),
        },
        **{field: (annotation, Field(**constraints))},
    )
    return model


def id_list_body(field: str, *, max_items: int = 100) -> type[Body]:
    """The ``service/bulk`` body: ``{<field>: [ObjectId, …]}`` of at most ``max_items``.

    Answers in the contracts' words, as top-level messages: not a list → 400 "<field> array
    is required"; a malformed entry → 400 "Invalid ID format"; too many → 400 validation
    error "<field> cannot contain more than <n> ids".
    """

    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise BadRequest(f"{field} array is required")
        if len(value) > max_items:
            raise ValidationFailed.field(field, f"{field} cannot contain more than {max_items} ids")
        return [object_id(item) for item in value]

    return _id_model(field, list[ObjectIdStr], check, f"``{field}``: up to {max_items} ids.", max_length=max_items)


def id_body(field: str) -> type[Body]:
    """The ``service/verify`` body: ``{<field>: ObjectId}``; missing or empty → 400
    "<field> is required", malformed → 400 "Invalid ID format"."""

    def check(value: Any) -> Any:
        if not value:
            raise BadRequest(f"{field} is required")
        return object_id(value)

    return _id_model(field, ObjectIdStr, check, f"``{field}``: one id.")


# What account routes answer (``response_model=Envelope[...]``; documents only, the routes
# answer through ``ok()``).


class Public(BaseModel):
    """Base of the answer models: other keys may appear beside the documented ones."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TokensPublic(Public):
    """A fresh token pair: ``token`` and ``accessToken`` are the same access token."""

    token: str
    accessToken: str
    refreshToken: str


class PasswordChangedPublic(TokensPublic):
    message: str


class MessagePublic(Public):
    message: str


class AccountStatsPublic(Public):
    total: int
    active: int
    verified: int


class AccountVerifyPublic(Public):
    """``service/verify``: ``isValid`` = exists and active (the id field is named per service)."""

    isValid: bool
    isActive: bool
    isVerified: bool
    timestamp: str
