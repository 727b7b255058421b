"""The JSON envelope, the typed error hierarchy and the one set of exception handlers.

Success: ``{"success": true, "message": ..., "data": ...}``; failure:
``{"success": false, "message": ..., "errors": [{"field", "message"}]}``. Domain code raises
an :class:`AppError` subclass carrying its status and message; one handler answers all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.store.base import StoreValueError

T = TypeVar("T")


# Typed documents of the envelope. Routes still answer through ``ok()`` (a JSONResponse, so
# nothing is validated twice on the hot path); these models are what the OpenAPI document
# publishes and what Schemathesis checks every answer against.


class Pagination(BaseModel):
    """The ``pagination`` object of every list (both page-count spellings)."""

    page: int
    limit: int
    total: int
    pages: int
    totalPages: int


class Envelope(BaseModel, Generic[T]):
    """A success answer: ``{"success": true, "message": ..., "data": T}``.

    ``response_model=Envelope[ThingPublic]`` on a route documents it; extra top-level keys
    (``pagination`` beside ``data``) are allowed.
    """

    model_config = ConfigDict(extra="allow")

    success: Literal[True] = True
    message: str | None = None
    data: T


class PagedEnvelope(BaseModel, Generic[T]):
    """A success answer whose ``data`` is a list with ``pagination`` beside it."""

    model_config = ConfigDict(extra="allow")

    success: Literal[True] = True
    message: str | None = None
    data: list[T]
    pagination: Pagination


class MessageEnvelope(BaseModel):
    """A success answer with a message and no (or null) ``data``."""

    model_config = ConfigDict(extra="allow")

    success: Literal[True] = True
    message: str | None = None
    data: None = None


class ErrorItem(BaseModel):
    field: str
    message: str


class ErrorEnvelope(BaseModel):
    """A failure answer: ``{"success": false, "message": ..., "errors": [...]}``."""

    model_config = ConfigDict(extra="allow")

    success: Literal[False] = False
    message: str
    errors: list[ErrorItem] | None = None


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Validation error or malformed request",
    401: "Missing or invalid credentials",
    403: "Not allowed for this caller",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Unsupported media type",
    423: "Account locked",
    429: "Rate limited",
    500: "Unexpected error (carries the request id)",
    502: "An upstream service answered badly",
    503: "An upstream service is unavailable",
    504: "An upstream service timed out",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented with the error envelope.

    ``@router.get("/x", response_model=Envelope[XPublic], responses=error_responses(401, 404))``.
    400 (validation) is added to every operation with input by the app factory; list it here
    when a route answers 400 for other reasons too.
    """
    return {code: {"model": ErrorEnvelope, "description": ERROR_DESCRIPTIONS.get(code, "Error")} for code in codes}


AUTH_ERRORS = (401, 403)
"""What any authenticated route can answer: missing/invalid credentials, wrong role."""
UPSTREAM_ERRORS = (502, 503, 504)
"""What a route that calls another service can answer."""


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
        elif kind in {"model_attributes_type", "dict_type", "model_type"} and not loc:
            message = "Request body must be a JSON object"
        else:
            message = _readable(kind, loc[-1] if loc else "value", err)
        if (field, message) not in seen:
            seen.add((field, message))
            errors.append({"field": field or "body", "message": message})
    return "Validation error", errors


# pydantic error type → the contracts' wording; ``{name}`` is the raw field name (numbers and
# booleans: "page must be an integer"), ``{label}`` the readable one ("Postal code ..."), and
# the rest come from the error's context (its bounds).
_MESSAGES: dict[str, str] = {
    **dict.fromkeys(("int_parsing", "int_type", "int_from_float", "int_parsing_size"), "{name} must be an integer"),
    **dict.fromkeys(
        ("float_parsing", "float_type", "decimal_parsing", "decimal_type", "finite_number"), "{name} must be a number"
    ),
    **dict.fromkeys(("bool_parsing", "bool_type"), "{name} must be a boolean"),
    "greater_than_equal": "{name} must be at least {ge}",
    "greater_than": "{name} must be above {gt}",
    "less_than_equal": "{name} cannot exceed {le}",
    "less_than": "{name} must be below {lt}",
    "string_type": "{label} must be a string",
    "string_too_long": "{label} cannot exceed {max_length} characters",
    "string_pattern_mismatch": "{label} has an invalid format",
    **dict.fromkeys(("literal_error", "enum"), "{label} must be one of: {expected}"),
    **dict.fromkeys(("list_type", "tuple_type", "set_type"), "{label} must be an array"),
    "too_long": "{label} cannot have more than {max_length} items",
    "too_short": "{label} must have at least {min_length} items",
    **dict.fromkeys(("dict_type", "model_type", "model_attributes_type"), "{label} must be an object"),
    "extra_forbidden": "{label} is not allowed",
}


def _readable(kind: str, name: str, err: Mapping[str, Any]) -> str:
    """pydantic's error as the contracts word it: ``page must be an integer``,
    ``Name cannot exceed 200 characters``; a validator's own ``ValueError`` text verbatim."""
    ctx = {str(k): v for k, v in (err.get("ctx") or {}).items()}
    label = humanize_field(name)
    if kind == "string_too_short":
        minimum = ctx.get("min_length")
        return f"{label} is required" if minimum == 1 else f"{label} must be at least {minimum} characters"
    template = _MESSAGES.get(kind)
    if template is not None:
        try:
            return template.format(**{**ctx, "name": name, "label": label}).rstrip(": ")
        except (KeyError, IndexError, ValueError):
            pass  # an unexpected context: fall back to pydantic's own text
    message = str(err.get("msg", "Invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


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
