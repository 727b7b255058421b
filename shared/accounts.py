"""The account service customers and sellers share: the token pair and refresh rotation,
sign-in (with lockout where configured), the password flows (forgot / reset / change, with
single-use secret tokens), the admin list, stats, the service views, registration made
atomic with its emails, and email queueing through the outbox.

What differs between the two kinds of account is data (:class:`AccountRules`: role,
collection messages, searchable and sortable fields, how payloads name the account,
lockout) and a few hooks a subclass fills (:meth:`AccountService.email_data`,
:meth:`AccountService.on_token_version_bump`). Every query and update document lives in
:class:`AccountRepository`, which each service's repository extends.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Query

from shared.auth import Role, decode_token, issue_token
from shared.outbox import Outbox, OutboxRequest
from shared.passwords import hash_password, verify_and_update, verify_dummy, verify_password
from shared.responses import (
    BadRequest,
    Conflict,
    Forbidden,
    Locked,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from shared.settings import ServiceSettings
from shared.store import Collection, Document, DocumentStore, DuplicateKeyError, new_id, stamped_update
from shared.timeutil import iso, now_iso, utcnow
from shared.validation import page_params, pagination, parse_bool

ACCOUNT_DEACTIVATED = "Account is deactivated"
INVALID_REFRESH = "Invalid refresh token"
INVALID_CREDENTIALS = "Invalid credentials"
PASSWORDS_DIFFER = "Passwords do not match"
ACCOUNT_LOCKED = "Account temporarily locked due to multiple failed login attempts. Please try again later."

EMAIL_KIND = "email"
MEDIA_KIND = "media_mark_used"
NOTIFY_PERMANENT = frozenset({502})
REGISTRATION_GRACE = timedelta(minutes=10)
"""How long an email row may wait for the account it was queued before (registration)."""

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
        return await self.issue(account=account)


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


def account_list_params(*, sortable: Iterable[str]) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A dependency reading the admin list's query (:func:`account_list_query`), each
    parameter declared so the OpenAPI document shows it; answers the parsed filters."""
    fields = list(sortable)

    async def dependency(
        page: str | None = None,
        limit: str | None = None,
        search: str | None = None,
        status: Annotated[str | None, Query(description="active, inactive or all")] = None,
        isActive: str | None = None,
        verified: str | None = None,
        isVerified: str | None = None,
        sort: str | None = None,
    ) -> dict[str, Any]:
        given = {
            "page": page, "limit": limit, "search": search, "status": status, "isActive": isActive,
            "verified": verified, "isVerified": isVerified, "sort": sort,
        }  # fmt: skip
        return account_list_query({k: v for k, v in given.items() if v is not None}, sortable=fields)

    return dependency


# The account service


@dataclass(frozen=True, slots=True)
class Lockout:
    """Lock an account for ``minutes`` after ``max_attempts`` wrong passwords in a row."""

    max_attempts: int
    minutes: int


@dataclass(frozen=True, slots=True)
class AccountRules:
    """What differs between two kinds of account."""

    role: Role
    owner_field: str
    """How outbox payloads and service answers name the account: ``customerId``, ``sellerId``."""
    not_found: str
    duplicate_email: str
    searchable: tuple[str, ...]
    sortable: Mapping[str, str]
    """Public sort key → stored field."""
    list_key: str
    """The key of the admin list's items: ``customers``, ``sellers``."""
    lockout: Lockout | None = None
    reset_path: str = ""
    """Front-end path of the reset page, e.g. ``/customer/reset-password``."""
    extra_reset_fields: Mapping[str, Any] = field(default_factory=dict)


