"""The shared outbox against a real HTTP receiver: delivery, retry, dedupe, final failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.clients import ServiceClients
from shared.outbox import Outbox, OutboxEntry, OutboxRequest, backoff_seconds
from shared.settings import ServiceSettings
from shared.store.sqlite import SqliteStore
from shared.testing import Receiver, free_port


@pytest.fixture
async def store(tmp_path):
    store = SqliteStore(tmp_path / "outbox.sqlite3")
    await store.connect()
    yield store
    await store.close()


async def make_outbox(
    store, url: str, *, permanent: frozenset[int] = frozenset({502})
) -> tuple[Outbox, ServiceClients]:
    settings = ServiceSettings(_env_file=None, NOTIFICATIONS_SERVICE_URL=url, SERVICE_KEY="k1,k2")
    clients = ServiceClients(settings, timeout=1.0)

    async def build(row: dict[str, Any]) -> OutboxRequest | None:
        if row["payload"].get("skip"):
            return None
        return OutboxRequest(
            "notifications", "POST", "/api/v1/send", json=row["payload"], timeout=0.5, permanent_statuses=permanent
        )

    outbox = Outbox(store, clients, {"email": build}, poll_seconds=3600)
    await outbox.create_indexes()
    return outbox, clients


async def make_due(outbox: Outbox) -> None:
    await outbox.rows.update_many({"status": "pending"}, {"$set": {"nextAttemptAt": "2000-01-01T00:00:00.000Z"}})


def test_backoff_doubles_and_caps():
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_seconds(20) == 300


async def test_delivers_with_service_key_and_idempotency_key(store):
    async with Receiver(status=202) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await outbox.enqueue(kind="email", dedupe_key="welcome:1", payload={"to": "a@x.com"})
        assert await outbox.drain_once() == 1
        method, path, headers, body = receiver.requests[0]
        assert (method, path, body) == ("POST", "/api/v1/send", {"to": "a@x.com"})
        assert headers["idempotency-key"] == "welcome:1" and headers["x-service-key"] == "k1"
        row = await outbox.rows.find_one({"dedupeKey": "welcome:1"})
        assert row["status"] == "sent" and row["sentAt"]
        assert await outbox.drain_once() == 0
        await clients.aclose()


async def test_enqueue_twice_sends_once(store):
    async with Receiver(status=202) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await asyncio.gather(*[outbox.enqueue(kind="email", dedupe_key="k", payload={"n": i}) for i in range(10)])
        assert await outbox.rows.count({}) == 1
        await asyncio.gather(outbox.drain_once(), outbox.drain_once(), outbox.drain_once())
        assert len(receiver.requests) == 1
        await clients.aclose()


async def test_unreachable_target_is_retried_with_backoff_then_delivered(store):
    port = free_port()
    outbox, clients = await make_outbox(store, f"http://127.0.0.1:{port}")
    await outbox.enqueue(kind="email", dedupe_key="w", payload={"x": 1})
    await outbox.drain_once()
    row = await outbox.rows.find_one({})
    assert row["status"] == "pending" and row["attempts"] == 1 and row["lastError"]
    assert row["nextAttemptAt"] > row["updatedAt"]
    assert await outbox.drain_once() == 0  # not due yet
    await clients.aclose()
    async with Receiver(status=202) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await make_due(outbox)
        await outbox.drain_once()
        assert len(receiver.requests) == 1
        assert (await outbox.rows.find_one({}))["status"] == "sent"
        await clients.aclose()


async def test_timeout_and_503_are_retried(store):
    async with Receiver(status=202, delay=2.0) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await outbox.enqueue(kind="email", dedupe_key="slow", payload={})
        await outbox.drain_once()
        row = await outbox.rows.find_one({})
        assert row["status"] == "pending" and row["attempts"] == 1
        receiver.delay, receiver.status = 0, 503
        await make_due(outbox)
        await outbox.drain_once()
        assert (await outbox.rows.find_one({}))["attempts"] == 2
        receiver.status = 202
        await make_due(outbox)
        await outbox.drain_once()
        assert (await outbox.rows.find_one({}))["status"] == "sent"
        await clients.aclose()


async def test_permanent_502_fails_at_once_and_other_4xx_after_five(store):
    async with Receiver(status=502) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await outbox.enqueue(kind="email", dedupe_key="bounce", payload={})
        await outbox.drain_once()
        row = await outbox.rows.find_one({"dedupeKey": "bounce"})
        assert row["status"] == "failed" and row["lastError"].startswith("502")
        receiver.status = 400
        await outbox.enqueue(kind="email", dedupe_key="bad", payload={})
        for _ in range(5):
            await make_due(outbox)
            await outbox.drain_once()
        row = await outbox.rows.find_one({"dedupeKey": "bad"})
        assert row["status"] == "failed" and len(receiver.requests) == 6
        await clients.aclose()


async def test_handler_may_close_without_call_and_reenqueue_during_send_resends(store):
    async with Receiver(status=202, delay=0.3) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await outbox.enqueue(kind="email", dedupe_key="skip", payload={"skip": True})
        await outbox.drain_once()
        assert (await outbox.rows.find_one({"dedupeKey": "skip"}))["status"] == "sent"
        assert receiver.requests == []
        await outbox.enqueue(kind="email", dedupe_key="v", payload={"v": 1})
        sending = asyncio.create_task(outbox.drain_once())
        await asyncio.sleep(0.1)
        await outbox.enqueue(kind="email", dedupe_key="v", payload={"v": 2})
        # The send in flight keeps its claim: no second worker may send the key meanwhile.
        assert (await outbox.rows.find_one({"dedupeKey": "v"}))["status"] == "sending"
        assert await outbox.attempt("v") == "sending"
        await sending
        # The first answer could not close the row (its version moved on), so the same
        # drain sent it again with the fresh payload.
        row = await outbox.rows.find_one({"dedupeKey": "v"})
        assert row["status"] == "sent" and row["version"] == 2
        assert [b for b in receiver.bodies() if b] == [{"v": 1}, {"v": 2}]
        await clients.aclose()


async def test_expired_claim_is_taken_over(store):
    async with Receiver(status=202) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await outbox.enqueue(kind="email", dedupe_key="stuck", payload={})
        # A worker claimed it and died: the claim lease has run out.
        await outbox.rows.update_one({}, {"$set": {"status": "sending", "claimedUntil": "2000-01-01T00:00:00.000Z"}})
        await outbox.drain_once()
        assert (await outbox.rows.find_one({}))["status"] == "sent"
        await clients.aclose()


async def test_drainer_task_and_send_soon(store):
    async with Receiver(status=202) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await outbox.start()
        await outbox.enqueue(kind="email", dedupe_key="now", payload={})
        outbox.send_soon("now")
        await outbox.stop()
        assert len(receiver.requests) == 1
        with pytest.raises(ValueError):
            await outbox.enqueue(kind="nope", dedupe_key="x")
        await clients.aclose()


async def test_a_claimer_that_outlived_its_claim_cannot_close_the_row(store):
    """Two processes on one store: A's claim ran out and B took the row; A's late outcome
    must neither close nor re-queue the row B is sending (only B's outcome counts)."""
    async with Receiver(status=202) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await outbox.enqueue(kind="email", dedupe_key="late", payload={})
        a_row = await outbox._claim({"dedupeKey": "late"})
        await outbox.rows.update_one({}, {"$set": {"claimedUntil": "2000-01-01T00:00:00.000Z"}})
        b_row = await outbox._claim({"dedupeKey": "late"})
        assert a_row is not None and b_row is not None and a_row["claimToken"] != b_row["claimToken"]
        await outbox._finish(a_row, status="sent", error=None)
        await outbox._retry(a_row, error="late", final_answer=False)
        row = await outbox.rows.find_one({})
        assert row["status"] == "sending" and row["claimToken"] == b_row["claimToken"]
        await outbox._deliver(b_row)
        assert (await outbox.rows.find_one({}))["status"] == "sent"
        await clients.aclose()


async def test_enqueue_many_inserts_claimed_rows_and_sends_each_once(store):
    async with Receiver(status=202) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        entries = [OutboxEntry(kind="email", dedupe_key=f"k{n}", payload={"n": n}) for n in range(3)]
        await outbox.enqueue_many(entries, send_soon=True)
        await outbox.stop()  # waits for the immediate attempts
        assert sorted(r[3]["n"] for r in receiver.requests) == [0, 1, 2]
        rows = await outbox.rows.find({}, sort=[("dedupeKey", 1)])
        assert [(r["dedupeKey"], r["status"], r["version"]) for r in rows] == [
            ("k0", "sent", 1),
            ("k1", "sent", 1),
            ("k2", "sent", 1),
        ]
        with pytest.raises(ValueError):
            await outbox.enqueue_many([OutboxEntry(kind="nope", dedupe_key="x")])
        await clients.aclose()


async def test_enqueue_many_falls_back_to_enqueue_when_a_key_exists(store):
    async with Receiver(status=202) as receiver:
        outbox, clients = await make_outbox(store, receiver.url)
        await outbox.enqueue(kind="email", dedupe_key="old", payload={"n": 0})
        await outbox.enqueue_many([OutboxEntry("email", "old", {"n": 1}), OutboxEntry("email", "new", {"n": 2})])
        rows = {r["dedupeKey"]: r for r in await outbox.rows.find({})}
        assert rows["old"]["version"] == 2 and rows["old"]["payload"] == {"n": 1}
        assert rows["new"]["status"] == "pending" and rows["new"]["version"] == 1
        assert await outbox.drain_once() == 2
        assert sorted(r[3]["n"] for r in receiver.requests) == [1, 2]
        await clients.aclose()
