"""Store-backed leases: one process at a time runs a periodic sweep over a shared store.

Several processes of a service (uvicorn workers, or instances on one database) each run the
same background loops. Every row those loops change is already changed by a conditional
update, so running a sweep twice at once is correct; a lease makes it happen once per turn
instead of N times, and removes the windows where two sweeps re-queue the same work.

A lease is one document ``{_id: name, holder, until}`` in the ``leases`` collection. Taking it
is one conditional upsert: it matches when the lease is ours or has run out; when another
holder's lease is live, the upsert's insert collides on ``_id`` and the answer is no. A holder
that crashes mid-sweep blocks the others for at most ``seconds``; one that finishes gives the
lease back at once. Times are the store's ISO strings (``shared.timeutil``), so processes on
several hosts need clocks within a small fraction of ``seconds`` of each other.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from shared.store import Collection, DocumentStore, DuplicateKeyError
from shared.timeutil import now_iso

LEASES = "leases"


def holder_id() -> str:
    """``host:pid:random``: unique per process and per :class:`StoreLease`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class StoreLease:
    """The lease called ``name`` in ``store``; held at most ``seconds`` after each acquire."""

    def __init__(self, store: DocumentStore, name: str, *, seconds: float, collection: str = LEASES) -> None:
        if seconds <= 0:
            raise ValueError("a lease lasts a positive number of seconds")
        self._rows: Collection = store.collection(collection)
        self.name = name
        self.seconds = seconds
        self.holder = holder_id()

    async def acquire(self) -> bool:
        """Take (or renew) the lease for ``seconds``; False while another holder's is live."""
        now = now_iso()
        try:
            await self._rows.update_one(
                {"_id": self.name, "$or": [{"holder": self.holder}, {"until": {"$lte": now}}]},
                {
                    "$set": {
                        "holder": self.holder,
                        "until": now_iso(timedelta(seconds=self.seconds)),
                        "acquiredAt": now,
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the lease exists and is another holder's, still running
        return True

    async def release(self) -> None:
        """End the lease now if it is still ours (the next acquire by anyone succeeds)."""
        await self._rows.update_one({"_id": self.name, "holder": self.holder}, {"$set": {"until": now_iso()}})

    @asynccontextmanager
    async def held(self) -> AsyncIterator[bool]:
        """``async with lease.held() as mine:`` run the sweep only when ``mine``; released after."""
        mine = await self.acquire()
        try:
            yield mine
        finally:
            if mine:
                await self.release()
