"""The outbox: calls that must happen but must not block or fail a request.

One implementation for every service (ARCHITECTURE.md "Reliable side effects"). A row is
upserted under a unique ``dedupeKey`` in the service's own ``outbox`` collection together
with the state change it follows; an immediate attempt runs after the answer and a drainer
started in the lifespan picks due rows every ``OUTBOX_POLL_SECONDS``.

The payload of the HTTP call is built *at send time* by the handler registered for the
row's ``kind``, from the current data; a handler may return None to close the row as sent
without a call (e.g. the customer became inactive).

Outcome of a call: 2xx → ``sent`` (only if the row's ``version`` is unchanged, otherwise it
stays pending and is sent again with fresh data); timeout, connection error, 408, 429,
500, 503, 504 → retried with backoff ``min(5 s × 2^(attempts−1), 300 s)`` without limit;
a status listed in the request's ``permanent_statuses`` (notifications' 502) → ``failed``
at once; any other 4xx (or other 5xx) → retried likewise, ``failed`` after 5 such answers.

Several processes (uvicorn workers, instances) may drain one store: a row is claimed by one
conditional update (``sending``, ``claimedUntil`` = now + 60 s, a fresh ``claimToken``), so
one process sends it; a claimer that dies leaves the row to be taken again once the claim
runs out. The outcome is written only under the writer's own token, so a claimer that
outlived its claim cannot overwrite (or re-queue) the row another process took since.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shared.clients import ServiceClients
from shared.responses import UpstreamError
from shared.store import Collection, DocumentStore, DuplicateKeyError, new_id
from shared.timeutil import now_iso

log = logging.getLogger("shared.outbox")

RETRYABLE_STATUSES = frozenset({408, 429, 500, 503, 504})
MAX_FINAL_ANSWERS = 5
CLAIM_SECONDS = 60
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 300.0
PURGE_EVERY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class OutboxRequest:
    """The call a handler wants made for one row."""

    service: str
    method: str
    path: str
    json: Any = None
    timeout: float = 5.0
    permanent_statuses: frozenset[int] = field(default_factory=frozenset)


Handler = Callable[[Mapping[str, Any]], Awaitable[OutboxRequest | None]]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One row to queue with :meth:`Outbox.enqueue_many`."""

    kind: str
    dedupe_key: str
    payload: Mapping[str, Any] | None = None


def backoff_seconds(attempts: int) -> float:
    """Delay before the next try after ``attempts`` failed tries: 5 s, 10 s, 20 s … ≤ 300 s."""
    return min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)


def _ours(row: Mapping[str, Any]) -> dict[str, Any]:
    """The filter matching ``row`` only while it is still being sent under our claim."""
    return {"_id": row["_id"], "status": "sending", "claimToken": row.get("claimToken")}


