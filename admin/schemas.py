"""Typed request models and ``*Public`` response models of the admin service.

Request models carry the contract's rules and messages; unknown fields are ignored except in
the admin update, where any field but ``role``, ``permissions`` and ``isActive`` is a 400.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from admin.domain import PASSWORD_MAX, PASSWORD_MIN, PERMISSIONS
from shared.fields import LaxBool, check_email, check_login_password
from shared.passwords import too_long
from shared.responses import Pagination

RoleName = Literal["super_admin", "admin", "moderator"]
Permission = Literal[PERMISSIONS]  # type: ignore[valid-type]  # the one list, in admin.domain

PHONE_RE = re.compile(r"\+?[0-9 ()-]{7,20}")


def _required_text(label: str, *, max_len: int) -> BeforeValidator:
    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"{label} is required")
        if not isinstance(value, str):
            raise ValueError(f"{label} must be a string")
        value = value.strip()
        if len(value) > max_len:
            raise ValueError(f"{label} cannot exceed {max_len} characters")
        return value

    return BeforeValidator(check)


def _login_email(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("Email is required")
    if not isinstance(value, str):
        raise ValueError("Email must be a string")
    return value.strip().lower()


def _new_password(label: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if value is None or value == "":
            raise ValueError(f"{label} is required")
        if not isinstance(value, str):
            raise ValueError(f"{label} must be a string")
        if len(value) < PASSWORD_MIN:
            raise ValueError(f"{label} must be at least {PASSWORD_MIN} characters")
        if len(value) > PASSWORD_MAX:
            raise ValueError(f"{label} cannot exceed {PASSWORD_MAX} characters")
        if too_long(value):
            raise ValueError(f"{label} cannot exceed 72 bytes")
        return value

    return BeforeValidator(check)


def _phone(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not PHONE_RE.fullmatch(value.strip()):
        raise ValueError("Please provide a valid phone number")
    return value.strip()


def _token(value: Any) -> Any:
    if value is None or value == "":
        raise ValueError("Token is required")
    if not isinstance(value, str):
        raise ValueError("Token must be a string")
    if len(value) > 512:
        raise ValueError("Invalid token")
    return value


LoginEmail = Annotated[str, BeforeValidator(_login_email), WithJsonSchema({"type": "string", "minLength": 1})]
LoginPassword = Annotated[
    str, BeforeValidator(check_login_password), WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 72})
]
Email = Annotated[
    str, BeforeValidator(check_email), WithJsonSchema({"type": "string", "format": "email", "maxLength": 254})
]
FirstName = Annotated[
    str, _required_text("First name", max_len=50), WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 50})
]
LastName = Annotated[
    str, _required_text("Last name", max_len=50), WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 50})
]
NewPassword = Annotated[
    str,
    _new_password("Password"),
    WithJsonSchema({"type": "string", "minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}),
]
Phone = Annotated[
    str | None,
    BeforeValidator(_phone),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": r"^\+?[0-9 ()-]{7,20}$"}, {"type": "null"}]}),
]
ResetToken = Annotated[
    str, BeforeValidator(_token), WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 512})
]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


# requests


class LoginIn(Body):
    email: LoginEmail
    password: LoginPassword


class EmailIn(Body):
    email: Email


class ResetPasswordIn(Body):
    token: ResetToken
    newPassword: NewPassword = Field(validation_alias=AliasChoices("newPassword", "password"))
    confirmPassword: str | None = None


class NewAdminIn(Body):
    firstName: FirstName
    lastName: LastName
    email: Email
    password: NewPassword
    phone: Phone = None
    role: RoleName = "admin"
    permissions: list[Permission] | None = Field(default=None, max_length=len(PERMISSIONS) * 4)
    isActive: LaxBool = True


class AdminUpdateIn(BaseModel):
    """Any non-empty subset of role, permissions and isActive; anything else is a 400."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    permissions: list[Permission] | None = Field(default=None, max_length=len(PERMISSIONS) * 4)
    isActive: LaxBool | None = None

    @model_validator(mode="after")
    def _non_empty(self) -> AdminUpdateIn:
        if not self.model_fields_set:
            raise ValueError("Provide at least one of role, permissions, isActive")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


# answers


class AdminPublic(BaseModel):
    id: str
    firstName: str
    lastName: str
    email: str
    phone: str | None
    role: RoleName
    permissions: list[Permission]
    isActive: bool
    lastLogin: str | None
    createdAt: str
    updatedAt: str


class AdminSummaryPublic(BaseModel):
    id: str
    firstName: str
    lastName: str
    email: str
    role: RoleName
    permissions: list[Permission]


class LoginPublic(BaseModel):
    token: str
    admin: AdminSummaryPublic


class AdminHolderPublic(BaseModel):
    admin: AdminPublic


PaginationPublic = Pagination


class AdminsPublic(BaseModel):
    admins: list[AdminPublic]
    pagination: PaginationPublic


class AuditEntryPublic(BaseModel):
    id: str
    adminId: str
    adminEmail: str | None
    method: str
    service: str
    path: str
    query: str
    status: int | None
    durationMs: int | None
    requestId: str | None
    ip: str | None
    at: str


class AuditPublic(BaseModel):
    entries: list[AuditEntryPublic]
    pagination: PaginationPublic


class CountsPublic(BaseModel):
    total: float
    active: float
    verified: float
    error: str | None = None


class ProductCountsPublic(BaseModel):
    total: float
    active: float
    outOfStock: float
    lowStock: float
    error: str | None = None


class OrderFiguresPublic(BaseModel):
    total: float
    revenue: float
    byStatus: dict[str, float]
    error: str | None = None


class OverviewPublic(BaseModel):
    customers: CountsPublic
    sellers: CountsPublic
    products: ProductCountsPublic
    orders: OrderFiguresPublic


class DashboardPublic(BaseModel):
    overview: OverviewPublic
    lastUpdated: str


class ServiceHealthPublic(BaseModel):
    status: Literal["healthy", "unhealthy"]
    response: Any = None
    responseTime: str | None = None
    error: str | None = None
    url: str | None = None


class ServicesHealthPublic(BaseModel):
    services: dict[str, ServiceHealthPublic]
    timestamp: str
