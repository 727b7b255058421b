"""Data access of the sellers service through the document-store port (no rules here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from shared.accounts import RefreshTokens
from shared.store import Document, DocumentStore, new_id, stamped_update
from shared.timeutil import now_iso


class SellerRepository:
    """The collections ``sellers`` (business embedded) and ``refresh_tokens``."""

    def __init__(self, store: DocumentStore) -> None:
        self.sellers = store.collection("sellers")
        self.refresh_tokens = RefreshTokens(store.collection("refresh_tokens"))

    async def create_indexes(self) -> None:
        await self.sellers.create_index("email", unique=True)
        for field in (
            "phone",
            "isActive",
            "isVerified",
            "createdAt",
            "business.businessName",
            "passwordResetTokenHash",
        ):
            await self.sellers.create_index(field)
        await self.refresh_tokens.create_indexes()

    # sellers

    async def insert_seller(self, doc: Document) -> Document:
        """Insert a seller and its embedded business in one write (ids and times set here).

        Raises ``DuplicateKeyError`` when the email is taken.
        """
        now = now_iso()
        doc = {"_id": new_id(), **doc, "createdAt": now, "updatedAt": now}
        if doc.get("business") is not None:
            doc["business"] = new_business(doc["business"], now=now)
        await self.sellers.insert_one(doc)
        return doc

    async def get_seller(self, seller_id: str) -> Document | None:
        return await self.sellers.find_one({"_id": seller_id})

    async def get_by_email(self, email: str) -> Document | None:
        return await self.sellers.find_one({"email": email})

    async def get_sellers(self, ids: Sequence[str], *, active_only: bool) -> list[Document]:
        query: dict[str, Any] = {"_id": {"$in": list(ids)}}
        if active_only:
            query["isActive"] = True
        return await self.sellers.find(query)

    async def update_seller(
        self,
        condition: Mapping[str, Any],
        *,
        set_fields: Mapping[str, Any] | None = None,
        unset: Sequence[str] = (),
        inc: Mapping[str, int] | None = None,
        returning: Literal["before", "after"] = "after",
    ) -> Document | None:
        """One conditional atomic update; None when ``condition`` matched nothing."""
        update = stamped_update(set_fields=set_fields, unset=unset, inc=inc)
        return await self.sellers.find_one_and_update(dict(condition), update, return_document=returning)

    async def set_lock(self, seller_id: str, lock_until: str) -> None:
        """Lock the account unless a lock is already set (the first locker's time stays)."""
        await self.sellers.update_one(
            {"_id": seller_id, "lockUntil": None}, {"$set": {"lockUntil": lock_until, "updatedAt": now_iso()}}
        )

    async def list_sellers(
        self, query: Mapping[str, Any], *, sort: Sequence[tuple[str, int]], skip: int, limit: int
    ) -> tuple[list[Document], int]:
        items = await self.sellers.find(dict(query), sort=sort, skip=skip, limit=limit)
        return items, await self.sellers.count(dict(query))

    async def count_sellers(self, query: Mapping[str, Any]) -> int:
        return await self.sellers.count(dict(query))


def new_business(fields: Mapping[str, Any], *, now: str | None = None) -> Document:
    """A business sub-document with its own id and times."""
    now = now or now_iso()
    return {"_id": new_id(), **fields, "createdAt": now, "updatedAt": now}
