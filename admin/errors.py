"""The HTTP face of the domain's errors: each :class:`admin.domain.AdminError` with the
status and message the contract gives it. Registered once as an exception handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from admin import domain
from shared.responses import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    Locked,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
    error_response,
)

INVALID_CREDENTIALS: Final = "Invalid credentials"
ACCOUNT_LOCKED: Final = "Account is locked due to too many failed login attempts"
ACCOUNT_DEACTIVATED: Final = "Account is deactivated"
INVALID_TOKEN: Final = "Invalid token"
ADMIN_REQUIRED: Final = "Admin access required"
INSUFFICIENT_PERMISSIONS: Final = "Insufficient permissions"
INVALID_RESET_TOKEN: Final = "Invalid or expired reset token"
PASSWORDS_DO_NOT_MATCH: Final = "Passwords do not match"
EMAIL_TAKEN: Final = "Admin with this email already exists"
ADMIN_NOT_FOUND: Final = "Admin not found"
SELF_CHANGE: Final = "You cannot change your own role or deactivate your own account"
LAST_SUPER_ADMIN: Final = "At least one active super_admin must remain"
AUDIT_UNAVAILABLE: Final = "Audit log unavailable"

_MAP: Final[dict[type[domain.AdminError], Callable[[domain.AdminError], AppError]]] = {
    domain.InvalidCredentials: lambda e: Unauthorized(INVALID_CREDENTIALS),
    domain.AccountLocked: lambda e: Locked(ACCOUNT_LOCKED),
    domain.AccountDeactivated: lambda e: Forbidden(ACCOUNT_DEACTIVATED),
    domain.InvalidToken: lambda e: Unauthorized(INVALID_TOKEN),
    domain.NotAnAdmin: lambda e: Forbidden(ADMIN_REQUIRED),
    domain.InsufficientPermissions: lambda e: Forbidden(INSUFFICIENT_PERMISSIONS),
    domain.InvalidResetToken: lambda e: BadRequest(INVALID_RESET_TOKEN),
    domain.PasswordsDoNotMatch: lambda e: ValidationFailed.field("confirmPassword", PASSWORDS_DO_NOT_MATCH),
    domain.EmailTaken: lambda e: Conflict(EMAIL_TAKEN, errors=[{"field": "email", "message": "Email already exists"}]),
    domain.AdminNotFound: lambda e: NotFound(ADMIN_NOT_FOUND),
    domain.SelfChange: lambda e: Conflict(SELF_CHANGE),
    domain.LastSuperAdmin: lambda e: Conflict(LAST_SUPER_ADMIN),
    domain.AuditUnavailable: lambda e: ServiceUnavailable(AUDIT_UNAVAILABLE),
}


def as_app_error(exc: BaseException) -> AppError | None:
    """The HTTP error for a domain error (None for anything else)."""
    if isinstance(exc, AppError):
        return exc
    for kind in type(exc).__mro__:
        build = _MAP.get(kind)  # type: ignore[call-overload]
        if build is not None:
            return build(exc)  # type: ignore[arg-type]
    return None


async def _handler(request: Request, exc: Exception) -> JSONResponse:
    error = as_app_error(exc)
    if error is None:  # a BootstrapRefused or a new error without a mapping: a bug
        raise exc
    return error_response(error.status_code, error.message, errors=error.errors, headers=error.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(domain.AdminError, _handler)
