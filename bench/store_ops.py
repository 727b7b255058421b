"""Write throughput of the SQLite document store, at the store level (no HTTP).

Three operations on a file in a temporary folder, each ``--ops`` times, first one at a time
and then ``--concurrency`` tasks at once (as concurrent requests of one service make them):

* ``insert_one`` of an order-sized document into a collection with a unique index;
* ``update_one`` with a condition (``{"_id": …, "version": n}`` → ``$set`` + ``$inc``), the
  compare-and-set the services use for carts and outbox rows;
* ``find_one_and_update`` claiming a due row by its unique key (``$or`` filter, sort), as
  the outbox's immediate attempt does.

Prints ops/s (wall) and CPU µs per operation of this process (user + system, every thread),
with the load average: CPU per operation is the figure that does not depend on the load.

    python bench/store_ops.py [--ops 2000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.store import Collection
from shared.store.sqlite import SqliteStore


def _doc(n: int) -> dict:
    return {
        "orderNumber": f"ORD{n:016d}",
        "customerId": f"c{n % 97}",
        "status": "pending",
        "version": 0,
        "items": [{"productId": f"p{n % 13}", "quantity": 1, "unitPriceCents": 1999, "status": "reserved"}],
        "statusHistory": [{"status": "pending", "at": "2026-12-06T00:00:00.000Z", "notes": "Order placed"}],
        "nextAttemptAt": f"2026-12-06T00:00:{n % 60:02d}.000Z",
        "createdAt": "2026-12-06T00:00:00.000Z",
    }


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


async def timed(label: str, ops: int, concurrency: int, make: object) -> None:
    queue = list(range(ops))

    async def worker() -> None:
        while queue:
            await make(queue.pop())  # type: ignore[operator]

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load = load_average()
    print(
        f"{label:<22} x{concurrency:<3} {ops / wall:8.0f} ops/s  {cpu / ops * 1e6:7.0f} µs CPU/op  (load {load})",
        flush=True,
    )


async def one_round(things: Collection, ops: int, concurrency: int) -> None:
    base = concurrency * 10 * ops  # ids of this round
    versions = dict.fromkeys(range(ops), 0)

    async def insert(n: int) -> None:
        await things.insert_one({"_id": f"t{base + n}", **_doc(base + n)})

    async def update(n: int) -> None:
        result = await things.update_one(
            {"_id": f"t{base + n}", "version": versions[n]},
            {"$set": {"status": "confirmed"}, "$inc": {"version": 1}},
        )
        assert result.modified == 1
        versions[n] += 1

    async def claim(n: int) -> None:
        due = {"$or": [{"status": "pending", "nextAttemptAt": {"$lte": "2026-12-07"}}, {"status": "x"}]}
        claimed = await things.find_one_and_update(
            {"$and": [{"orderNumber": f"ORD{base + n:016d}"}, due]},
            {"$set": {"status": "sending"}},
            sort=[("nextAttemptAt", 1)],
        )
        assert claimed is not None

    await timed("insert_one", ops, concurrency, insert)
    await timed("update_one (cond.)", ops, concurrency, update)
    await things.update_many({}, {"$set": {"status": "pending"}})
    await timed("find_one_and_update", ops, concurrency, claim)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.sqlite3")
        things = store.collection("things")
        await things.create_index("orderNumber", unique=True)
        await things.create_index([("status", 1), ("nextAttemptAt", 1)])
        for concurrency in (1, args.concurrency):
            await one_round(things, args.ops, concurrency)
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(main(parser.parse_args()))
