"""Data access of the sellers service through the document-store port (no rules here).

The account operations every kind of account shares come from
:class:`shared.accounts.AccountRepository`; this adds the embedded business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.accounts import AccountRepository
from shared.store import Document, DocumentStore, new_id
from shared.timeutil import now_iso


class SellerRepository(AccountRepository):
    """The collections ``sellers`` (business embedded) and ``refresh_tokens``."""

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store, "sellers")
        self.sellers = self.accounts

    async def create_indexes(self) -> None:
        await self.create_account_indexes(
            ("phone", "isActive", "isVerified", "createdAt", "business.businessName", "passwordResetTokenHash")
        )

    async def insert_account(self, doc: Document) -> Document:
        """Insert a seller and its embedded business in one write (ids and times set here).

        Raises ``DuplicateKeyError`` when the email is taken.
        """
        if doc.get("business") is not None:
            doc = {**doc, "business": new_business(doc["business"])}
        return await super().insert_account(doc)

    async def apply_change(
        self,
        seller_id: str,
        *,
        business_id: str | None,
        active: bool | None = None,
        set_fields: Mapping[str, Any],
        inc: Mapping[str, int] | None = None,
    ) -> Document | None:
        """One update of the seller pinned to the business it embeds (``business_id``, None
        for none) and, when given, to its ``active`` state; None when either changed."""
        condition: dict[str, Any] = {"_id": seller_id}
        condition.update({"business._id": business_id} if business_id else {"business": None})
        if active is not None:
            condition["isActive"] = active
        return await self.update(condition, set_fields=set_fields, inc=inc)


def new_business(fields: Mapping[str, Any], *, now: str | None = None) -> Document:
    """A business sub-document with its own id and times."""
    now = now or now_iso()
    return {"_id": new_id(), **fields, "createdAt": now, "updatedAt": now}
