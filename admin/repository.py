"""Data access of the admin service: the ``admins`` and ``audit_logs`` collections.

Every query and update document of the service lives here, under intention names
(``record_failed_login``, ``append_audit`` …); no business rules. Counters change only through
conditional atomic updates, never read-modify-write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.store import Document, DocumentStore, DuplicateKeyError, new_id, stamped_update
from shared.timeutil import now_iso

SUPER_ADMIN = "super_admin"


def _not_locked(now: str) -> dict[str, Any]:
    return {"$or": [{"lockUntil": None}, {"lockUntil": {"$lte": now}}]}


class AdminRepository:
    """The collections ``admins`` and ``audit_logs`` (the outbox is ``shared.outbox``'s)."""

    def __init__(self, store: DocumentStore) -> None:
        self.admins = store.collection("admins")
        self.audit = store.collection("audit_logs")

    async def create_indexes(self) -> None:
        await self.admins.create_index("email", unique=True)
        for field in ("role", "isActive", "passwordResetToken", "createdAt"):
            await self.admins.create_index(field)
        await self.audit.create_index([("at", -1)])
        await self.audit.create_index("adminId")
        await self.audit.create_index("service")

    # admins: reads

    async def get_admin(self, admin_id: str) -> Document | None:
        return await self.admins.find_one({"_id": admin_id})

    async def get_by_email(self, email: str) -> Document | None:
        return await self.admins.find_one({"email": email})

    async def any_admin(self) -> bool:
        return await self.admins.find_one({}) is not None

    async def count_active_super_admins(self) -> int:
        return await self.admins.count({"role": SUPER_ADMIN, "isActive": True})

    async def list_admins(
        self,
        *,
        page: int,
        limit: int,
        role: str | None,
        active: bool | None,
        search: str | None,
    ) -> tuple[list[Document], int]:
        """One page sorted by ``createdAt`` descending, and the total matching."""
        query: dict[str, Any] = {}
        if role is not None:
            query["role"] = role
        if active is not None:
            query["isActive"] = active
        if search:
            pattern = re.escape(search)
            query["$or"] = [{f: {"$regex": pattern, "$options": "i"}} for f in ("firstName", "lastName", "email")]
        docs = await self.admins.find(
            query, sort=[("createdAt", -1), ("_id", -1)], skip=(page - 1) * limit, limit=limit
        )
        return docs, await self.admins.count(query)

    # admins: writes

    async def insert_admin(self, doc: Mapping[str, Any]) -> Document:
        """Insert an admin (id and times set here). Raises ``DuplicateKeyError`` for a taken email."""
        now = now_iso()
        row = {"_id": new_id(), **doc, "createdAt": now, "updatedAt": now}
        await self.admins.insert_one(row)
        return row

    async def insert_admin_if_absent(self, doc: Mapping[str, Any]) -> bool:
        """Insert unless the email exists (the unique index decides between racing inserts)."""
        try:
            await self.insert_admin(doc)
        except DuplicateKeyError:
            return False
        return True

    async def clear_expired_lock(self, admin_id: str, *, lock_until: str) -> bool:
        """Clear a lock that has run out, only if nobody changed it since it was read."""
        updated = await self.admins.find_one_and_update(
            {"_id": admin_id, "lockUntil": lock_until},
            stamped_update(set_fields={"loginAttempts": 0, "lockUntil": None}),
        )
        return updated is not None

    async def record_failed_login(self, admin_id: str, *, threshold: int, now: str) -> int | None:
        """Count one wrong password atomically; the new count, or None when the account is
        already at the threshold or locked (so concurrent failures never count past it)."""
        updated = await self.admins.find_one_and_update(
            {"$and": [{"_id": admin_id, "loginAttempts": {"$lt": threshold}}, _not_locked(now)]},
            stamped_update(inc={"loginAttempts": 1}),
        )
        return None if updated is None else int(updated["loginAttempts"])

    async def lock(self, admin_id: str, *, until: str, now: str) -> str | None:
        """Set ``lockUntil`` unless a live lock is already set; the lock in force afterwards."""
        await self.admins.update_one(
            {"$and": [{"_id": admin_id}, _not_locked(now)]}, stamped_update(set_fields={"lockUntil": until})
        )
        current = await self.get_admin(admin_id)
        return (current or {}).get("lockUntil")

    async def record_login(self, admin_id: str, *, now: str) -> Document | None:
        """A successful login: reset the counters and set ``lastLogin``, unless a lock was set
        meanwhile (None then)."""
        return await self.admins.find_one_and_update(
            {"$and": [{"_id": admin_id}, _not_locked(now)]},
            stamped_update(set_fields={"loginAttempts": 0, "lockUntil": None, "lastLogin": now}),
        )

    async def replace_hash(self, admin_id: str, *, old: str, new: str) -> None:
        """Upgrade a password hash to the current scheme, only if it is still ``old`` (a
        password reset meanwhile wins)."""
        await self.admins.update_one({"_id": admin_id, "password": old}, stamped_update(set_fields={"password": new}))

    async def store_reset_token(self, admin_id: str, *, token_hash: str, expires: str) -> None:
        """Store a new reset-token hash, replacing any earlier one."""
        await self.admins.update_one(
            {"_id": admin_id},
            stamped_update(set_fields={"passwordResetToken": token_hash, "passwordResetExpires": expires}),
        )

    async def consume_reset_token(self, *, token_hash: str, password_hash: str, now: str) -> Document | None:
        """Set a new password with a live token in one atomic update: the token works once,
        the lock and counters are cleared and the token version moves on."""
        return await self.admins.find_one_and_update(
            {"passwordResetToken": token_hash, "passwordResetExpires": {"$gt": now}},
            stamped_update(
                set_fields={
                    "password": password_hash,
                    "passwordChangedAt": now,
                    "passwordResetToken": None,
                    "passwordResetExpires": None,
                    "loginAttempts": 0,
                    "lockUntil": None,
                },
                inc={"tokenVersion": 1},
            ),
        )

    async def change_admin(
        self, admin_id: str, *, expected: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> Document | None:
        """Apply ``changes`` if the admin still has the ``expected`` field values; None otherwise."""
        return await self.admins.find_one_and_update(
            {"_id": admin_id, **expected}, stamped_update(set_fields=dict(changes))
        )

    # audit log

    async def append_audit(self, entry: Mapping[str, Any]) -> str:
        """Insert an audit entry (its id is made here); raises when the store fails."""
        row = {"_id": new_id(), **entry}
        await self.audit.insert_one(row)
        return row["_id"]

    async def close_audit(self, entry_id: str, *, status: int, duration_ms: int) -> None:
        """Record the final status and duration of an audited call."""
        await self.audit.update_one({"_id": entry_id}, {"$set": {"status": status, "durationMs": duration_ms}})

    async def list_audit(
        self,
        *,
        page: int,
        limit: int,
        admin_id: str | None,
        service: str | None,
        method: str | None,
        since: str | None,
        until: str | None,
    ) -> tuple[list[Document], int]:
        """One page sorted by ``at`` descending, and the total matching."""
        query: dict[str, Any] = {}
        if admin_id is not None:
            query["adminId"] = admin_id
        if service is not None:
            query["service"] = service
        if method is not None:
            query["method"] = method
        at: dict[str, str] = {}
        if since is not None:
            at["$gte"] = since
        if until is not None:
            at["$lte"] = until
        if at:
            query["at"] = at
        docs = await self.audit.find(query, sort=[("at", -1), ("_id", -1)], skip=(page - 1) * limit, limit=limit)
        return docs, await self.audit.count(query)
