"""The rules of the admin service: accounts, lockout, roles and permissions, the audit log,
bootstrap and the proxy's path and permission rules.

No HTTP types, no messages and no store operators here: public functions are keyword-only,
return data and raise the :class:`AdminError` subclasses below, which ``admin.api`` turns
into the contract's statuses and messages.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

from admin.repository import AdminRepository
from admin.settings import AdminSettings
from shared.accounts import new_secret_token, sha256_hex
from shared.auth import issue_token
from shared.outbox import Outbox, OutboxRequest
from shared.passwords import hash_password, too_long, verify_and_update, verify_dummy
from shared.store import Document, DuplicateKeyError
from shared.timeutil import iso, utcnow
from shared.validation import fields_of, pagination

log = logging.getLogger("admin.domain")

# Roles and permissions (§5.1)

SUPER_ADMIN: Final = "super_admin"
PERMISSIONS: Final = (
    "manage_users",
    "manage_sellers",
    "manage_products",
    "manage_orders",
    "view_analytics",
    "manage_settings",
    "send_notifications",
    "moderate_content",
)
ROLE_DEFAULTS: Final[Mapping[str, tuple[str, ...]]] = {
    "super_admin": PERMISSIONS,
    "admin": tuple(p for p in PERMISSIONS if p != "manage_settings"),
    "moderator": ("view_analytics", "moderate_content"),
}

# The proxy (§4.12, §5.3): service → (permission for any method, also allowed for GET/HEAD)
PROXY_PERMISSIONS: Final[Mapping[str, tuple[str, str]]] = {
    "customer": ("manage_users", "view_analytics"),
    "sellers": ("manage_sellers", "view_analytics"),
    "media": ("moderate_content", "view_analytics"),
    "products": ("manage_products", "view_analytics"),
    "orders": ("manage_orders", "view_analytics"),
    "notifications": ("send_notifications", "view_analytics"),
}
PROXY_SERVICES: Final = tuple(PROXY_PERMISSIONS)
READ_METHODS: Final = frozenset({"GET", "HEAD"})
AUDIT_PATH_MAX: Final = 2048

EMAIL_KIND: Final = "email"
NOTIFY_PERMANENT: Final = frozenset({502})
DEFAULT_EMAIL: Final = "admin@example.com"
DEFAULT_PASSWORD: Final = "admin123"
PASSWORD_MIN, PASSWORD_MAX = 8, 50
UPDATE_RETRIES: Final = 5
SUPER_RETRY_PAUSE_SECONDS: Final = 0.05

DEMO_ADMINS: Final = (
    ("admin@example.com", "admin123", "Super", "Admin", "super_admin"),
    ("manager@example.com", "manager123", "Platform", "Manager", "admin"),
    ("moderator@example.com", "moderator123", "Content", "Moderator", "moderator"),
)


# Errors (admin.api maps each to its status and message)


class AdminError(Exception):
    """A rule said no. The class says which rule; ``admin.api`` picks status and message."""


class InvalidCredentials(AdminError):
    pass


class AccountLocked(AdminError):
    def __init__(self, lock_until: str | None) -> None:
        super().__init__(lock_until)
        self.lock_until = lock_until


class AccountDeactivated(AdminError):
    pass


class InvalidToken(AdminError):
    pass


class NotAnAdmin(AdminError):
    """A valid token of another role (customer, seller)."""


class InsufficientPermissions(AdminError):
    pass


class InvalidResetToken(AdminError):
    pass


class PasswordsDoNotMatch(AdminError):
    pass


class EmailTaken(AdminError):
    pass


class AdminNotFound(AdminError):
    pass


class SelfChange(AdminError):
    """An admin tried to change its own role or deactivate itself."""


class LastSuperAdmin(AdminError):
    pass


class AuditUnavailable(AdminError):
    pass


class BootstrapRefused(AdminError):
    """Production start-up without usable ADMIN_EMAIL/ADMIN_PASSWORD; ``reason`` is for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Pure rules