class AccountRepository:
    """The queries and updates every account collection takes (plus ``refresh_tokens``).

    Conditions are built here from intentions (``reset_password(token_hash=…)``), so the
    domain modules hold rules, not store operators.
    """

    def __init__(self, store: DocumentStore, collection: str) -> None:
        self.accounts: Collection = store.collection(collection)
        self.refresh_tokens = RefreshTokens(store.collection("refresh_tokens"))

    async def create_indexes(self) -> None:
        """The indexes every account collection needs (services add their own)."""
        await self.create_account_indexes(())

    async def create_account_indexes(self, fields: Iterable[str]) -> None:
        await self.accounts.create_index("email", unique=True)
        for name in fields:
            await self.accounts.create_index(name)
        await self.refresh_tokens.create_indexes()

    async def insert_account(self, doc: Document) -> Document:
        """Insert ``doc`` (its ``_id`` kept when set); raises ``DuplicateKeyError`` on a taken email."""
        now = now_iso()
        doc = {"_id": doc.get("_id") or new_id(), **doc, "createdAt": now, "updatedAt": now}
        await self.accounts.insert_one(doc)
        return doc

    async def get(self, account_id: str) -> Document | None:
        return await self.accounts.find_one({"_id": account_id})

    async def get_by_email(self, email: str) -> Document | None:
        return await self.accounts.find_one({"email": email})

    async def get_active(self, ids: Sequence[str]) -> list[Document]:
        return await self.accounts.find({"_id": {"$in": list(ids)}, "isActive": True})

    async def update(
        self,
        condition: Mapping[str, Any],
        *,
        set_fields: Mapping[str, Any] | None = None,
        unset: Sequence[str] = (),
        inc: Mapping[str, int] | None = None,
        returning: Literal["before", "after"] = "after",
    ) -> Document | None:
        """One conditional atomic update on field equalities; None when nothing matched."""
        update = stamped_update(set_fields=set_fields, unset=unset, inc=inc)
        return await self.accounts.find_one_and_update(dict(condition), update, return_document=returning)

    async def set_fields(self, account_id: str, fields: Mapping[str, Any]) -> Document | None:
        return await self.update({"_id": account_id}, set_fields=fields)

    async def replace_hash(self, account_id: str, *, old: str, new: str) -> bool:
        """Store an upgraded hash unless the password changed meanwhile."""
        return await self.update({"_id": account_id, "passwordHash": old}, set_fields={"passwordHash": new}) is not None

    async def record_login(self, account_id: str, *, now: str, unlock: bool) -> Document | None:
        """Stamp ``lastLogin``; with ``unlock``, only while not locked, clearing the counters."""
        if not unlock:
            return await self.set_fields(account_id, {"lastLogin": now})
        return await self.update(
            {"_id": account_id, "$or": [{"lockUntil": None}, {"lockUntil": {"$lte": now}}]},
            set_fields={"loginAttempts": 0, "lockUntil": None, "lastLogin": now},
        )

    async def clear_expired_lock(self, account_id: str, *, lock: str) -> Document | None:
        """Reset the counters if the lock is still the one read (``lock``)."""
        return await self.update(
            {"_id": account_id, "lockUntil": lock}, set_fields={"loginAttempts": 0, "lockUntil": None}
        )

    async def count_failed_login(self, account_id: str, *, limit: int) -> Document | None:
        """One more wrong password while below ``limit``; None when already at the limit."""
        return await self.update({"_id": account_id, "loginAttempts": {"$lt": limit}}, inc={"loginAttempts": 1})

    async def lock(self, account_id: str, *, now: str, until: str) -> None:
        """Lock until ``until`` unless a live lock is already set (the first locker's time stays)."""
        await self.update(
            {"_id": account_id, "$or": [{"lockUntil": None}, {"lockUntil": {"$lte": now}}]},
            set_fields={"lockUntil": until},
        )

    async def reset_password(
        self, *, token_hash: str, now: str, password_hash: str, also_set: Mapping[str, Any]
    ) -> Document | None:
        """Spend a live reset token: new hash, token fields removed, token version bumped."""
        return await self.update(
            {"passwordResetTokenHash": token_hash, "passwordResetExpires": {"$gt": now}},
            set_fields={"passwordHash": password_hash, "passwordChangedAt": now, **also_set},
            unset=("passwordResetTokenHash", "passwordResetExpires"),
            inc={"tokenVersion": 1},
        )

    async def change_password(self, account_id: str, *, password_hash: str, now: str) -> Document | None:
        """New hash and token version for an active account; None when it is inactive."""
        return await self.update(
            {"_id": account_id, "isActive": True},
            set_fields={"passwordHash": password_hash, "passwordChangedAt": now},
            inc={"tokenVersion": 1},
        )

    async def store_secret(self, account_id: str, *, purpose: str, token_hash: str, expires: str) -> None:
        """Keep ``<purpose>TokenHash``/``<purpose>Expires``, replacing any older token."""
        await self.set_fields(account_id, {f"{purpose}TokenHash": token_hash, f"{purpose}Expires": expires})

    async def spend_secret(
        self, *, purpose: str, token_hash: str, now: str, set_fields: Mapping[str, Any]
    ) -> Document | None:
        """Use a live ``purpose`` token once: apply ``set_fields`` and remove the token."""
        return await self.update(
            {f"{purpose}TokenHash": token_hash, f"{purpose}Expires": {"$gt": now}},
            set_fields=set_fields,
            unset=(f"{purpose}TokenHash", f"{purpose}Expires"),
        )

    async def search(
        self,
        *,
        text: str | None,
        fields: Sequence[str],
        active: bool | None,
        verified: bool | None,
        sort: tuple[str, int],
        skip: int,
        limit: int,
    ) -> tuple[list[Document], int]:
        """A page of accounts whose ``fields`` contain ``text`` (case-insensitive), and the total."""
        query: dict[str, Any] = {}
        if text:
            pattern = re.escape(text)
            query["$or"] = [{name: {"$regex": pattern, "$options": "i"}} for name in fields]
        if active is not None:
            query["isActive"] = active
        if verified is not None:
            query["isVerified"] = verified
        name, direction = sort
        items = await self.accounts.find(query, sort=[(name, direction), ("_id", direction)], skip=skip, limit=limit)
        return items, await self.accounts.count(query)

    async def counts(self) -> dict[str, int]:
        return {
            "total": await self.accounts.count({}),
            "active": await self.accounts.count({"isActive": True}),
            "verified": await self.accounts.count({"isVerified": True}),
        }


