"""Who may call what (contract section 3): service key, admin bearer, the uploader's bearer.

User tokens are verified locally with ``shared.auth.decode_token``; the service key with
``shared.auth.check_service_key`` (constant-time, several keys for rotation). A key that is
sent decides alone: present and wrong is 403 even when a valid bearer comes with it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from media.domain import Caller, Uploader
from media.settings import MediaSettings
from shared.auth import SERVICE_KEY_HEADER, bearer_token, check_service_key, decode_token
from shared.responses import Forbidden, Unauthorized

KEY_MESSAGE = "Invalid or missing service key"
_USER_ROLES = ("customer", "seller", "admin")


def _settings(request: Request) -> MediaSettings:
    return request.app.state.settings


def _key_valid(settings: MediaSettings, presented: str | None) -> None:
    """403 for a sent key that is not accepted (an empty one included), 401 when absent."""
    if presented is not None and not presented:
        raise Forbidden(KEY_MESSAGE)
    check_service_key(settings, presented, missing_message=KEY_MESSAGE, invalid_message=KEY_MESSAGE)


def _bearer_caller(request: Request) -> Caller | None:
    """The caller of a sent ``Authorization`` header (401 when it is not a valid access token)."""
    if "authorization" not in request.headers:
        return None
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Invalid token")
    claims = decode_token(_settings(request), token)
    if claims.get("role") not in _USER_ROLES:
        raise Unauthorized("Invalid token")
    return Caller(role=claims["role"], user_id=claims["sub"])


def _key_or_bearer(request: Request) -> Caller:
    key = request.headers.get(SERVICE_KEY_HEADER)
    if key is not None:
        _key_valid(_settings(request), key)
        return Caller(role="service")
    caller = _bearer_caller(request)
    if caller is None:
        raise Unauthorized("Access token required")
    return caller


async def _optional_uploader(request: Request) -> Uploader:
    """Upload (``opt``): a sent credential must be valid; none is anonymous unless disallowed."""
    if SERVICE_KEY_HEADER.lower() in request.headers or "authorization" in request.headers:
        caller = _key_or_bearer(request)
        return Uploader(role=caller.role, user_id=caller.user_id)
    if not _settings(request).MEDIA_ALLOW_ANONYMOUS:
        raise Unauthorized("Access token required")
    return Uploader()


async def _service_or_admin(request: Request) -> Caller:
    caller = _key_or_bearer(request)
    if caller.role not in ("service", "admin"):
        raise Forbidden("Admin access required")
    return caller


async def _service_admin_or_user(request: Request) -> Caller:
    """K/A/U: whether a user is the uploader is decided against the row (domain)."""
    return _key_or_bearer(request)


async def _service_only(request: Request) -> Caller:
    _key_valid(_settings(request), request.headers.get(SERVICE_KEY_HEADER))
    return Caller(role="service")


OptionalUploader = Annotated[Uploader, Depends(_optional_uploader)]
ServiceOrAdmin = Annotated[Caller, Depends(_service_or_admin)]
ServiceAdminOrUploader = Annotated[Caller, Depends(_service_admin_or_user)]
ServiceOnly = Annotated[Caller, Depends(_service_only)]