def canonical_permissions(permissions: Iterable[str]) -> list[str]:
    """Known permissions in canonical order, without duplicates (unknown ones are dropped;
    request models refuse them before this point)."""
    given = set(permissions)
    return [p for p in PERMISSIONS if p in given]


def permissions_for(*, role: str, given: Iterable[str] | None) -> list[str]:
    """What an admin of ``role`` holds: all eight for a super_admin, else ``given`` (canonical)
    or the role's defaults."""
    if role == SUPER_ADMIN:
        return list(PERMISSIONS)
    if given is None:
        return list(ROLE_DEFAULTS[role])
    return canonical_permissions(given)


def has_permission(*, admin: Mapping[str, Any], permission: str) -> bool:
    """The stored role and permissions decide (never the token's); a super_admin has all."""
    return admin.get("role") == SUPER_ADMIN or permission in (admin.get("permissions") or ())


def is_super_admin(admin: Mapping[str, Any]) -> bool:
    return admin.get("role") == SUPER_ADMIN


def password_problem(password: str | None) -> str | None:
    """Why ``password`` breaks the password rule (8..50 characters, ≤ 72 bytes), or None."""
    if not password:
        return "missing"
    if len(password) < PASSWORD_MIN:
        return f"shorter than {PASSWORD_MIN} characters"
    if len(password) > PASSWORD_MAX:
        return f"longer than {PASSWORD_MAX} characters"
    if too_long(password):
        return "longer than 72 bytes"
    return None


def proxy_allows(admin: Mapping[str, Any], *, service: str, method: str) -> bool:
    """The permission map of §5.3 for ``method`` on ``service`` (a known proxy service)."""
    any_method, read_only = PROXY_PERMISSIONS[service]
    if has_permission(admin=admin, permission=any_method):
        return True
    return method.upper() in READ_METHODS and has_permission(admin=admin, permission=read_only)


def audited_method(method: str) -> bool:
    """Every call but GET/HEAD is audited (a CORS preflight never reaches the routes)."""
    return method.upper() not in READ_METHODS


_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Encoded characters refused anywhere in a proxied path: "/", "\", "@", "#", ":", "%"
# (double encoding), and every control character.
_REFUSED_ENCODED = frozenset({0x2F, 0x5C, 0x40, 0x23, 0x3A, 0x25, 0x7F, *range(0x20)})
_REFUSED_RAW = frozenset("\\@#:%")
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]*")


def proxy_path_is_safe(raw_path: str) -> bool:
    """True when the raw (still percent-encoded) ``{path…}`` of a proxy call may be forwarded.

    It must start with ``api/v1/``; no segment may be empty or ``.``/``..`` (raw or
    percent-encoded); no ``\\``, ``@``, ``#``, ``:`` (so no ``scheme:``), control character or
    non-ASCII byte, raw or encoded; no encoded ``/`` and no ``%25`` (double encoding); every
    ``%`` starts a valid escape.
    """
    if not raw_path.startswith("api/v1/") or len(raw_path) > 8192:
        return False
    if _BAD_PCT.search(raw_path):
        return False
    if any(int(code, 16) in _REFUSED_ENCODED for code in _PCT.findall(raw_path)):
        return False
    unescaped = _PCT.sub("", raw_path)
    if any(ch in _REFUSED_RAW or not (0x20 < ord(ch) < 0x7F) for ch in unescaped):
        return False
    segments = raw_path.split("/")
    if segments[-1] == "":
        segments = segments[:-1]  # one trailing slash is fine
    for segment in segments:
        if not segment or not _SEGMENT.fullmatch(segment):
            return False
        if unquote(segment) in (".", ".."):
            return False
    return True


# Views


def admin_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The public view of an admin: never the hash, tokens or counters."""
    return {
        "id": doc["_id"],
        **fields_of(doc, "firstName", "lastName", "email", "phone", "role"),
        "permissions": list(doc.get("permissions") or []),
        "isActive": bool(doc.get("isActive", True)),
        **fields_of(doc, "lastLogin", "createdAt", "updatedAt"),
    }


def login_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The admin as the login answer shows it."""
    return {
        "id": doc["_id"],
        **fields_of(doc, "firstName", "lastName", "email", "role"),
        "permissions": list(doc.get("permissions") or []),
    }