class Outbox:
    """Queue and deliver side-effect calls for one service.

    ``handlers`` maps a row ``kind`` to a coroutine building its :class:`OutboxRequest`.
    """

    def __init__(
        self,
        store: DocumentStore,
        clients: ServiceClients,
        handlers: Mapping[str, Handler] | None = None,
        *,
        poll_seconds: float = 5.0,
        collection: str = "outbox",
    ) -> None:
        self._rows: Collection = store.collection(collection)
        self._clients = clients
        self._handlers = dict(handlers or {})
        self._poll_seconds = poll_seconds
        self._drainer: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def register(self, kind: str, handler: Handler) -> None:
        """Set the handler that builds the call for rows of ``kind``."""
        self._handlers[kind] = handler

    @property
    def rows(self) -> Collection:
        """The underlying collection (for tests and admin views)."""
        return self._rows

    async def create_indexes(self) -> None:
        """The unique ``dedupeKey`` index and the due-row index."""
        await self._rows.create_index("dedupeKey", unique=True)
        await self._rows.create_index([("status", 1), ("nextAttemptAt", 1)])

    async def enqueue(self, *, kind: str, dedupe_key: str, payload: Mapping[str, Any] | None = None) -> None:
        """Upsert the row for ``dedupe_key``: pending, due now, attempts 0, version + 1.

        Queuing the same key twice never sends twice; a row already sent is sent again
        (the caller asked for a fresh delivery, e.g. a new reset email). A row being sent
        right now keeps its claim and only gets the new version: the sender, seeing the
        version moved on, puts it back to pending and it is sent again with fresh data, so
        two sends of one key never overlap and the newest state is delivered last.
        """
        if kind not in self._handlers:
            raise ValueError(f"no outbox handler for kind {kind!r}")
        fresh = {"kind": kind, "payload": dict(payload or {}), "attempts": 0, "finalAnswers": 0, "lastError": None}
        for _ in range(5):
            now = now_iso()
            try:
                result = await self._rows.update_one(
                    {"dedupeKey": dedupe_key, "status": {"$ne": "sending"}},
                    {
                        "$set": {
                            **fresh,
                            "status": "pending",
                            "nextAttemptAt": now,
                            "claimedUntil": None,
                            "updatedAt": now,
                        },
                        "$inc": {"version": 1},
                        "$setOnInsert": {"createdAt": now, "sentAt": None},
                    },
                    upsert=True,
                )
                if result.matched or result.upserted_id:
                    return
            except DuplicateKeyError:
                pass  # the row exists and is being sent (or a concurrent first enqueue won)
            result = await self._rows.update_one(
                {"dedupeKey": dedupe_key, "status": "sending"},
                {"$set": {**fresh, "updatedAt": now}, "$inc": {"version": 1}},
            )
            if result.matched:
                return
        raise RuntimeError(f"outbox: could not enqueue {dedupe_key} (row kept changing)")

    async def enqueue_many(self, entries: Sequence[OutboxEntry], *, send_soon: bool = False) -> None:
        """Queue several rows in one store write where they are all new (a new order's emails).

        Each entry gets what :meth:`enqueue` gives it. New rows are inserted together (all or
        none); with ``send_soon`` they are inserted already claimed (``sending``, the usual
        lease) and delivered in the background at once, which saves the claim write of
        :meth:`send_soon`: if this process dies first, the lease runs out and the drainer
        sends them. When any key already has a row, every entry goes through
        :meth:`enqueue` (and :meth:`send_soon`) instead.
        """
        for entry in entries:
            if entry.kind not in self._handlers:
                raise ValueError(f"no outbox handler for kind {entry.kind!r}")
        if not entries:
            return
        now = now_iso()
        claimed_until = now_iso(timedelta(seconds=CLAIM_SECONDS)) if send_soon else None
        rows = [
            {
                "_id": new_id(),
                "dedupeKey": entry.dedupe_key,
                "kind": entry.kind,
                "payload": dict(entry.payload or {}),
                "attempts": 0,
                "finalAnswers": 0,
                "lastError": None,
                "status": "sending" if send_soon else "pending",
                "nextAttemptAt": now,
                "claimedUntil": claimed_until,
                "claimToken": secrets.token_hex(8) if send_soon else None,
                "updatedAt": now,
                "version": 1,
                "createdAt": now,
                "sentAt": None,
            }
            for entry in entries
        ]
        try:
            await self._rows.insert_many(rows)
        except DuplicateKeyError:
            for entry in entries:
                await self.enqueue(kind=entry.kind, dedupe_key=entry.dedupe_key, payload=entry.payload)
                if send_soon:
                    self.send_soon(entry.dedupe_key)
            return
        if send_soon:
            self._in_background(self._deliver_claimed(rows))

    def send_soon(self, dedupe_key: str) -> None:
        """Try ``dedupe_key`` in the background now (call after answering the request)."""
        self._in_background(self._attempt_logged(dedupe_key))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _attempt_logged(self, dedupe_key: str) -> None:
        try:
            await self._attempt(dedupe_key)
        except Exception:
            log.exception("outbox: immediate attempt for %s failed", dedupe_key)

    async def _deliver_claimed(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Deliver rows this process inserted claimed, side by side, as :meth:`send_soon` would."""

        async def one(row: Mapping[str, Any]) -> None:
            try:
                if await self._deliver(row):  # the version moved on: due again at once
                    await self._attempt(row["dedupeKey"], tries=2)
            except Exception:
                log.exception("outbox: immediate attempt for %s failed", row["dedupeKey"])

        await asyncio.gather(*(one(row) for row in rows))

    async def attempt(self, dedupe_key: str) -> str | None:
        """Deliver ``dedupe_key`` now if it is due and not being sent elsewhere, and wait.

        Returns the row's status afterwards (``sent``, ``pending``, ``sending``, ``failed``),
        or None when there is no such row.
        """
        await self._attempt(dedupe_key)
        current = await self._rows.find_one({"dedupeKey": dedupe_key})
        return current["status"] if current else None

    async def _attempt(self, dedupe_key: str, *, tries: int = 3) -> None:
        for _ in range(tries):  # a version that moved on during the send is due again at once
            row = await self._claim({"dedupeKey": dedupe_key})
            if row is None or not await self._deliver(row):
                break

    async def drain_once(self, *, limit: int = 100) -> int:
        """Claim and deliver up to ``limit`` due rows; return how many were attempted."""
        done = 0
        while done < limit and not self._stopping:
            row = await self._claim({})
            if row is None:
                break
            await self._deliver(row)
            done += 1
        return done

    async def _claim(self, extra: Mapping[str, Any]) -> dict[str, Any] | None:
        now = now_iso()
        due = {
            "$or": [
                {"status": "pending", "nextAttemptAt": {"$lte": now}},
                {"status": "sending", "claimedUntil": {"$lte": now}},
            ]
        }
        return await self._rows.find_one_and_update(
            {"$and": [dict(extra), due]} if extra else due,
            {
                "$set": {
                    "status": "sending",
                    "claimedUntil": now_iso(timedelta(seconds=CLAIM_SECONDS)),
                    "claimToken": secrets.token_hex(8),
                }
            },
            sort=[("nextAttemptAt", 1)],
            return_document="after",
        )

    async def _deliver(self, row: Mapping[str, Any]) -> bool:
        """Send a claimed row and record the outcome; True when its version moved on meanwhile
        (the newer version was made due at once)."""
        handler = self._handlers.get(row["kind"])
        if handler is None:
            return await self._finish(row, status="failed", error=f"no handler for kind {row['kind']}")
        try:
            request = await handler(row)
        except Exception as exc:  # a bug or a store hiccup while building: retry later
            log.exception("outbox: building %s failed", row["dedupeKey"])
            return await self._retry(row, error=f"build failed: {exc}", final_answer=False)
        if request is None:
            return await self._finish(row, status="sent", error=None)
        client = self._clients.get(request.service)
        headers = {"Idempotency-Key": row["dedupeKey"]}
        try:
            response = await client.request(
                request.method, request.path, json=request.json, headers=headers, timeout=request.timeout
            )
        except UpstreamError as exc:
            return await self._retry(row, error=exc.message, final_answer=False)
        status = response.status_code
        if 200 <= status < 300:
            return await self._finish(row, status="sent", error=None)
        if status in request.permanent_statuses:
            return await self._finish(row, status="failed", error=f"{status}: {response.text[:300]}")
        return await self._retry(
            row, error=f"{status}: {response.text[:300]}", final_answer=status not in RETRYABLE_STATUSES
        )

    async def _finish(self, row: Mapping[str, Any], *, status: str, error: str | None) -> bool:
        now = now_iso()
        fields: dict[str, Any] = {"status": status, "claimedUntil": None, "updatedAt": now, "lastError": error}
        if status == "sent":
            fields["sentAt"] = now
        else:
            log.error("outbox: %s failed for good: %s", row["dedupeKey"], error)
        closed = await self._rows.update_one({**_ours(row), "version": row["version"]}, {"$set": fields})
        if not closed.matched:
            await self._resend_newer(row)
        return not closed.matched

    async def _retry(self, row: Mapping[str, Any], *, error: str, final_answer: bool) -> bool:
        attempts = int(row.get("attempts", 0)) + 1
        finals = int(row.get("finalAnswers", 0)) + (1 if final_answer else 0)
        if finals >= MAX_FINAL_ANSWERS:
            return await self._finish({**row}, status="failed", error=error)
        now = now_iso()
        log.warning("outbox: %s attempt %d failed: %s", row["dedupeKey"], attempts, error)
        result = await self._rows.update_one(
            {**_ours(row), "version": row["version"]},
            {
                "$set": {
                    "status": "pending",
                    "attempts": attempts,
                    "finalAnswers": finals,
                    "nextAttemptAt": now_iso(timedelta(seconds=backoff_seconds(attempts))),
                    "claimedUntil": None,
                    "lastError": error,
                    "updatedAt": now,
                }
            },
        )
        if not result.matched:
            await self._resend_newer(row)
        return not result.matched

    async def _resend_newer(self, row: Mapping[str, Any]) -> None:
        """The row was re-enqueued while we sent it: make the newer version due now."""
        now = now_iso()
        await self._rows.update_one(
            {**_ours(row), "version": {"$ne": row["version"]}},
            {"$set": {"status": "pending", "nextAttemptAt": now, "claimedUntil": None, "updatedAt": now}},
        )

    async def start(self) -> None:
        """Start the drainer task (call in the lifespan)."""
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain_forever())

    async def stop(self) -> None:
        """Stop the drainer and wait for immediate attempts and a drain pass still running
        (the pass stops after the row in hand)."""
        self._stopping = True
        try:
            if self._drainer is not None:
                self._drainer.cancel()
                try:
                    await self._drainer
                except asyncio.CancelledError:
                    pass
                self._drainer = None
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)
        finally:
            self._stopping = False

    async def _drain_forever(self) -> None:
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while True:
            purge = loop.time() - last_purge >= PURGE_EVERY_SECONDS
            if purge:
                last_purge = loop.time()
            # Each pass is a background task that stop() waits for (it ends after the row in
            # hand): cancelling it between a claim and the row's outcome would leave the row
            # claimed, unsent, until the claim runs out.
            await asyncio.shield(self._in_background(self._drain_pass(purge=purge)))
            await asyncio.sleep(self._poll_seconds)

    async def _drain_pass(self, *, purge: bool) -> None:
        try:
            await self.drain_once()
            if purge:
                await self.purge_sent()
        except Exception:
            log.exception("outbox: drain failed")

    async def purge_sent(self, *, older_than: timedelta = timedelta(days=7)) -> int:
        """Delete ``sent`` rows older than ``older_than``; nothing else is ever deleted."""
        return await self._rows.delete_many({"status": "sent", "sentAt": {"$lt": now_iso(-older_than)}})
