"""JWT issue/verify and the reusable FastAPI auth dependencies.

Tokens are signed with ``JWT_SECRET`` using exactly ``JWT_ALGORITHM`` (``alg`` pinned, so
``none`` and any other algorithm are refused). Claims: ``sub``, ``role``, ``email``,
``type`` (access | refresh), ``iat``, ``exp``, ``jti``, ``ver`` plus service extras.

Dependencies read the settings from ``request.app.state.settings``:

* :data:`BearerClaims` — any valid access token;
* :func:`require_role` — an access token of one role (403 ``Access denied`` otherwise);
* :data:`ServiceKey` — a valid ``X-Service-Key`` (401 missing / 403 wrong);
* :func:`any_of` — the first of several credentials that is present wins.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request

from shared.responses import Forbidden, Unauthorized
from shared.settings import ServiceSettings

Role = Literal["customer", "seller", "admin"]
TokenType = Literal["access", "refresh"]

SERVICE_KEY_HEADER = "X-Service-Key"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (from a verified token) or another service."""

    kind: Literal["user", "service"]
    role: str | None = None
    user_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_service(self) -> bool:
        return self.kind == "service"


def issue_token(
    settings: ServiceSettings,
    *,
    subject: str,
    role: Role,
    email: str,
    token_type: TokenType = "access",
    version: int = 0,
    extra: Mapping[str, Any] | None = None,
    expires_in: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign a token; return it with its claims (the ``jti`` is new each time)."""
    now = int(time.time())
    if expires_in is None:
        expires_in = settings.JWT_EXPIRES_SECONDS if token_type == "access" else settings.JWT_REFRESH_EXPIRES_SECONDS
    claims: dict[str, Any] = dict(extra or {})
    claims.update(
        sub=subject,
        role=role,
        email=email,
        type=token_type,
        iat=now,
        exp=now + expires_in,
        jti=uuid.uuid4().hex,
        ver=version,
    )
    return jwt.encode(claims, settings.JWT_SECRET, algorithm=settings.JWT_ALGORITHM), claims


def decode_token(
    settings: ServiceSettings,
    token: str,
    *,
    expected_type: TokenType = "access",
    invalid_message: str = "Invalid token",
) -> dict[str, Any]:
    """Verify signature, algorithm, expiry and ``type``; return the claims.

    Raises :class:`Unauthorized` ``Token expired`` or ``invalid_message``.
    """
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SECRET,
            algorithms=[settings.JWT_ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Token expired") from None
    except jwt.PyJWTError:
        raise Unauthorized(invalid_message) from None
    # A token without a ``type`` claim is no access token (nor a refresh token).
    if claims.get("type") != expected_type or not isinstance(claims.get("sub"), str):
        raise Unauthorized(invalid_message)
    return claims


def _settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_service_key(
    settings: ServiceSettings,
    presented: str | None,
    *,
    missing_message: str = "Service key required",
    invalid_message: str = "Invalid service key",
) -> None:
    """401 ``missing_message`` when absent, 403 ``invalid_message`` when wrong.

    Every configured key is compared in constant time (no early exit on a match).
    """
    if not presented:
        raise Unauthorized(missing_message)
    given = presented.encode()
    matched = False
    for key in settings.service_keys:
        matched |= hmac.compare_digest(given, key.encode())
    if not matched:
        raise Forbidden(invalid_message)


async def _bearer_claims(request: Request) -> dict[str, Any]:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Access token required")
    return decode_token(_settings(request), token)


async def _service_principal(request: Request) -> Principal:
    check_service_key(_settings(request), request.headers.get(SERVICE_KEY_HEADER))
    return Principal(kind="service")


BearerClaims = Annotated[dict[str, Any], Depends(_bearer_claims)]
"""Claims of a valid access token of any role."""

ServiceKey = Annotated[Principal, Depends(_service_principal)]
"""A caller that presented a valid ``X-Service-Key``."""


def role_principal(claims: Mapping[str, Any], *roles: str) -> Principal:
    """The principal for ``claims`` if its role is one of ``roles``, else 403 ``Access denied``."""
    if claims.get("role") not in roles:
        raise Forbidden("Access denied")
    return Principal(kind="user", role=claims["role"], user_id=claims["sub"], claims=claims)


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency accepting an access token whose role is one of ``roles``."""

    async def dependency(claims: BearerClaims) -> Principal:
        return role_principal(claims, *roles)

    return dependency


def any_of(*, service: bool = True, roles: tuple[Role, ...] = ()) -> Callable[..., Awaitable[Principal]]:
    """A dependency accepting a service key (it wins when the header is present) or a bearer
    token of one of ``roles``. With neither present: 401 ``Access token required``."""

    async def dependency(request: Request) -> Principal:
        if service and SERVICE_KEY_HEADER.lower() in request.headers:
            return await _service_principal(request)
        if roles:
            return role_principal(await _bearer_claims(request), *roles)
        raise Unauthorized("Service key required")

    return dependency