AUDIT_FIELDS = (
    "adminId", "adminEmail", "method", "service", "path", "query", "status", "durationMs", "requestId", "ip", "at",
)  # fmt: skip


def audit_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": doc["_id"], **fields_of(doc, *AUDIT_FIELDS)}


def page_of(items: Sequence[Any], *, page: int, limit: int, total: int) -> dict[str, Any]:
    return {"items": list(items), "pagination": pagination(page, limit, total)}


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who made a call and how it arrived (filled by the HTTP layer)."""

    admin: Mapping[str, Any]
    method: str
    service: str
    path: str
    query: str
    request_id: str
    ip: str


# Use cases


class Admins:
    """The admin service's use cases. Built once per app; methods are keyword-only.

    ``clock`` gives "now" for the rules that depend on time (lockout, reset expiry); tests
    move it instead of waiting.
    """

    def __init__(
        self,
        *,
        repo: AdminRepository,
        outbox: Outbox,
        settings: AdminSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.outbox = outbox
        self.settings = settings
        self.clock = clock

    def _now(self, delta: timedelta | None = None) -> str:
        return iso(self.clock() + delta if delta else self.clock())

    async def _hash(self, password: str) -> str:
        return await hash_password(password)  # Argon2id (ARCHITECTURE.md "Auth")

    # bootstrap and demo data (§5.5)

    def bootstrap_account(self) -> tuple[str, str]:
        """The (email, password) of the first super_admin; raises :class:`BootstrapRefused`
        in production when either is missing, the password is the default or breaks the rule."""
        email = (self.settings.ADMIN_EMAIL or "").strip().lower()
        password = self.settings.ADMIN_PASSWORD or ""
        if self.settings.ENV != "production":
            return email or DEFAULT_EMAIL, password or DEFAULT_PASSWORD
        if not email:
            raise BootstrapRefused("ADMIN_EMAIL must be set when ENV=production")
        if not password:
            raise BootstrapRefused("ADMIN_PASSWORD must be set when ENV=production")
        if password == DEFAULT_PASSWORD:
            raise BootstrapRefused("ADMIN_PASSWORD must not be the development default when ENV=production")
        problem = password_problem(password)
        if problem:
            raise BootstrapRefused(f"ADMIN_PASSWORD breaks the password rule ({problem})")
        return email, password

    async def bootstrap(self) -> bool:
        """Create the first super_admin when there is no admin at all; True when this call
        created it. Two instances starting together create one (the unique email decides)."""
        if await self.repo.any_admin():
            return False
        email, password = self.bootstrap_account()
        created = await self._add(
            email=email,
            password=password,
            first_name=self.settings.ADMIN_FIRST_NAME,
            last_name=self.settings.ADMIN_LAST_NAME,
            role=SUPER_ADMIN,
        )
        if created:
            log.info("created the first super_admin %s", email)
        return created

    async def add_demo_admins(self) -> list[str]:
        """Add the three demo admins that are absent (existing ones untouched); their emails."""
        added = []
        for email, password, first, last, role in DEMO_ADMINS:
            if await self.repo.get_by_email(email) is None and await self._add(
                email=email, password=password, first_name=first, last_name=last, role=role
            ):
                added.append(email)
        return added

    async def _add(self, *, email: str, password: str, first_name: str, last_name: str, role: str) -> bool:
        return await self.repo.insert_admin_if_absent(
            _new_admin(
                first_name=first_name,
                last_name=last_name,
                email=email,
                password_hash=await self._hash(password),
                phone=None,
                role=role,
                permissions=permissions_for(role=role, given=None),
                is_active=True,
                created_by=None,
            )
        )

    # request authentication (§5.2)

    async def authenticate(self, *, claims: Mapping[str, Any]) -> Document:
        """The admin behind verified access-token ``claims``: role ``admin`` (else
        :class:`NotAnAdmin`) → exists and ``ver`` current (else :class:`InvalidToken`) →
        active (else :class:`AccountDeactivated`)."""
        if claims.get("role") != "admin":
            raise NotAnAdmin()
        admin = await self.repo.get_admin(str(claims.get("sub")))
        if admin is None or claims.get("ver") != admin.get("tokenVersion", 0):
            raise InvalidToken()
        if not admin.get("isActive", True):
            raise AccountDeactivated()
        return admin

    @staticmethod
    def require_permission(*, admin: Mapping[str, Any], permission: str) -> None:
        if not has_permission(admin=admin, permission=permission):
            raise InsufficientPermissions()

    @staticmethod
    def require_super_admin(*, admin: Mapping[str, Any]) -> None:
        if not is_super_admin(admin):
            raise InsufficientPermissions()

    # login with lockout (§4.1, §5.4)

    async def login(self, *, email: str, password: str) -> dict[str, Any]:
        """Check the credentials in the contract's order; answer ``{token, admin}``."""
        admin = await self.repo.get_by_email(email)
        if admin is None:
            await verify_dummy(password)
            raise InvalidCredentials()
        admin_id = admin["_id"]
        now = self._now()
        lock = admin.get("lockUntil")
        if lock and lock > now:
            raise AccountLocked(lock)
        if lock and not await self.repo.clear_expired_lock(admin_id, lock_until=lock):
            # Someone changed the lock since we read it: read it again.
            admin = await self.repo.get_admin(admin_id)
            if admin is None:
                raise InvalidCredentials()
            lock = admin.get("lockUntil")
            if lock and lock > now:
                raise AccountLocked(lock)
        matches, new_hash = await verify_and_update(password, admin["password"])
        if not matches:
            await self._count_failure(admin_id, now=now)
        if not admin.get("isActive", True):
            raise AccountDeactivated()
        if new_hash is not None:  # a bcrypt hash becomes Argon2id at the next good login
            await self.repo.replace_hash(admin_id, old=admin["password"], new=new_hash)
        updated = await self.repo.record_login(admin_id, now=now)
        if updated is None:  # parallel failures locked the account meanwhile: the lock wins
            current = await self.repo.get_admin(admin_id)
            raise AccountLocked((current or {}).get("lockUntil"))
        token, _ = issue_token(
            self.settings,
            subject=admin_id,
            role="admin",
            email=updated["email"],
            version=int(updated.get("tokenVersion", 0)),
            extra={"adminRole": updated["role"]},
        )
        return {"token": token, "admin": login_view(updated)}

    async def _count_failure(self, admin_id: str, *, now: str) -> None:
        """Count one wrong password atomically; always raises (401, or 423 when the count was
        already full). The failure that reaches the threshold sets the lock and still says 401."""
        threshold = self.settings.LOCKOUT_THRESHOLD
        until = self._now(timedelta(minutes=self.settings.LOCKOUT_MINUTES))
        count = await self.repo.record_failed_login(admin_id, threshold=threshold, now=now)
        if count is None:
            raise AccountLocked(await self.repo.lock(admin_id, until=until, now=now))
        if count >= threshold:
            await self.repo.lock(admin_id, until=until, now=now)
        raise InvalidCredentials()

    # passwords (§4.2, §4.3)

    async def forgot_password(self, *, email: str) -> str | None:
        """Queue the reset email for an existing active admin; the outbox key, or None."""
        admin = await self.repo.get_by_email(email)
        if admin is None or not admin.get("isActive", True):
            return None
        key = f"password_reset:{admin['_id']}"
        await self.outbox.enqueue(kind=EMAIL_KIND, dedupe_key=key, payload={"adminId": admin["_id"]})
        return key

    async def reset_password(self, *, token: str, new_password: str, confirm: str | None) -> None:
        if confirm is not None and confirm != new_password:
            raise PasswordsDoNotMatch()
        password_hash = await self._hash(new_password)
        admin = await self.repo.consume_reset_token(
            token_hash=sha256_hex(token), password_hash=password_hash, now=self._now()
        )
        if admin is None:
            raise InvalidResetToken()

    async def build_reset_email(self, row: Mapping[str, Any]) -> OutboxRequest | None:
        """Outbox handler: a fresh token (only its SHA-256 stored, replacing any earlier one)
        and the notifications call carrying it; nothing for a gone or inactive admin."""
        admin = await self.repo.get_admin(row["payload"]["adminId"])
        if admin is None or not admin.get("isActive", True):
            return None
        token, token_hash = new_secret_token()
        expires = self._now(timedelta(minutes=self.settings.RESET_TOKEN_TTL_MINUTES))
        await self.repo.store_reset_token(admin["_id"], token_hash=token_hash, expires=expires)
        name = f"{admin['firstName']} {admin['lastName']}"
        front = self.settings.FRONTEND_URL.rstrip("/")
        minutes = self.settings.RESET_TOKEN_TTL_MINUTES
        expiry = f"{minutes // 60} hour{'s' if minutes != 60 else ''}" if minutes % 60 == 0 else f"{minutes} minutes"
        return OutboxRequest(
            service="notifications",
            method="POST",
            path="/api/v1/send",
            json={
                "template": "password_reset",
                "recipient_email": admin["email"],
                "recipient_name": name,
                "data": {
                    "customer_name": name,
                    "reset_link": f"{front}/admin/reset-password?token={token}",
                    "expiry_time": expiry,
                },
            },
            timeout=5.0,
            permanent_statuses=NOTIFY_PERMANENT,
        )

    # admin management (§4.7–4.10)

    async def list_admins(
        self, *, page: int, limit: int, role: str | None, active: bool | None, search: str | None
    ) -> dict[str, Any]:
        docs, total = await self.repo.list_admins(page=page, limit=limit, role=role, active=active, search=search)
        return page_of([admin_view(d) for d in docs], page=page, limit=limit, total=total)

    async def get_admin(self, *, admin_id: str) -> Document:
        admin = await self.repo.get_admin(admin_id)
        if admin is None:
            raise AdminNotFound()
        return admin

    async def create_admin(
        self,
        *,
        actor: Mapping[str, Any],
        first_name: str,
        last_name: str,
        email: str,
        password: str,
        phone: str | None,
        role: str,
        permissions: Sequence[str] | None,
        is_active: bool,
    ) -> Document:
        doc = _new_admin(
            first_name=first_name,
            last_name=last_name,
            email=email,
            password_hash=await self._hash(password),
            phone=phone,
            role=role,
            permissions=permissions_for(role=role, given=permissions),
            is_active=is_active,
            created_by=actor["_id"],
        )
        try:
            return await self.repo.insert_admin(doc)
        except DuplicateKeyError:
            raise EmailTaken() from None

    async def update_admin(
        self,
        *,
        actor: Mapping[str, Any],
        admin_id: str,
        role: str | None = None,
        permissions: Sequence[str] | None = None,
        is_active: bool | None = None,
    ) -> Document:
        """Change role, permissions and/or the active flag (None = not sent).

        A role change without permissions resets them to the role's defaults; a super_admin
        always holds all eight. The last active super_admin cannot be demoted or deactivated:
        the change is made conditionally on the state read, then undone if it left no active
        super_admin (so two concurrent demotions cannot both succeed) and tried again after a
        random pause (so that, of two, one does).
        """
        for _ in range(UPDATE_RETRIES):
            target = await self.get_admin(admin_id=admin_id)
            _refuse_self_change(actor, target, role=role, is_active=is_active)
            before = {"role": target["role"], "isActive": target.get("isActive", True)}
            after = {
                "role": role or target["role"],
                "isActive": before["isActive"] if is_active is None else is_active,
            }
            leaves_super = _is_active_super(before) and not _is_active_super(after)
            if leaves_super and await self.repo.count_active_super_admins() <= 1:
                raise LastSuperAdmin()
            changes = {**after, "permissions": _new_permissions(target, role=role, permissions=permissions)}
            updated = await self.repo.change_admin(admin_id, expected=before, changes=changes)
            if updated is None:
                continue  # changed meanwhile: read again
            if leaves_super and await self.repo.count_active_super_admins() == 0:
                await self.repo.change_admin(
                    admin_id, expected=after, changes={**before, "permissions": target.get("permissions") or []}
                )
                # Concurrent demotions that each undid theirs: try again after a random pause,
                # so that one goes first and wins instead of every one being refused.
                await asyncio.sleep(random.uniform(0.0, SUPER_RETRY_PAUSE_SECONDS))
                continue
            return updated
        raise LastSuperAdmin()

    # the audit log (§2 audit_logs, §4.11)

    async def open_audit(self, *, context: AuditContext) -> str:
        """Record a call as it starts (status null); :class:`AuditUnavailable` when the store
        cannot take it."""
        entry = {
            "adminId": context.admin["_id"],
            "adminEmail": context.admin.get("email"),
            "method": context.method.upper(),
            "service": context.service,
            "path": context.path[:AUDIT_PATH_MAX],
            "query": context.query[:AUDIT_PATH_MAX],
            "status": None,
            "durationMs": None,
            "requestId": context.request_id,
            "ip": context.ip,
            "at": self._now(),
        }
        try:
            return await self.repo.append_audit(entry)
        except Exception as exc:
            log.error("audit log unavailable: %s", exc)
            raise AuditUnavailable() from exc

    async def close_audit(self, *, entry_id: str, status: int, duration_ms: int) -> None:
        """Record the final status; a failure here is logged (the answer has been given)."""
        try:
            await self.repo.close_audit(entry_id, status=status, duration_ms=duration_ms)
        except Exception:
            log.exception("could not close audit entry %s", entry_id)

    async def list_audit(
        self,
        *,
        page: int,
        limit: int,
        admin_id: str | None,
        service: str | None,
        method: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> dict[str, Any]:
        docs, total = await self.repo.list_audit(
            page=page,
            limit=limit,
            admin_id=admin_id,
            service=service,
            method=method.upper() if method else None,
            since=iso(since) if since else None,
            until=iso(until) if until else None,
        )
        return page_of([audit_view(d) for d in docs], page=page, limit=limit, total=total)


def _new_admin(
    *,
    first_name: str,
    last_name: str,
    email: str,
    password_hash: str,
    phone: str | None,
    role: str,
    permissions: list[str],
    is_active: bool,
    created_by: str | None,
) -> dict[str, Any]:
    return {
        "firstName": first_name,
        "lastName": last_name,
        "email": email,
        "password": password_hash,
        "phone": phone,
        "role": role,
        "permissions": permissions,
        "isActive": is_active,
        "lastLogin": None,
        "loginAttempts": 0,
        "lockUntil": None,
        "passwordResetToken": None,
        "passwordResetExpires": None,
        "passwordChangedAt": None,
        "tokenVersion": 0,
        "createdBy": created_by,
    }


def _new_permissions(target: Mapping[str, Any], *, role: str | None, permissions: Sequence[str] | None) -> list[str]:
    """The permissions an update leaves: those sent; else the new role's defaults when the role
    changes; else the current ones (always all eight for a super_admin)."""
    new_role = role or target["role"]
    if permissions is not None:
        return permissions_for(role=new_role, given=permissions)
    if role is not None and role != target["role"]:
        return permissions_for(role=new_role, given=None)
    return permissions_for(role=new_role, given=target.get("permissions") or [])


def _is_active_super(state: Mapping[str, Any]) -> bool:
    return state["role"] == SUPER_ADMIN and bool(state["isActive"])


def _refuse_self_change(
    actor: Mapping[str, Any], target: Mapping[str, Any], *, role: str | None, is_active: bool | None
) -> None:
    """An admin may not change its own role nor deactivate itself (409)."""
    if actor["_id"] == target["_id"] and ((role is not None and role != target["role"]) or is_active is False):
        raise SelfChange()
