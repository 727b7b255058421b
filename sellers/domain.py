"""The rules of the sellers service: accounts, lockout, tokens, profile, admin and service views.

No HTTP types here; errors are the shared ``AppError`` subclasses, raised with the
contract's messages. Every state change that must not race is one conditional update; the
business is embedded in the seller document, so account and business always change together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from sellers.repository import SellerRepository, new_business
from sellers.schemas import (
    BUSINESS_FIELDS,
    DEFAULT_BUSINESS_TYPE,
    PERSONAL_FIELDS,
    NewSellerIn,
    ProfileUpdateIn,
    SignupIn,
)
from sellers.settings import SellersSettings
from sellers.views import admin_details_view, bulk_view, profile_view, seller_view
from shared.accounts import ACCOUNT_DEACTIVATED, AccountTokens, new_secret_token, sha256_hex
from shared.fields import is_media_id
from shared.outbox import Outbox, OutboxRequest
from shared.passwords import hash_password, verify_dummy, verify_password
from shared.responses import (
    BadRequest,
    Conflict,
    Forbidden,
    Locked,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from shared.store import Document, DuplicateKeyError
from shared.timeutil import iso, now_iso, utcnow
from shared.validation import pagination

SELLER_NOT_FOUND = "Seller not found"
INVALID_CREDENTIALS = "Invalid credentials"
ACCOUNT_LOCKED = "Account temporarily locked due to multiple failed login attempts. Please try again later."
DUPLICATE_EMAIL = "Seller with this email already exists"
STATUS_REQUIRED = "isActive or isVerified is required"

SORTABLE = {
    "createdAt": "createdAt",
    "firstName": "firstName",
    "lastName": "lastName",
    "email": "email",
    "businessName": "business.businessName",
    "lastLogin": "lastLogin",
    "rating": "rating",
    "totalSales": "totalSales",
}
SEARCHABLE = ("firstName", "lastName", "email", "phone", "business.businessName")

EMAIL_KIND = "email"
SELLER_STATUS_KIND = "seller_status"
MEDIA_KIND = "media_mark_used"
NOTIFY_PERMANENT = frozenset({502})
SELLER_STATUS_PATH = "/api/v1/service/products/seller-status"
DRAIN_TIMEOUT_SECONDS = 5.0
UPDATE_RETRIES = 5

# Set while a status change makes its inline products call, so the handler uses the
# shorter inline timeout (the drainer's retries use the normal one).
_inline_sync: ContextVar[bool] = ContextVar("sellers_inline_sync", default=False)


Change = tuple[dict[str, Any], dict[str, Any], dict[str, int]]
"""(condition, fields to set, counters to increment) for one conditional update."""


class Sellers:
    """The sellers service's use cases. Built once per app; methods are keyword-only.

    ``clock`` gives "now" for the rules that depend on time (lockout, reset expiry); tests
    advance it instead of waiting.
    """

    def __init__(
        self,
        *,
        repo: SellerRepository,
        outbox: Outbox,
        settings: SellersSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.tokens = AccountTokens(settings, repo.refresh_tokens, role="seller")

    def _now(self, delta: timedelta | None = None) -> str:
        return iso(self.clock() + delta if delta else self.clock())

    # tokens

    async def authenticate(self, *, claims: Mapping[str, Any]) -> Document:
        """The seller behind verified access-token ``claims``: role → exists → active → ``ver``."""
        return await self.tokens.authenticate(claims, self.repo.get_seller)

    # signup and admin create

    async def signup(self, *, data: SignupIn) -> dict[str, Any]:
        """Create the seller and its business in one insert, issue tokens, queue the welcome."""
        if data.confirmPassword != data.password:
            raise ValidationFailed.field("confirmPassword", "Passwords do not match", top="Passwords do not match")
        seller = await self._insert(data)
        tokens = await self.tokens.issue(seller)
        await self._queue_email("welcome_seller", seller["_id"])
        return {**profile_view(seller), **tokens}

    async def create(self, *, data: NewSellerIn) -> dict[str, Any]:
        """Admin create: a business only when ``businessName`` is given; no email is sent."""
        return seller_view(await self._insert(data))

    async def _insert(self, data: NewSellerIn) -> Document:
        password_hash = await hash_password(data.password, rounds=self.settings.BCRYPT_ROUNDS)
        business = None
        if data.businessName:
            business = {
                "businessName": data.businessName,
                "businessType": data.businessType or DEFAULT_BUSINESS_TYPE,
                "description": data.businessDescription,
                "email": data.email,
                "phone": data.phone,
                "website": None,
                "address": data.address.model_dump() if data.address else None,
                "logoMediaId": None,
                "industry": None,
                "categories": [],
                "establishedDate": None,
                "employeeCount": None,
                "verificationStatus": "pending",
                "verifiedAt": None,
                "isActive": True,
            }
        doc = {
            "firstName": data.firstName,
            "lastName": data.lastName,
            "email": data.email,
            "passwordHash": password_hash,
            "phone": data.phone,
            "profileImage": None,
            "dateOfBirth": None,
            "gender": None,
            "role": "seller",
            "isActive": True,
            "isVerified": False,
            "loginAttempts": 0,
            "lockUntil": None,
            "tokenVersion": 0,
            "passwordChangedAt": None,
            "lastLogin": None,
            "deactivatedAt": None,
            "rating": 0,
            "totalSales": 0,
            "totalProducts": 0,
            "business": business,
        }
        try:
            return await self.repo.insert_seller(doc)
        except DuplicateKeyError:
            raise Conflict(DUPLICATE_EMAIL, errors=[{"field": "email", "message": "Email already exists"}]) from None

    # sign-in with lockout (§5.2)

    async def login(self, *, email: str, password: str) -> dict[str, Any]:
        seller = await self.repo.get_by_email(email)
        if seller is None:
            await verify_dummy(password, rounds=self.settings.BCRYPT_ROUNDS)
            raise Unauthorized(INVALID_CREDENTIALS)
        seller_id = seller["_id"]
        now = self._now()
        lock = seller.get("lockUntil")
        if lock and lock > now:
            raise _locked(lock)
        if lock:
            # Expired: clear it only if nobody changed it since we read it.
            cleared = await self.repo.update_seller(
                {"_id": seller_id, "lockUntil": lock}, set_fields={"loginAttempts": 0, "lockUntil": None}
            )
            if cleared is None:
                seller = await self._existing(seller_id, INVALID_CREDENTIALS)
                lock = seller.get("lockUntil")
                if lock and lock > now:
                    raise _locked(lock)
        if not await verify_password(password, seller["passwordHash"]):
            await self._count_failure(seller_id)
        if not seller.get("isActive", True):
            raise Forbidden(ACCOUNT_DEACTIVATED)
        # Success only while not locked: a lock set by parallel failures meanwhile wins.
        updated = await self.repo.update_seller(
            {"_id": seller_id, "$or": [{"lockUntil": None}, {"lockUntil": {"$lte": now}}]},
            set_fields={"loginAttempts": 0, "lockUntil": None, "lastLogin": now},
        )
        if updated is None:
            current = await self._existing(seller_id, INVALID_CREDENTIALS)
            raise _locked(current.get("lockUntil") or now)
        tokens = await self.tokens.issue(updated)
        return {**profile_view(updated), "role": "seller", **tokens}

    async def _count_failure(self, seller_id: str) -> None:
        """Count one wrong password atomically; always raises (401, or 423 once locked)."""
        limit = self.settings.LOGIN_MAX_ATTEMPTS
        after = await self.repo.update_seller(
            {"_id": seller_id, "loginAttempts": {"$lt": limit}}, inc={"loginAttempts": 1}
        )
        if after is None:
            # Parallel failures already reached the limit: make sure the lock is set.
            raise _locked(await self._ensure_lock(seller_id))
        if after["loginAttempts"] >= limit:
            await self._ensure_lock(seller_id)
        raise Unauthorized(INVALID_CREDENTIALS)

    async def _ensure_lock(self, seller_id: str) -> str:
        now = self._now()
        until = self._now(timedelta(minutes=self.settings.LOCK_TIME_MINUTES))
        await self.repo.update_seller(
            {"_id": seller_id, "$or": [{"lockUntil": None}, {"lockUntil": {"$lte": now}}]},
            set_fields={"lockUntil": until},
        )
        current = await self.repo.get_seller(seller_id)
        return (current or {}).get("lockUntil") or until

    async def _existing(self, seller_id: str, message: str) -> Document:
        seller = await self.repo.get_seller(seller_id)
        if seller is None:
            raise Unauthorized(message)
        return seller

    async def refresh(self, *, refresh_token: str) -> dict[str, str]:
        """Rotate a refresh token: only the first presenter of a live ``jti`` gets new tokens."""
        return await self.tokens.rotate(refresh_token, self.repo.get_seller)

    # passwords

    async def forgot_password(self, *, email: str) -> None:
        seller = await self.repo.get_by_email(email)
        if seller is not None and seller.get("isActive", True):
            await self._queue_email("password_reset", seller["_id"])

    async def reset_password(self, *, token: str, new_password: str, confirm: str | None) -> None:
        """Set a new password with an emailed token (single use); also clears the lock."""
        if confirm is not None and confirm != new_password:
            raise ValidationFailed.field("confirmPassword", "Passwords do not match", top="Passwords do not match")
        password_hash = await hash_password(new_password, rounds=self.settings.BCRYPT_ROUNDS)
        now = self._now()
        seller = await self.repo.update_seller(
            {"passwordResetTokenHash": sha256_hex(token), "passwordResetExpires": {"$gt": now}},
            set_fields={"passwordHash": password_hash, "passwordChangedAt": now, "loginAttempts": 0, "lockUntil": None},
            unset=("passwordResetTokenHash", "passwordResetExpires"),
            inc={"tokenVersion": 1},
        )
        if seller is None:
            raise BadRequest("Invalid or expired reset token")
        await self.repo.refresh_tokens.revoke_all(seller["_id"])

    async def change_password(
        self, *, seller: Document, current: str, new_password: str, confirm: str
    ) -> dict[str, str]:
        """New hash and token version (every older token refused); answers a fresh pair."""
        if confirm != new_password:
            raise ValidationFailed.field("confirmPassword", "Passwords do not match", top="Passwords do not match")
        if not await verify_password(current, seller["passwordHash"]):
            raise BadRequest("Current password is incorrect")
        password_hash = await hash_password(new_password, rounds=self.settings.BCRYPT_ROUNDS)
        updated = await self.repo.update_seller(
            {"_id": seller["_id"], "isActive": True},
            set_fields={"passwordHash": password_hash, "passwordChangedAt": self._now()},
            inc={"tokenVersion": 1},
        )
        if updated is None:
            raise Forbidden(ACCOUNT_DEACTIVATED)
        await self.repo.refresh_tokens.revoke_all(seller["_id"])
        return await self.tokens.issue(updated)

    # profile

    async def get_seller(self, *, seller_id: str) -> Document:
        seller = await self.repo.get_seller(seller_id)
        if seller is None:
            raise NotFound(SELLER_NOT_FOUND)
        return seller

    async def update_profile(self, *, seller: Document, data: ProfileUpdateIn) -> dict[str, Any]:
        """Write the sent personal and business fields in one update (creating a business
        when the seller has none); queue ``media_mark_used`` for new media ids."""
        personal = data.sent(PERSONAL_FIELDS)
        business_in = data.sent(BUSINESS_FIELDS)
        if not personal and not business_in:
            return profile_view(seller)

        def change(current: Document) -> Change:
            fields: dict[str, Any] = dict(personal)
            business = current.get("business")
            if business is None:
                if not business_in:
                    return {"_id": current["_id"], "business": None}, fields, {}
                if not business_in.get("businessName"):
                    raise ValidationFailed.field("businessName", "Business name is required")
                fields["business"] = new_business(
                    {
                        "businessName": None,
                        "businessType": DEFAULT_BUSINESS_TYPE,
                        "description": None,
                        "website": None,
                        "address": None,
                        "logoMediaId": None,
                        "industry": None,
                        "categories": [],
                        "establishedDate": None,
                        "employeeCount": None,
                        **business_in,
                        "email": current["email"],
                        "phone": personal.get("phone", current.get("phone")),
                        "verificationStatus": "verified" if current.get("isVerified") else "pending",
                        "verifiedAt": None,
                        "isActive": bool(current.get("isActive", True)),
                    }
                )
                return {"_id": current["_id"], "business": None}, fields, {}
            for name, value in business_in.items():
                fields[f"business.{name}"] = value
            if "phone" in personal:
                fields["business.phone"] = personal["phone"]
            if business_in or "phone" in personal:
                fields["business.updatedAt"] = now_iso()
            return {"_id": current["_id"], "business._id": business["_id"]}, fields, {}

        updated = await self._apply(seller["_id"], change)
        for name, old in (("profileImage", seller.get("profileImage")), ("logoMediaId", _logo(seller))):
            new = personal.get(name, business_in.get(name))
            if is_media_id(new) and new != old:
                await self._queue(MEDIA_KIND, f"media:{new}", {"mediaId": new})
        return profile_view(updated)

    async def _apply(self, seller_id: str, change: Callable[[Document], Change]) -> Document:
        """Apply ``change`` to the current seller as one conditional update.

        The condition pins whether (and which) business is embedded, so a concurrent
        change of that shape is re-read and re-applied instead of being overwritten.
        """
        for _ in range(UPDATE_RETRIES):
            current = await self.get_seller(seller_id=seller_id)
            condition, fields, inc = change(current)
            updated = await self.repo.update_seller(condition, set_fields=fields, inc=inc)
            if updated is not None:
                return updated
        raise Conflict("The seller was changed concurrently, please retry")

    # admin

    async def admin_list(
        self,
        *,
        page: int,
        limit: int,
        search: str | None,
        active: bool | None,
        verified: bool | None,
        sort: str,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if search:
            pattern = re.escape(search)
            query["$or"] = [{field: {"$regex": pattern, "$options": "i"}} for field in SEARCHABLE]
        if active is not None:
            query["isActive"] = active
        if verified is not None:
            query["isVerified"] = verified
        direction = -1 if sort.startswith("-") else 1
        field = SORTABLE[sort.lstrip("-")]
        docs, total = await self.repo.list_sellers(
            query, sort=[(field, direction), ("_id", direction)], skip=(page - 1) * limit, limit=limit
        )
        return {"sellers": [seller_view(d) for d in docs], "pagination": pagination(page, limit, total)}

    async def admin_details(self, *, seller_id: str) -> dict[str, Any]:
        return admin_details_view(await self.get_seller(seller_id=seller_id))

    async def set_status(self, *, seller_id: str, active: bool | None, verified: bool | None) -> dict[str, Any]:
        """Activate/deactivate and/or verify; a sent ``isActive`` always syncs products (§6.3)."""
        if active is None and verified is None:
            raise ValidationFailed.field("isActive", STATUS_REQUIRED, top=STATUS_REQUIRED)
        if active is not None:
            # Queued before the change too, so a crash between the two still tells products;
            # the handler reads isActive at send time, and the re-queue below bumps the
            # row's version so a send of the old value in between goes again.
            await self.get_seller(seller_id=seller_id)
            await self.outbox.enqueue(
                kind=SELLER_STATUS_KIND, dedupe_key=_status_key(seller_id), payload={"sellerId": seller_id}
            )

        def change(current: Document) -> Change:
            now = self._now()
            business = current.get("business")
            condition: dict[str, Any] = {"_id": current["_id"]}
            condition.update({"business._id": business["_id"]} if business else {"business": None})
            fields: dict[str, Any] = {}
            business_fields: dict[str, Any] = {}
            inc: dict[str, int] = {}
            if active is False:
                business_fields["isActive"] = False
                # Pin the state we read, so an activation in between is re-read, not half undone.
                condition["isActive"] = bool(current.get("isActive", True))
                if condition["isActive"]:
                    fields.update(isActive=False, deactivatedAt=now)
                    inc["tokenVersion"] = 1
            elif active is True:
                fields.update(isActive=True, deactivatedAt=None)
                business_fields["isActive"] = True
            if verified is not None:
                fields["isVerified"] = verified
                business_fields["verificationStatus"] = "verified" if verified else "pending"
                business_fields["verifiedAt"] = now if verified else None
            if business:
                fields.update({f"business.{k}": v for k, v in business_fields.items()})
                fields["business.updatedAt"] = now_iso()
            return condition, fields, inc

        updated = await self._apply(seller_id, change)
        view = seller_view(updated)
        if active is False:
            await self.repo.refresh_tokens.revoke_all(seller_id)
        if active is not None:
            view["productsSynced"] = await self._sync_products(seller_id)
        return view

    async def _sync_products(self, seller_id: str) -> bool:
        """Queue the products call and try it once inline; True when products accepted it."""
        key = _status_key(seller_id)
        await self.outbox.enqueue(kind=SELLER_STATUS_KIND, dedupe_key=key, payload={"sellerId": seller_id})
        marker = _inline_sync.set(True)
        try:
            status = await self.outbox.attempt(key)
        finally:
            _inline_sync.reset(marker)
        return status == "sent"

    # service views

    async def verify_for_service(self, *, seller_id: str) -> dict[str, Any]:
        seller = await self.repo.get_seller(seller_id)
        active = bool(seller and seller.get("isActive", True))
        business = (seller or {}).get("business") or {}
        return {
            "sellerId": seller_id,
            "isValid": active,
            "isActive": active,
            "isVerified": bool(seller and seller.get("isVerified")),
            "businessName": business.get("businessName"),
            "timestamp": now_iso(),
        }

    async def bulk(self, *, seller_ids: list[str]) -> list[dict[str, Any]]:
        """Active sellers among ``seller_ids`` in input order (duplicates and unknown dropped)."""
        unique_ids = list(dict.fromkeys(seller_ids))
        found = {d["_id"]: d for d in await self.repo.get_sellers(unique_ids, active_only=True)}
        return [bulk_view(found[i]) for i in unique_ids if i in found]

    async def stats(self) -> dict[str, int]:
        return {
            "total": await self.repo.count_sellers({}),
            "active": await self.repo.count_sellers({"isActive": True}),
            "verified": await self.repo.count_sellers({"isVerified": True}),
        }

    # outbox

    async def _queue(self, kind: str, dedupe_key: str, payload: Mapping[str, Any]) -> None:
        await self.outbox.enqueue(kind=kind, dedupe_key=dedupe_key, payload=payload)
        self.outbox.send_soon(dedupe_key)

    async def _queue_email(self, template: str, seller_id: str) -> None:
        await self._queue(EMAIL_KIND, f"{template}:{seller_id}", {"template": template, "sellerId": seller_id})

    async def build_email(self, row: Mapping[str, Any]) -> OutboxRequest | None:
        """Build an email call at send time from the current seller (outbox handler)."""
        template = row["payload"]["template"]
        seller = await self.repo.get_seller(row["payload"]["sellerId"])
        if seller is None or not seller.get("isActive", True):
            return None
        name = f"{seller['firstName']} {seller['lastName']}"
        front = self.settings.FRONTEND_URL.rstrip("/")
        data: dict[str, Any]
        if template == "welcome_seller":
            business_name = (seller.get("business") or {}).get("businessName")
            data = {
                "seller_name": name,
                "sellerName": name,
                "business_name": business_name,
                "businessName": business_name,
                "login_url": f"{front}/seller/login",
                "dashboard_url": f"{front}/seller/dashboard",
            }
        elif template == "password_reset":
            token = await self._new_reset_token(seller["_id"])
            data = {
                "customer_name": name,
                "seller_name": name,
                "reset_link": f"{front}/seller/reset-password?token={token}",
                "expiry_time": "1 hour",
            }
        else:
            raise ValueError(f"unknown email template {template!r}")
        return OutboxRequest(
            service="notifications",
            method="POST",
            path="/api/v1/send",
            json={"template": template, "recipient_email": seller["email"], "recipient_name": name, "data": data},
            timeout=5.0,
            permanent_statuses=NOTIFY_PERMANENT,
        )

    async def _new_reset_token(self, seller_id: str) -> str:
        """A fresh single-use token; only its SHA-256 is stored, replacing any older one."""
        token, token_hash = new_secret_token()
        await self.repo.update_seller(
            {"_id": seller_id},
            set_fields={
                "passwordResetTokenHash": token_hash,
                "passwordResetExpires": self._now(timedelta(seconds=self.settings.RESET_TOKEN_TTL_SECONDS)),
            },
        )
        return token

    async def build_seller_status(self, row: Mapping[str, Any]) -> OutboxRequest | None:
        """Tell products the seller's current ``isActive``, read now (outbox handler)."""
        seller = await self.repo.get_seller(row["payload"]["sellerId"])
        if seller is None:
            return None
        timeout = self.settings.PRODUCTS_SYNC_TIMEOUT_SECONDS if _inline_sync.get() else DRAIN_TIMEOUT_SECONDS
        return OutboxRequest(
            service="products",
            method="POST",
            path=SELLER_STATUS_PATH,
            json={"sellerId": seller["_id"], "isActive": bool(seller.get("isActive", True))},
            timeout=timeout,
        )

    @staticmethod
    async def build_media_mark_used(row: Mapping[str, Any]) -> OutboxRequest:
        """Mark a profile image or logo used in the media service (outbox handler)."""
        return OutboxRequest(
            service="media", method="POST", path=f"/api/v1/media/mark-used/{row['payload']['mediaId']}", timeout=5.0
        )


def _locked(lock_until: str) -> Locked:
    return Locked(ACCOUNT_LOCKED, extra={"lockUntil": lock_until})


def _status_key(seller_id: str) -> str:
    return f"{SELLER_STATUS_KIND}:{seller_id}"


def _logo(seller: Mapping[str, Any]) -> str | None:
    return (seller.get("business") or {}).get("logoMediaId")
