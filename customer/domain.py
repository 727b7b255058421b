"""The rules of the customer service: registration, verification, account state, profile,
addresses, order statistics. Sign-in, tokens, password flows, the admin list and email
queueing are :class:`shared.accounts.AccountService`'s.

No HTTP types here; errors are the shared ``AppError`` subclasses, raised with the
contract's messages. Every state change that must not race is one conditional update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from customer.repository import CustomerRepository
from customer.schemas import AddressIn, ProfileUpdateIn, RegisterIn, address_field_errors
from customer.settings import CustomerSettings
from customer.views import (
    ADDRESS_FIELDS,
    address_view,
    admin_customer_view,
    customer_view,
    sorted_address_views,
)
from shared.accounts import EMAIL_KIND, MEDIA_KIND, AccountRules, AccountService, check_confirmation, sha256_hex
from shared.outbox import Outbox
from shared.passwords import hash_password, verify_password
from shared.responses import BadRequest, NotFound, ValidationFailed
from shared.store import Document, DuplicateKeyError
from shared.timeutil import now_iso
from shared.validation import fields_of, from_cents, to_cents

__all__ = ["EMAIL_KIND", "MEDIA_KIND", "SORTABLE", "Customers"]

CUSTOMER_NOT_FOUND = "Customer not found"
ADDRESS_NOT_FOUND = "Address not found"

SORTABLE = {
    "createdAt": "createdAt",
    "firstName": "firstName",
    "lastName": "lastName",
    "email": "email",
    "lastLogin": "lastLogin",
    "totalSpent": "totalSpentCents",
}

RULES = AccountRules(
    role="customer",
    owner_field="customerId",
    not_found=CUSTOMER_NOT_FOUND,
    duplicate_email="Customer with this email already exists",
    searchable=("firstName", "lastName", "email", "phone"),
    sortable=SORTABLE,
    list_key="customers",
    reset_path="/customer/reset-password",
)


class Customers(AccountService):
    """The customer service's use cases. Built once per app; methods are keyword-only."""

    repo: CustomerRepository
    settings: CustomerSettings

    def __init__(self, *, repo: CustomerRepository, outbox: Outbox, settings: CustomerSettings) -> None:
        super().__init__(repo=repo, outbox=outbox, settings=settings, rules=RULES)

    def list_view(self, *, account: Document) -> dict[str, Any]:
        return customer_view(account)

    # registration and sign-in

    async def register(self, *, data: RegisterIn) -> dict[str, Any]:
        """Create the customer with its welcome and verification emails queued; issue tokens."""
        check_confirmation(data.password, data.confirmPassword)
        doc = {
            "firstName": data.firstName,
            "lastName": data.lastName,
            "email": data.email,
            "passwordHash": await hash_password(data.password),
            "phone": data.phone,
            "dateOfBirth": data.dateOfBirth,
            "gender": data.gender,
            "profileImage": None,
            "preferences": {"newsletter": False, "smsNotifications": False, "language": "en", "currency": "USD"},
            "isActive": True,
            "isVerified": False,
            "emailVerified": False,
            "phoneVerified": False,
            "totalOrders": 0,
            "totalSpentCents": 0,
            "loyaltyPoints": 0,
            "defaultAddressId": None,
            "tokenVersion": 0,
            "lastLogin": None,
            "passwordChangedAt": None,
            "deactivatedAt": None,
            "deactivationReason": None,
            "deletedAt": None,
        }
        customer = await self.register_account(doc=doc, emails=("welcome_customer", "email_verification"))
        tokens = await self.tokens.issue(account=customer)
        return {"customer": customer_view(customer), **tokens}

    async def login(self, *, email: str, password: str) -> dict[str, Any]:
        customer, tokens = await self.sign_in(email=email, password=password)
        return {"customer": customer_view(customer), **tokens}

    # verification

    async def verify_email(self, *, token: str) -> dict[str, Any]:
        customer = await self.repo.spend_secret(
            purpose="emailVerification",
            token_hash=sha256_hex(token),
            now=self.now(),
            set_fields={"isVerified": True, "emailVerified": True},
        )
        if customer is None:
            raise BadRequest("Invalid or expired verification token")
        return {"email": customer["email"], "isVerified": True, "emailVerified": True}

    async def resend_verification(self, *, email: str) -> None:
        customer = await self.repo.get_by_email(email)
        if customer is not None and customer.get("isActive", True) and not customer.get("isVerified"):
            await self.queue_email(template="email_verification", account_id=customer["_id"])

    # account state

    async def deactivate(self, *, customer: Document, password: str, reason: str | None) -> None:
        if not await verify_password(password, customer["passwordHash"]):
            raise BadRequest("Password is incorrect")
        await self._close(customer["_id"], reason=reason, deleted=False)

    async def close_account(self, *, customer: Document) -> None:
        await self._close(customer["_id"], reason=None, deleted=True)

    async def _close(self, customer_id: str, *, reason: str | None, deleted: bool) -> Document | None:
        now = self.now()
        fields: dict[str, Any] = {"isActive": False, "deactivatedAt": now}
        if reason is not None or not deleted:
            fields["deactivationReason"] = reason
        if deleted:
            fields["deletedAt"] = now
        updated = await self.repo.close(customer_id, fields)
        await self.on_token_version_bump(account_id=customer_id)
        return updated

    async def set_status(self, *, customer_id: str, active: bool) -> dict[str, Any]:
        if active:
            # Activation leaves tokenVersion alone: tokens issued before the deactivation keep
            # their old ``ver`` and stay refused.
            updated = await self.repo.set_fields(customer_id, {"isActive": True, "deactivatedAt": None})
        else:
            current = await self.get_customer(customer_id=customer_id)
            updated = current
            if current.get("isActive", True):
                updated = await self._close(customer_id, reason=current.get("deactivationReason"), deleted=False)
        if updated is None:
            raise NotFound(CUSTOMER_NOT_FOUND)
        return customer_view(updated)

    # profile

    async def get_customer(self, *, customer_id: str) -> Document:
        return await self.get_account(account_id=customer_id)

    async def update_profile(self, *, customer: Document, data: ProfileUpdateIn) -> dict[str, Any]:
        sent = data.model_fields_set
        fields: dict[str, Any] = {}
        for name in ("firstName", "lastName", "phone", "dateOfBirth", "gender", "profileImage"):
            if name in sent:
                fields[name] = getattr(data, name)
        if "preferences" in sent and data.preferences is not None:
            for key in data.preferences.model_fields_set:
                value = getattr(data.preferences, key)
                if value is not None:
                    fields[f"preferences.{key}"] = value
        if not fields:
            return customer_view(customer)
        updated = await self.repo.set_fields(customer["_id"], fields)
        if updated is None:
            raise NotFound(CUSTOMER_NOT_FOUND)
        image = fields.get("profileImage")
        if image and image != customer.get("profileImage") and not image.startswith(("http://", "https://")):
            await self.queue_media_mark_used(media_id=image)
        return customer_view(updated)

    # addresses

    async def list_addresses(self, *, customer_id: str) -> list[dict[str, Any]]:
        customer = await self.get_customer(customer_id=customer_id)
        docs = await self.repo.list_addresses(customer_id)
        return sorted_address_views(docs, customer.get("defaultAddressId"))

    async def get_address(self, *, customer_id: str, address_id: str) -> dict[str, Any]:
        customer = await self.get_customer(customer_id=customer_id)
        doc = await self.repo.get_address(customer_id, address_id)
        if doc is None:
            raise NotFound(ADDRESS_NOT_FOUND)
        return address_view(doc, customer.get("defaultAddressId"))

    async def add_address(self, *, customer: Document, data: AddressIn) -> dict[str, Any]:
        _raise_address_errors(data, partial=False)
        fields = _address_fields(data, partial=False)
        doc = await self.repo.insert_address({"customerId": customer["_id"], **fields})
        if data.isDefault:
            default_id = await self._make_default(customer["_id"], doc["_id"])
        elif await self.repo.claim_first_default(customer["_id"], doc["_id"]):
            default_id = doc["_id"]  # the first address becomes the default
        else:
            default_id = (await self.get_customer(customer_id=customer["_id"])).get("defaultAddressId")
        return address_view(doc, default_id)

    async def update_address(self, *, customer: Document, address_id: str, data: AddressIn) -> dict[str, Any]:
        _raise_address_errors(data, partial=True)
        fields = _address_fields(data, partial=True)
        if fields:
            doc = await self.repo.update_address(customer["_id"], address_id, set_fields=fields)
        else:
            doc = await self.repo.get_address(customer["_id"], address_id)
        if doc is None:
            raise NotFound(ADDRESS_NOT_FOUND)
        if data.isDefault:
            default_id = await self._make_default(customer["_id"], address_id)
        else:
            default_id = (await self.get_customer(customer_id=customer["_id"])).get("defaultAddressId")
        return address_view(doc, default_id)

    async def set_default_address(self, *, customer: Document, address_id: str) -> dict[str, Any]:
        doc = await self.repo.get_address(customer["_id"], address_id)
        if doc is None:
            raise NotFound(ADDRESS_NOT_FOUND)
        default_id = await self._make_default(customer["_id"], address_id)
        return address_view(doc, default_id)

    async def _make_default(self, customer_id: str, address_id: str) -> str | None:
        updated = await self.repo.set_default_address(customer_id, address_id)
        return updated.get("defaultAddressId") if updated else None

    async def delete_address(self, *, customer: Document, address_id: str) -> None:
        deleted = await self.repo.update_address(
            customer["_id"], address_id, set_fields={"isActive": False, "deletedAt": now_iso()}
        )
        if deleted is None:
            raise NotFound(ADDRESS_NOT_FOUND)
        # Promote the most recently updated remaining address, only if the deleted one is
        # still the default (a concurrent "make default" wins).
        successor = await self.repo.newest_active_address(customer["_id"])
        await self.repo.replace_default(customer["_id"], old=address_id, new=successor["_id"] if successor else None)

    # admin and service views

    async def admin_details(self, *, customer_id: str) -> dict[str, Any]:
        customer = await self.get_customer(customer_id=customer_id)
        docs = await self.repo.list_addresses(customer_id)
        return admin_customer_view(customer, sorted_address_views(docs, customer.get("defaultAddressId")))

    async def verify_for_service(self, *, customer_id: str) -> dict[str, Any]:
        customer, summary = await self.verify_summary(account_id=customer_id)
        known = customer or {}
        return {
            **summary,
            **fields_of(known, "firstName", "lastName", "email"),
            "timestamp": now_iso(),
        }

    async def bulk(self, *, customer_ids: list[str]) -> list[dict[str, Any]]:
        return [
            {
                "id": doc["_id"],
                "_id": doc["_id"],
                "firstName": doc["firstName"],
                "lastName": doc["lastName"],
                "fullName": f"{doc['firstName']} {doc['lastName']}",
                "email": doc["email"],
                "phone": doc.get("phone"),
                "avatar": doc.get("profileImage"),
                "createdAt": doc.get("createdAt"),
            }
            for doc in await self.active_in_order(ids=customer_ids)
        ]

    async def apply_order_stats(self, *, customer_id: str, order_total: Any, order_id: str | None) -> dict[str, Any]:
        cents = to_cents(order_total)
        await self.get_customer(customer_id=customer_id)
        if order_id:
            try:
                await self.repo.mark_order_applied(order_id=order_id, customer_id=customer_id, cents=cents)
            except DuplicateKeyError:
                current = await self.get_customer(customer_id=customer_id)
                return _stats_view(current, applied=False)
        updated = await self.repo.add_order(customer_id, cents=cents, points=math.floor(cents / 100))
        if updated is None:
            if order_id:
                await self.repo.unmark_order_applied(order_id)
            raise NotFound(CUSTOMER_NOT_FOUND)
        return _stats_view(updated, applied=True)

    async def service_addresses(self, *, customer_id: str) -> list[dict[str, Any]]:
        return await self.list_addresses(customer_id=customer_id)

    # emails (built at send time by AccountService.build_email)

    async def email_data(self, *, template: str, account: Document) -> dict[str, Any] | None:
        data: dict[str, Any] = {"customer_name": f"{account['firstName']} {account['lastName']}"}
        if template == "welcome_customer":
            data["login_url"] = self.front_url(path="/customer/login")
        elif template == "email_verification":
            if account.get("isVerified"):
                return None
            token = await self.new_secret(
                account_id=account["_id"],
                purpose="emailVerification",
                ttl_seconds=self.settings.VERIFICATION_TOKEN_TTL_SECONDS,
            )
            data.update(
                verification_link=self.front_url(path=f"/customer/verify-email/{token}"), expiry_time="24 hours"
            )
        elif template == "password_reset":
            data.update(reset_link=await self.reset_link(account=account), expiry_time="1 hour")
        return data


