"""JWT issue/verify and the reusable FastAPI auth dependencies.

Tokens are signed with ``JWT_SECRET`` using exactly ``JWT_ALGORITHM`` (``alg`` pinned, so
``none`` and any other algorithm are refused). Claims: ``sub``, ``role``, ``email``,
``type`` (access | refresh), ``iat``, ``exp``, ``jti``, ``ver`` plus service extras.

Dependencies read the settings from ``request.app.state.settings``:

* :data:`BearerClaims` — any valid access token;
* :func:`require_role` — an access token of one role (403 ``Access denied`` otherwise);
* :data:`ServiceKey` — a valid ``X-Service-Key`` (401 missing / 403 wrong);
* :func:`any_of` — the first of several credentials that is present wins;
* :func:`optional_caller` — public endpoints where sent credentials must be valid;
* :class:`AuthRules` — a service's own wording of these answers.
"""

from __future__ import annotations

import hmac
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Annotated, Any, Literal

from fastapi import Depends, Request

from shared.responses import Forbidden, Unauthorized
from shared.settings import ServiceSettings


def _import_jwt() -> ModuleType:
    """PyJWT, without ``cryptography`` when nothing has imported it yet.

    PyJWT imports ``cryptography`` only to offer RSA/EC algorithms, at about 11 MB of RSS per
    process (``bench/footprint.py``); tokens here are HMAC only (``JWT_ALGORITHM`` is HS256/384/
    512, computed with the standard library), so PyJWT runs as if ``cryptography`` were not
    installed, which it handles (``ModuleNotFoundError``). The module is hidden only for this
    import: notifications still imports ``cryptography`` itself for the SMTP password.
    """
    if "jwt" in sys.modules or "cryptography" in sys.modules:
        import jwt  # already paid for: nothing to leave out

        return jwt
    sys.modules["cryptography"] = None  # type: ignore[assignment]
    try:
        import jwt
    finally:
        del sys.modules["cryptography"]
    return jwt


jwt = _import_jwt()

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


def any_of(
    *,
    service: bool = True,
    roles: tuple[Role, ...] = (),
    rules: AuthRules | None = None,
    anonymous: bool = False,
) -> Callable[..., Awaitable[Principal]]:
    """A dependency accepting a service key (it wins when the header is present) or a bearer
    token of one of ``roles``. With neither present: 401 ``Access token required`` — or None
    when ``anonymous`` (public endpoints, where credentials that are sent must still be valid).
    ``rules`` gives a service's own wording (see :class:`AuthRules`; its anonymous form is
    :func:`optional_caller`)."""
    if rules is not None:
        if anonymous:
            raise ValueError("with rules, use optional_caller(rules=...) for anonymous callers")
        return _any_of_with_rules(service=service, roles=roles, rules=rules)

    async def dependency(request: Request) -> Principal:
        if service and SERVICE_KEY_HEADER.lower() in request.headers:
            return await _service_principal(request)
        if anonymous and "authorization" not in request.headers:
            return None  # type: ignore[return-value]
        if roles:
            return role_principal(await _bearer_claims(request), *roles)
        raise Unauthorized("Service key required")

    return dependency


# -- per-service wording and the optional caller (added for media; products may use them) -----


@dataclass(frozen=True, slots=True)
class AuthRules:
    """How one service words its credential answers (the contracts word them differently)
    and how strictly it reads the headers.

    ``strict_headers``: a sent but empty ``X-Service-Key`` is a wrong key (403
    ``key_invalid``), not an absent one; and a sent ``Authorization`` that is not
    ``Bearer <token>`` is an invalid token (401 ``Invalid token``), not a missing one.
    """

    key_missing: str = "Service key required"
    key_invalid: str = "Invalid service key"
    wrong_role: str = "Access denied"
    strict_headers: bool = False


DEFAULT_RULES = AuthRules()


def _rules_key_principal(request: Request, rules: AuthRules) -> Principal:
    presented = request.headers.get(SERVICE_KEY_HEADER)
    if rules.strict_headers and presented is not None and not presented:
        raise Forbidden(rules.key_invalid)
    check_service_key(
        _settings(request), presented, missing_message=rules.key_missing, invalid_message=rules.key_invalid
    )
    return Principal(kind="service")


def _rules_bearer_claims(request: Request, rules: AuthRules) -> dict[str, Any]:
    token = bearer_token(request)
    if token is None:
        sent = "authorization" in request.headers
        raise Unauthorized("Invalid token" if sent and rules.strict_headers else "Access token required")
    return decode_token(_settings(request), token)


def _any_of_with_rules(
    *, service: bool, roles: tuple[Role, ...], rules: AuthRules
) -> Callable[..., Awaitable[Principal]]:
    """:func:`any_of` worded by ``rules``: the service key wins when its header is present,
    else a bearer token of one of ``roles`` (403 ``rules.wrong_role`` for another role); with
    neither, 401 ``Access token required`` (``rules.key_missing`` when only the key counts)."""

    async def dependency(request: Request) -> Principal:
        if service and SERVICE_KEY_HEADER.lower() in request.headers:
            return _rules_key_principal(request, rules)
        if roles:
            claims = _rules_bearer_claims(request, rules)
            if claims.get("role") not in roles:
                raise Forbidden(rules.wrong_role)
            return Principal(kind="user", role=claims["role"], user_id=claims["sub"], claims=claims)
        if service:
            return _rules_key_principal(request, rules)
        raise Unauthorized("Access token required")

    return dependency


_USER_ROLES: tuple[str, ...] = ("customer", "seller", "admin")


def optional_caller(*, rules: AuthRules = DEFAULT_RULES) -> Callable[..., Awaitable[Principal | None]]:
    """A dependency for public endpoints where sent credentials must still be valid.

    None when neither ``X-Service-Key`` nor ``Authorization`` is sent; a service principal
    for a valid key (the key wins when both are sent); a user principal for a valid access
    token of a known role. A sent key that is wrong is 403, a sent ``Authorization`` that is
    not a valid access token 401 (``Token expired`` / ``Invalid token``).
    """

    async def dependency(request: Request) -> Principal | None:
        if SERVICE_KEY_HEADER.lower() in request.headers:
            return _rules_key_principal(request, rules)
        if "authorization" not in request.headers:
            return None
        token = bearer_token(request)
        if token is None:
            raise Unauthorized("Invalid token")
        claims = decode_token(_settings(request), token)
        if claims.get("role") not in _USER_ROLES:
            raise Unauthorized("Invalid token")
        return Principal(kind="user", role=claims["role"], user_id=claims["sub"], claims=claims)

    return dependency
