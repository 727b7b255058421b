"""The store-backed lease on every adapter: one holder at a time, taken over once it runs out,
given back at once on release; and two stores on one SQLite file (two processes' view)."""

from __future__ import annotations

import asyncio

from shared.lease import StoreLease
from shared.store.sqlite import SqliteStore


async def test_one_holder_at_a_time(store):
    first = StoreLease(store, "sweep", seconds=60)
    second = StoreLease(store, "sweep", seconds=60)
    assert await first.acquire() is True
    assert await second.acquire() is False
    assert await first.acquire() is True  # the holder renews its own lease
    assert await second.acquire() is False
    await first.release()
    assert await second.acquire() is True
    assert await first.acquire() is False
    other = StoreLease(store, "another-sweep", seconds=60)
    assert await other.acquire() is True  # leases are per name


async def test_a_lease_that_ran_out_is_taken_over(store):
    dead = StoreLease(store, "sweep", seconds=60)
    assert await dead.acquire() is True
    # Its holder died: the lease's end passed without a release.
    await store.collection("leases").update_one({"_id": "sweep"}, {"$set": {"until": "2000-01-01T00:00:00.000Z"}})
    alive = StoreLease(store, "sweep", seconds=60)
    assert await alive.acquire() is True
    await dead.release()  # no longer its lease: nothing changes
    assert await StoreLease(store, "sweep", seconds=60).acquire() is False


async def test_held_runs_the_body_in_one_holder_only(store):
    a, b = StoreLease(store, "job", seconds=60), StoreLease(store, "job", seconds=60)
    async with a.held() as mine_a:
        async with b.held() as mine_b:
            assert (mine_a, mine_b) == (True, False)
    async with b.held() as mine_b:
        assert mine_b is True


async def test_concurrent_acquires_on_one_sqlite_file_have_one_winner(tmp_path):
    path = tmp_path / "shared.sqlite3"
    stores = [SqliteStore(path) for _ in range(4)]  # like four processes on one file
    try:
        for s in stores:
            await s.connect()
        for round_ in range(5):
            leases = [StoreLease(s, f"sweep-{round_}", seconds=60) for s in stores]
            won = await asyncio.gather(*(lease.acquire() for lease in leases))
            assert sorted(won) == [False, False, False, True]
    finally:
        for s in stores:
            await s.close()
