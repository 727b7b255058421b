"""What every kind of user account shares: the token pair, refresh-token rotation, access
checks and single-use secret tokens (password reset, email verification).

Customers and sellers each keep their own collections; these pieces work on whichever
collection they are given.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from shared.auth import Role, decode_token, issue_token
from shared.responses import Forbidden, Unauthorized, ValidationFailed
from shared.settings import ServiceSettings
from shared.store import Collection, Document, new_id
from shared.timeutil import now_iso
from shared.validation import page_params, parse_bool

ACCOUNT_DEACTIVATED = "Account is deactivated"
INVALID_REFRESH = "Invalid refresh token"

AccountLoader = Callable[[str], Awaitable[Document | None]]


def sha256_hex(token: str) -> str:
    """The SHA-256 hex digest under which a secret token is stored (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret_token() -> tuple[str, str]:
    """A fresh URL-safe secret (``token_urlsafe(32)``) and its SHA-256 hex."""
    token = secrets.token_urlsafe(32)
    return token, sha256_hex(token)


class RefreshTokens:
    """The ``refresh_tokens`` collection: one row per issued refresh token (by ``jti``)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    async def create_indexes(self) -> None:
        await self.collection.create_index("jti", unique=True)
        await self.collection.create_index("userId")

    async def save(self, *, jti: str, user_id: str, expires_at: str) -> None:
        await self.collection.insert_one(
            {"_id": new_id(), "jti": jti, "userId": user_id, "expiresAt": expires_at, "revokedAt": None,
             "createdAt": now_iso()}
        )  # fmt: skip

    async def consume(self, jti: str) -> Document | None:
        """Revoke a live token and return it; None when unknown, revoked or expired, so of two
        concurrent refreshes with one token only one wins."""
        now = now_iso()
        return await self.collection.find_one_and_update(
            {"jti": jti, "revokedAt": None, "expiresAt": {"$gt": now}}, {"$set": {"revokedAt": now}}
        )

    async def revoke_all(self, user_id: str) -> None:
        """Revoke every live refresh token of ``user_id`` (password change, deactivation)."""
        await self.collection.update_many({"userId": user_id, "revokedAt": None}, {"$set": {"revokedAt": now_iso()}})


class AccountTokens:
    """Issues and checks the tokens of one role's accounts.

    Account documents carry ``_id``, ``email``, ``firstName``, ``lastName``, ``isActive``
    and ``tokenVersion`` (copied into tokens as ``ver``, so bumping it revokes them).
    """

    def __init__(self, settings: ServiceSettings, refresh_tokens: RefreshTokens, *, role: Role) -> None:
        self.settings = settings
        self.refresh_tokens = refresh_tokens
        self.role = role

    async def issue(self, account: Mapping[str, Any]) -> dict[str, str]:
        """Sign an access and a refresh token (recording the refresh ``jti``); answer
        ``token``, ``accessToken`` (the same) and ``refreshToken``."""
        version = int(account.get("tokenVersion", 0))
        common = {"subject": account["_id"], "role": self.role, "email": account["email"], "version": version}
        access, _ = issue_token(
            self.settings,
            **common,
            extra={"id": account["_id"], "firstName": account["firstName"], "lastName": account["lastName"]},
        )
        refresh, claims = issue_token(self.settings, **common, token_type="refresh", extra={"id": account["_id"]})
        await self.refresh_tokens.save(
            jti=claims["jti"],
            user_id=account["_id"],
            expires_at=now_iso(timedelta(seconds=self.settings.JWT_REFRESH_EXPIRES_SECONDS)),
        )
        return {"token": access, "accessToken": access, "refreshToken": refresh}

    async def authenticate(self, claims: Mapping[str, Any], load: AccountLoader) -> Document:
        """The account behind verified access-token ``claims``, checked in the contract's
        order: role (403) → exists (401) → active (403) → ``ver`` current (401)."""
        if claims.get("role") != self.role:
            raise Forbidden("Access denied")
        account = await load(str(claims.get("sub")))
        if account is None:
            raise Unauthorized("Invalid token")
        if not account.get("isActive", True):
            raise Forbidden(ACCOUNT_DEACTIVATED)
        if claims.get("ver") != account.get("tokenVersion", 0):
            raise Unauthorized("Invalid token")
        return account

    async def rotate(self, refresh_token: str, load: AccountLoader) -> dict[str, str]:
        """Exchange a refresh token for a new pair: JWT → type → live ``jti`` (consumed
        atomically) → account exists → active → ``ver`` current."""
        claims = decode_token(self.settings, refresh_token, expected_type="refresh", invalid_message=INVALID_REFRESH)
        if claims.get("role") != self.role or not claims.get("jti"):
            raise Unauthorized(INVALID_REFRESH)
        if await self.refresh_tokens.consume(str(claims["jti"])) is None:
            raise Unauthorized(INVALID_REFRESH)
        account = await load(str(claims["sub"]))
        if account is None:
            raise Unauthorized(INVALID_REFRESH)
        if not account.get("isActive", True):
            raise Forbidden(ACCOUNT_DEACTIVATED)
        if claims.get("ver") != account.get("tokenVersion", 0):
            raise Unauthorized(INVALID_REFRESH)
        return await self.issue(account)


def account_list_query(params: Mapping[str, str], *, sortable: Iterable[str]) -> dict[str, Any]:
    """The admin list filters customers and sellers share: ``page``, ``limit`` (1–100),
    ``search`` (≤ 100 chars), ``status`` (active | inactive | all) or ``isActive``,
    ``verified`` / ``isVerified``, ``sort`` (one of ``sortable``, ``-`` for descending).

    Empty values count as absent, other keys are ignored, bad values are one 400 listing
    every bad field.
    """
    q = {k: v for k, v in params.items() if v != ""}
    page, limit = page_params(q.get("page"), q.get("limit"), default_limit=10, max_limit=100)
    errors = []
    search = q.get("search", "").strip() or None
    if search and len(search) > 100:
        errors.append({"field": "search", "message": "Search cannot exceed 100 characters"})
    active: bool | None = None
    status = q.get("status", "all")
    if status not in ("active", "inactive", "all"):
        errors.append({"field": "status", "message": "Status must be active, inactive or all"})
    elif status != "all":
        active = status == "active"
    if "isActive" in q:
        active = parse_bool(q["isActive"])
        if active is None:
            errors.append({"field": "isActive", "message": "isActive must be true or false"})
    verified: bool | None = None
    for key in ("verified", "isVerified"):
        if key in q:
            verified = parse_bool(q[key])
            if verified is None:
                errors.append({"field": key, "message": f"{key} must be true or false"})
    sort = q.get("sort", "-createdAt")
    fields = list(sortable)
    if sort.lstrip("-") not in fields:
        errors.append({"field": "sort", "message": f"sort must be one of {', '.join(fields)}"})
    if errors:
        raise ValidationFailed(errors=errors)
    return {"page": page, "limit": limit, "search": search, "active": active, "verified": verified, "sort": sort}
