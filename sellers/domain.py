"""The rules of the sellers service: signup with its business, profile, activation and the
products sync. Sign-in with lockout, tokens, password flows, the admin list and email
queueing are :class:`shared.accounts.AccountService`'s.

No HTTP types here; errors are the shared ``AppError`` subclasses, raised with the
contract's messages. Every state change that must not race is one conditional update; the
business is embedded in the seller document, so account and business always change together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import datetime
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
from shared.accounts import EMAIL_KIND, MEDIA_KIND, AccountRules, AccountService, Lockout, check_confirmation
from shared.fields import is_media_id
from shared.outbox import Outbox, OutboxRequest
from shared.passwords import hash_password
from shared.responses import Conflict, ValidationFailed
from shared.store import Document
from shared.timeutil import now_iso, utcnow

__all__ = ["EMAIL_KIND", "MEDIA_KIND", "SELLER_STATUS_KIND", "SORTABLE", "Sellers"]

SELLER_NOT_FOUND = "Seller not found"
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

SELLER_STATUS_KIND = "seller_status"
SELLER_STATUS_PATH = "/api/v1/service/products/seller-status"
DRAIN_TIMEOUT_SECONDS = 5.0
UPDATE_RETRIES = 5

# Set while a status change makes its inline products call, so the handler uses the
# shorter inline timeout (the drainer's retries use the normal one).
_inline_sync: ContextVar[bool] = ContextVar("sellers_inline_sync", default=False)


Change = tuple[str | None, bool | None, dict[str, Any], dict[str, int]]
"""One conditional update: (business id it pins — None for "no business", active state it
pins — None for any, fields to set, counters to increment)."""


def rules_for(settings: SellersSettings) -> AccountRules:
    return AccountRules(
        role="seller",
        owner_field="sellerId",
        not_found=SELLER_NOT_FOUND,
        duplicate_email="Seller with this email already exists",
        searchable=("firstName", "lastName", "email", "phone", "business.businessName"),
        sortable=SORTABLE,
        list_key="sellers",
        lockout=Lockout(max_attempts=settings.LOGIN_MAX_ATTEMPTS, minutes=settings.LOCK_TIME_MINUTES),
        reset_path="/seller/reset-password",
        extra_reset_fields={"loginAttempts": 0, "lockUntil": None},
    )


class Sellers(AccountService):
    """The sellers service's use cases. Built once per app; methods are keyword-only.

    ``clock`` gives "now" for the rules that depend on time (lockout, reset expiry); tests
    advance it instead of waiting.
    """

    repo: SellerRepository
    settings: SellersSettings

    def __init__(
        self,
        *,
        repo: SellerRepository,
        outbox: Outbox,
        settings: SellersSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(repo=repo, outbox=outbox, settings=settings, rules=rules_for(settings), clock=clock)

    def list_view(self, *, account: Document) -> dict[str, Any]:
        return seller_view(account)

    async def on_token_version_bump(self, *, account_id: str) -> None:
        """Refresh tokens revoked, and products told the new token version (it checks
        seller tokens itself), through the same outbox row as the active state."""
        await super().on_token_version_bump(account_id=account_id)
        await self.queue(kind=SELLER_STATUS_KIND, dedupe_key=_status_key(account_id), payload={"sellerId": account_id})

    # signup and admin create

    async def signup(self, *, data: SignupIn) -> dict[str, Any]:
        """Create the seller and its business in one insert with the welcome queued; issue tokens."""
        check_confirmation(data.password, data.confirmPassword)
        seller = await self.register_account(doc=await self._new_seller(data), emails=("welcome_seller",))
        tokens = await self.tokens.issue(account=seller)
        return {**profile_view(seller), **tokens}

    async def create(self, *, data: NewSellerIn) -> dict[str, Any]:
        """Admin create: a business only when ``businessName`` is given; no email is sent."""
        return seller_view(await self.register_account(doc=await self._new_seller(data)))

    async def _new_seller(self, data: NewSellerIn) -> Document:
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
        return {
            "firstName": data.firstName,
            "lastName": data.lastName,
            "email": data.email,
            "passwordHash": await hash_password(data.password),
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

    async def login(self, *, email: str, password: str) -> dict[str, Any]:
        """Sign in with the lockout of contract §5.2."""
        seller, tokens = await self.sign_in(email=email, password=password)
        return {**profile_view(seller), "role": "seller", **tokens}

    # profile

    async def get_seller(self, *, seller_id: str) -> Document:
        return await self.get_account(account_id=seller_id)

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
                    return None, None, fields, {}
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
                return None, None, fields, {}
            for name, value in business_in.items():
                fields[f"business.{name}"] = value
            if "phone" in personal:
                fields["business.phone"] = personal["phone"]
            if business_in or "phone" in personal:
                fields["business.updatedAt"] = now_iso()
            return business["_id"], None, fields, {}

        updated = await self._apply(seller["_id"], change)
        for name, old in (("profileImage", seller.get("profileImage")), ("logoMediaId", _logo(seller))):
            new = personal.get(name, business_in.get(name))
            if is_media_id(new) and new != old:
                await self.queue_media_mark_used(media_id=new)
        return profile_view(updated)

    async def _apply(self, seller_id: str, change: Callable[[Document], Change]) -> Document:
        """Apply ``change`` to the current seller as one conditional update.

        The condition pins whether (and which) business is embedded, so a concurrent
        change of that shape is re-read and re-applied instead of being overwritten.
        """
        for _ in range(UPDATE_RETRIES):
            current = await self.get_seller(seller_id=seller_id)
            business_id, active, fields, inc = change(current)
            updated = await self.repo.apply_change(
                seller_id, business_id=business_id, active=active, set_fields=fields, inc=inc
            )
            if updated is not None:
                return updated
        raise Conflict("The seller was changed concurrently, please retry")

    # admin

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
            now = self.now()
            business = current.get("business")
            pinned_active: bool | None = None
            fields: dict[str, Any] = {}
            business_fields: dict[str, Any] = {}
            inc: dict[str, int] = {}
            if active is False:
                business_fields["isActive"] = False
                # Pin the state we read, so an activation in between is re-read, not half undone.
                pinned_active = bool(current.get("isActive", True))
                if pinned_active:
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
            return (business["_id"] if business else None), pinned_active, fields, inc

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
        seller, summary = await self.verify_summary(account_id=seller_id)
        business = (seller or {}).get("business") or {}
        return {**summary, "businessName": business.get("businessName"), "timestamp": now_iso()}

    async def bulk(self, *, seller_ids: list[str]) -> list[dict[str, Any]]:
        """Active sellers among ``seller_ids`` in input order (duplicates and unknown dropped)."""
        return [bulk_view(doc) for doc in await self.active_in_order(ids=seller_ids)]

    # outbox handlers

    async def email_data(self, *, template: str, account: Document) -> dict[str, Any] | None:
        name = f"{account['firstName']} {account['lastName']}"
        if template == "welcome_seller":
            business_name = (account.get("business") or {}).get("businessName")
            return {
                "seller_name": name,
                "sellerName": name,
                "business_name": business_name,
                "businessName": business_name,
                "login_url": self.front_url(path="/seller/login"),
                "dashboard_url": self.front_url(path="/seller/dashboard"),
            }
        if template == "password_reset":
            return {
                "customer_name": name,
                "seller_name": name,
                "reset_link": await self.reset_link(account=account),
                "expiry_time": "1 hour",
            }
        raise ValueError(f"unknown email template {template!r}")

    async def build_seller_status(self, *, row: Mapping[str, Any]) -> OutboxRequest | None:
        """Tell products the seller's current ``isActive`` and ``tokenVersion``, read now
        (outbox handler)."""
        seller = await self.repo.get(row["payload"]["sellerId"])
        if seller is None:
            return None
        timeout = self.settings.PRODUCTS_SYNC_TIMEOUT_SECONDS if _inline_sync.get() else DRAIN_TIMEOUT_SECONDS
        return OutboxRequest(
            service="products",
            method="POST",
            path=SELLER_STATUS_PATH,
            json={
                "sellerId": seller["_id"],
                "isActive": bool(seller.get("isActive", True)),
                "tokenVersion": int(seller.get("tokenVersion", 0)),
            },
            timeout=timeout,
        )


def _status_key(seller_id: str) -> str:
    return f"{SELLER_STATUS_KIND}:{seller_id}"


def _logo(seller: Mapping[str, Any]) -> str | None:
    return (seller.get("business") or {}).get("logoMediaId")