def _locked(lock_until: str) -> Locked:
    return Locked(ACCOUNT_LOCKED, extra={"lockUntil": lock_until})


def check_confirmation(new_password: str, confirm: str | None) -> None:
    """400 ``Passwords do not match`` when a sent confirmation differs."""
    if confirm is not None and confirm != new_password:
        raise ValidationFailed.field("confirmPassword", PASSWORDS_DIFFER, top=PASSWORDS_DIFFER)


class AccountService(ABC):
    """The use cases every kind of account has. Public methods are keyword-only; a service's
    subclass supplies the two abstract hooks (its list view and its emails' data).

    ``clock`` gives "now" for the rules that depend on time (lockout, token expiry); tests
    advance it instead of waiting.
    """

    def __init__(
        self,
        *,
        repo: AccountRepository,
        outbox: Outbox,
        settings: ServiceSettings,
        rules: AccountRules,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.outbox = outbox
        self.settings = settings
        self.rules = rules
        self.clock = clock
        self.tokens = AccountTokens(settings, repo.refresh_tokens, role=rules.role)

    def now(self, *, delta: timedelta | None = None) -> str:
        return iso(self.clock() + delta if delta else self.clock())

    # hooks

    @abstractmethod
    def list_view(self, *, account: Document) -> dict[str, Any]:
        """How one account is answered in the admin list."""

    @abstractmethod
    async def email_data(self, *, template: str, account: Document) -> dict[str, Any] | None:
        """The ``data`` of an email of ``template`` for ``account``; None sends nothing."""

    async def on_token_version_bump(self, *, account_id: str) -> None:
        """After a password change or reset, or a deactivation: refresh tokens are revoked.
        Sellers also tell products (their tokens are checked there)."""
        await self.repo.refresh_tokens.revoke_all(account_id)

    # tokens

    async def authenticate(self, *, claims: Mapping[str, Any]) -> Document:
        """The account behind verified access-token ``claims``: role → exists → active → ``ver``."""
        return await self.tokens.authenticate(claims=claims, load=self.repo.get)

    async def refresh(self, *, refresh_token: str) -> dict[str, str]:
        """Rotate a refresh token: only the first presenter of a live ``jti`` gets new tokens."""
        return await self.tokens.rotate(refresh_token=refresh_token, load=self.repo.get)

    async def get_account(self, *, account_id: str) -> Document:
        account = await self.repo.get(account_id)
        if account is None:
            raise NotFound(self.rules.not_found)
        return account

    # registration

    async def register_account(self, *, doc: Document, emails: Sequence[str] = ()) -> Document:
        """Insert the account with its ``emails`` queued, atomically for the emails' sake.

        The outbox rows go first, under the id the account will have, and their sender
        waits for the account (:meth:`build_email`); so an account never exists without its
        emails, and rows left by a registration that did not complete are closed unsent.
        """
        account_id = new_id()
        keys = [await self._enqueue_email(template, account_id) for template in emails]
        try:
            account = await self.repo.insert_account({"_id": account_id, **doc})
        except DuplicateKeyError:
            await self._forget(keys)
            raise Conflict(
                self.rules.duplicate_email, errors=[{"field": "email", "message": "Email already exists"}]
            ) from None
        except BaseException:
            await self._forget(keys)
            raise
        for key in keys:
            self.outbox.send_soon(key)
        return account

    async def _forget(self, keys: Sequence[str]) -> None:
        for key in keys:
            await self.outbox.rows.delete_one({"dedupeKey": key})

    # sign-in

    async def sign_in(self, *, email: str, password: str) -> tuple[Document, dict[str, str]]:
        """Check the password (lockout first where configured); answer the account and tokens.

        A hash of an older scheme is replaced by an Argon2id one on success.
        """
        account = await self.repo.get_by_email(email)
        if account is None:
            await verify_dummy(password)
            raise Unauthorized(INVALID_CREDENTIALS)
        if self.rules.lockout is not None:
            account = await self._unless_locked(account)
        matches, new_hash = await verify_and_update(password, account["passwordHash"])
        if not matches:
            if self.rules.lockout is not None:
                await self._count_failure(account["_id"], self.rules.lockout)
            raise Unauthorized(INVALID_CREDENTIALS)
        if not account.get("isActive", True):
            raise Forbidden(ACCOUNT_DEACTIVATED)
        if new_hash is not None:
            await self.repo.replace_hash(account["_id"], old=account["passwordHash"], new=new_hash)
        now = self.now()
        updated = await self.repo.record_login(account["_id"], now=now, unlock=self.rules.lockout is not None)
        if updated is None:  # a lock set by parallel failures meanwhile wins
            current = await self._existing(account["_id"])
            raise _locked(current.get("lockUntil") or now)
        return updated, await self.tokens.issue(account=updated)

    async def _unless_locked(self, account: Document) -> Document:
        """423 while locked; an expired lock is cleared only if nobody changed it since read."""
        now = self.now()
        lock = account.get("lockUntil")
        if lock and lock > now:
            raise _locked(lock)
        if lock and await self.repo.clear_expired_lock(account["_id"], lock=lock) is None:
            account = await self._existing(account["_id"])
            lock = account.get("lockUntil")
            if lock and lock > now:
                raise _locked(lock)
        return account

    async def _count_failure(self, account_id: str, lockout: Lockout) -> None:
        """Count one wrong password atomically; always raises (401, or 423 once locked)."""
        after = await self.repo.count_failed_login(account_id, limit=lockout.max_attempts)
        if after is None:  # parallel failures already reached the limit: make sure it is locked
            raise _locked(await self._ensure_lock(account_id, lockout))
        if after["loginAttempts"] >= lockout.max_attempts:
            await self._ensure_lock(account_id, lockout)
        raise Unauthorized(INVALID_CREDENTIALS)

    async def _ensure_lock(self, account_id: str, lockout: Lockout) -> str:
        until = self.now(delta=timedelta(minutes=lockout.minutes))
        await self.repo.lock(account_id, now=self.now(), until=until)
        current = await self.repo.get(account_id)
        return (current or {}).get("lockUntil") or until

    async def _existing(self, account_id: str) -> Document:
        account = await self.repo.get(account_id)
        if account is None:
            raise Unauthorized(INVALID_CREDENTIALS)
        return account

    # passwords

    async def forgot_password(self, *, email: str) -> None:
        """Queue a reset email for an existing active account (silently nothing otherwise)."""
        account = await self.repo.get_by_email(email)
        if account is not None and account.get("isActive", True):
            await self.queue_email(template="password_reset", account_id=account["_id"])

    async def reset_password(self, *, token: str, new_password: str, confirm: str | None) -> None:
        """Set a new password with an emailed token (single use); every older token refused."""
        check_confirmation(new_password, confirm)
        password_hash = await hash_password(new_password)
        account = await self.repo.reset_password(
            token_hash=sha256_hex(token),
            now=self.now(),
            password_hash=password_hash,
            also_set=self.rules.extra_reset_fields,
        )
        if account is None:
            raise BadRequest("Invalid or expired reset token")
        await self.on_token_version_bump(account_id=account["_id"])

    async def change_password(
        self, *, account: Document, current: str, new_password: str, confirm: str
    ) -> dict[str, str]:
        """New hash and token version (every older token refused); answers a fresh pair."""
        check_confirmation(new_password, confirm)
        if not await verify_password(current, account["passwordHash"]):
            raise BadRequest("Current password is incorrect")
        password_hash = await hash_password(new_password)
        updated = await self.repo.change_password(account["_id"], password_hash=password_hash, now=self.now())
        if updated is None:
            raise Forbidden(ACCOUNT_DEACTIVATED)
        await self.on_token_version_bump(account_id=account["_id"])
        return await self.tokens.issue(account=updated)

    async def new_secret(self, *, account_id: str, purpose: str, ttl_seconds: int) -> str:
        """A fresh single-use token for ``purpose``; only its SHA-256 is stored."""
        token, token_hash = new_secret_token()
        expires = self.now(delta=timedelta(seconds=ttl_seconds))
        await self.repo.store_secret(account_id, purpose=purpose, token_hash=token_hash, expires=expires)
        return token

    # admin and service views

    async def admin_list(
        self, *, page: int, limit: int, search: str | None, active: bool | None, verified: bool | None, sort: str
    ) -> dict[str, Any]:
        direction = -1 if sort.startswith("-") else 1
        docs, total = await self.repo.search(
            text=search,
            fields=self.rules.searchable,
            active=active,
            verified=verified,
            sort=(self.rules.sortable[sort.lstrip("-")], direction),
            skip=(page - 1) * limit,
            limit=limit,
        )
        return {
            self.rules.list_key: [self.list_view(account=d) for d in docs],
            "pagination": pagination(page, limit, total),
        }

    async def stats(self) -> dict[str, int]:
        return await self.repo.counts()

    async def active_in_order(self, *, ids: Sequence[str]) -> list[Document]:
        """The active accounts among ``ids`` in input order (duplicates and unknown dropped)."""
        unique_ids = list(dict.fromkeys(ids))
        found = {d["_id"]: d for d in await self.repo.get_active(unique_ids)}
        return [found[i] for i in unique_ids if i in found]

    async def verify_summary(self, *, account_id: str) -> tuple[Document | None, dict[str, Any]]:
        """The account (or None) and the common part of the ``service/verify`` answer."""
        account = await self.repo.get(account_id)
        active = bool(account and account.get("isActive", True))
        return account, {
            self.rules.owner_field: account_id,
            "isValid": active,
            "isActive": active,
            "isVerified": bool(account and account.get("isVerified")),
        }

    # outbox

    async def queue(self, *, kind: str, dedupe_key: str, payload: Mapping[str, Any]) -> None:
        """Queue a call and try it in the background at once."""
        await self.outbox.enqueue(kind=kind, dedupe_key=dedupe_key, payload=payload)
        self.outbox.send_soon(dedupe_key)

    async def queue_email(self, *, template: str, account_id: str) -> None:
        self.outbox.send_soon(await self._enqueue_email(template, account_id))

    async def _enqueue_email(self, template: str, account_id: str) -> str:
        key = f"{template}:{account_id}"
        payload = {"template": template, self.rules.owner_field: account_id}
        await self.outbox.enqueue(kind=EMAIL_KIND, dedupe_key=key, payload=payload)
        return key

    async def queue_media_mark_used(self, *, media_id: str) -> None:
        await self.queue(kind=MEDIA_KIND, dedupe_key=f"media:{media_id}", payload={"mediaId": media_id})

    async def build_email(self, *, row: Mapping[str, Any]) -> OutboxRequest | None:
        """Build an email call at send time from the current account (outbox handler).

        No call for an inactive account. A row queued at registration may be read before
        its account is stored: it is retried for :data:`REGISTRATION_GRACE`, then closed.
        """
        template = row["payload"]["template"]
        account = await self.repo.get(row["payload"][self.rules.owner_field])
        if account is None:
            if (row.get("createdAt") or "") > now_iso(-REGISTRATION_GRACE):
                raise LookupError("the account of this email is not stored yet")
            return None
        if not account.get("isActive", True):
            return None
        data = await self.email_data(template=template, account=account)
        if data is None:
            return None
        name = f"{account['firstName']} {account['lastName']}"
        return OutboxRequest(
            service="notifications",
            method="POST",
            path="/api/v1/send",
            json={"template": template, "recipient_email": account["email"], "recipient_name": name, "data": data},
            timeout=5.0,
            permanent_statuses=NOTIFY_PERMANENT,
        )

    def front_url(self, *, path: str) -> str:
        return f"{self.settings.FRONTEND_URL.rstrip('/')}{path}"

    async def reset_link(self, *, account: Document) -> str:
        ttl = int(getattr(self.settings, "RESET_TOKEN_TTL_SECONDS", 3600))
        token = await self.new_secret(account_id=account["_id"], purpose="passwordReset", ttl_seconds=ttl)
        return self.front_url(path=f"{self.rules.reset_path}?token={token}")

    @staticmethod
    async def build_media_mark_used(*, row: Mapping[str, Any]) -> OutboxRequest:
        """Mark a profile image or logo used in the media service (outbox handler)."""
        return OutboxRequest(
            service="media", method="POST", path=f"/api/v1/media/mark-used/{row['payload']['mediaId']}", timeout=5.0
        )