def _stats_view(customer: Mapping[str, Any], *, applied: bool) -> dict[str, Any]:
    return {
        "customerId": customer["_id"],
        "totalOrders": int(customer.get("totalOrders", 0)),
        "totalSpent": from_cents(int(customer.get("totalSpentCents", 0))),
        "loyaltyPoints": int(customer.get("loyaltyPoints", 0)),
        "applied": applied,
    }


def _raise_address_errors(data: AddressIn, *, partial: bool) -> None:
    errors = address_field_errors(data, partial=partial)
    if errors:
        raise ValidationFailed(errors=[{"field": f, "message": m} for f, m in errors])


def _address_fields(data: AddressIn, *, partial: bool) -> dict[str, Any]:
    """The stored fields of ``data``: all of them on create, the sent ones on update."""
    sent = data.model_fields_set
    names = [n for n in ADDRESS_FIELDS if not partial or n in sent]
    fields: dict[str, Any] = {name: getattr(data, name) for name in names}
    if fields.get("coordinates") is not None:
        fields["coordinates"] = data.coordinates.model_dump()  # type: ignore[union-attr]
    if not partial or "type" in fields:
        fields["type"] = fields.get("type") or "home"
    contact = _contact_name(data)
    if contact and fields.get("contactName") is None and (not partial or "contactName" not in sent):
        fields["contactName"] = contact
    return fields


def _contact_name(data: AddressIn) -> str | None:
    """``firstName lastName`` of the address, when either is given."""
    return " ".join(p for p in (data.firstName, data.lastName) if p) or None
