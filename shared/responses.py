"""The JSON envelope, the typed error hierarchy and the one set of exception handlers.

Success: ``{"success": true, "message": ..., "data": ...}``; failure:
``{"success": false, "message": ..., "errors": [{"field", "message"}]}``. Domain code raises
an :class:`AppError` subclass carrying its status and message; one handler answers all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.store.base import StoreValueError


class AppError(Exception):
    """An error the client caused or must know about; carries its HTTP status and message."""

    status_code: int = 400
    message: str = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.errors = list(errors) if errors else None
        self.headers = dict(headers) if headers else None
        self.extra = dict(extra) if extra else None
        super().__init__(self.message)


class BadRequest(AppError):
    status_code, message = 400, "Bad request"


class ValidationFailed(AppError):
    """400 with field errors; ``ValidationFailed.field("city", "City is required")``."""

    status_code, message = 400, "Validation error"

    @classmethod
    def field(cls, field: str, message: str, *, top: str | None = None) -> ValidationFailed:
        """One bad field; the top-level message is ``top`` or ``"Validation error"``."""
        return cls(top, errors=[{"field": field, "message": message}])


class InvalidId(AppError):
    status_code, message = 400, "Invalid ID format"


class Unauthorized(AppError):
    status_code, message = 401, "Access token required"


class Forbidden(AppError):
    status_code, message = 403, "Access denied"


class NotFound(AppError):
    status_code, message = 404, "Not found"


class MethodNotAllowed(AppError):
    status_code, message = 405, "Method not allowed"


class Conflict(AppError):
    status_code, message = 409, "Conflict"


class PayloadTooLarge(AppError):
    status_code, message = 413, "Request body too large"


class UnsupportedMediaType(AppError):
    status_code, message = 415, "Unsupported media type"


class Locked(AppError):
    status_code, message = 423, "Account is locked"


class TooManyRequests(AppError):
    status_code, message = 429, "Too many requests, please try again later"


class UpstreamError(AppError):
    """Another service failed; ``service`` names it."""

    status_code, message = 502, "Upstream service error"

    def __init__(self, message: str | None = None, *, service: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.service = service


class BadGateway(UpstreamError):
    status_code, message = 502, "Bad gateway"


class ServiceUnavailable(UpstreamError):
    status_code, message = 503, "Service unavailable"


class GatewayTimeout(UpstreamError):
    status_code, message = 504, "Service timed out"


def envelope(data: Any = None, message: str | None = None, **extra: Any) -> dict[str, Any]:
    """A success envelope as a dict (``message`` left out when None)."""
    body: dict[str, Any] = {"success": True}
    if message is not None:
        body["message"] = message
    body["data"] = data
    body.update(extra)
    return body


def ok(data: Any = None, message: str | None = None, *, status_code: int = 200, **extra: Any) -> JSONResponse:
    """A success response: ``{"success": true, "message", "data", **extra}``."""
    return JSONResponse(envelope(data, message, **extra), status_code=status_code)


def error_response(
    status_code: int,
    message: str,
    *,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """A failure envelope response."""
    body: dict[str, Any] = {"success": False, "message": message}
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status_code, headers=dict(headers) if headers else None)


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z0-9])")


def humanize_field(name: str) -> str:
    """``addressLine1`` → ``Address line 1``; ``first_name`` → ``First name``."""
    words = _CAMEL.sub(" ", name).replace("_", " ").lower()
    return words[:1].upper() + words[1:]


_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def validation_errors(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    """Translate pydantic errors into (message, errors by dotted path) with readable messages."""
    errors: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors():
        kind = err.get("type", "")
        if kind in {"json_invalid", "json_type"}:
            return "Invalid JSON in request body", []
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        # Drop pydantic's union/function-wrapper segments such as "function-after[...]".
        loc = [p for p in loc if "[" not in p]
        field = ".".join(loc)
        if kind == "missing":
            message = f"{humanize_field(loc[-1])} is required" if loc else "Request body is required"
        elif kind in {"model_attributes_type", "dict_type"} and not loc:
            message = "Request body must be a JSON object"
        else:
            message = str(err.get("msg", "Invalid value"))
            for prefix in ("Value error, ", "Assertion failed, "):
                if message.startswith(prefix):
                    message = message[len(prefix) :]
        if (field, message) not in seen:
            seen.add((field, message))
            errors.append({"field": field or "body", "message": message})
    return "Validation error", errors


async def _app_error_handler(request: Request, exc: AppError) -> JSONResponse:
    return error_response(
        exc.status_code, exc.message, errors=exc.errors, headers=exc.headers, extra=exc.extra
    )


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    message, errors = validation_errors(exc)
    return error_response(400, message, errors=errors)


_HTTP_MESSAGES = {404: "Route not found", 405: "Method not allowed"}


async def _http_exception_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = _HTTP_MESSAGES.get(exc.status_code)
    if message == "Route not found":
        message = f"Route {request.url.path} not found"
    if message is None:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))


async def _store_value_handler(request: Request, exc: StoreValueError) -> JSONResponse:
    # A value no document can hold (64-bit overflow, lone surrogate, ...): the client's input.
    return error_response(400, "Invalid value")


def install_error_handlers(app: FastAPI) -> None:
    """Register the one set of handlers: AppError, validation (→ 400), 404/405 envelopes.

    Unexpected exceptions are answered 500 by the request middleware in ``shared.app``
    (with the request id, never a trace).
    """
    app.add_exception_handler(AppError, _app_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StoreValueError, _store_value_handler)  # type: ignore[arg-type]
