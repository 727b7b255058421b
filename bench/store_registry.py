"""The SQLite adapter's shape registry under issue 11's attack, at the store level.

A catalogue of products (the products service's list indexes), then many updates that each
store numeric values under new free-form keys (``specifications.<key>``), as one seller
could through ``PUT /products/:id``. Prints the median of the public listing query (page +
count, as ``GET /products`` runs them) before and after the writes, after reopening the file,
the time per update, and the registry's size (rows in ``_store_meta``).

    python bench/store_registry.py [--products 1000] [--updates 1200] [--keys 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.store.sqlite import SqliteStore

INDEXES = (
    [("status", 1), ("sellerActive", 1), ("createdAt", -1)],
    [("status", 1), ("sellerActive", 1), ("category", 1), ("priceCents", 1)],
    [("status", 1), ("sellerActive", 1), ("priceCents", 1)],
    [("sellerId", 1), ("createdAt", -1)],
)
LISTING = {"status": "active", "sellerActive": True}
ROUNDS = 200


async def listing_median(store: SqliteStore) -> float:
    products = store.collection("products")
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        await asyncio.gather(products.find(LISTING, sort=[("createdAt", -1)], limit=20), products.count(LISTING))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def registry_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM _store_meta").fetchone()[0]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=1200)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument(
        "--strings", action="store_true", help="store strings instead (control: same growth of the documents)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "products.sqlite3"
        store = SqliteStore(path)
        products = store.collection("products")
        for spec in INDEXES:
            await products.create_index(spec)
        await products.insert_many(
            [
                {
                    "_id": f"p{i:06d}",
                    "status": "active",
                    "sellerActive": True,
                    "sellerId": f"s{i % 10}",
                    "category": f"c{i % 7}",
                    "priceCents": 100 + i,
                    "createdAt": f"2026-01-01T00:00:{i % 60:02d}.{i % 1000:03d}Z",
                    "specifications": {"weight": i},
                }
                for i in range(args.products)
            ]
        )
        before = await listing_median(store)
        rows_before = registry_rows(path)
        start = time.perf_counter()
        for n in range(args.updates):
            specs = {f"k{n}_{j}": str(j) if args.strings else j for j in range(args.keys)}
            await products.update_one({"_id": f"p{n % args.products:06d}"}, {"$set": {"specifications": specs}})
        per_update = (time.perf_counter() - start) * 1000 / max(args.updates, 1)
        await asyncio.sleep(1.1)  # let the read connections' registry re-check run once
        after = await listing_median(store)
        await store.close()
        reopened = SqliteStore(path)
        start = time.perf_counter()
        await reopened.connect()
        for spec in INDEXES:  # what a service does at start-up
            await reopened.collection("products").create_index(spec)
        startup = (time.perf_counter() - start) * 1000
        after_reopen = await listing_median(reopened)
        await reopened.close()
        rows_after = registry_rows(path)
    kind = "string" if args.strings else "numeric"
    print(f"{args.products} products, {args.updates} updates x {args.keys} new {kind} keys")
    print(
        f"listing (page + count) median: before {before:.2f} ms, after {after:.2f} ms, "
        f"after reopen {after_reopen:.2f} ms"
    )
    print(f"update mean {per_update:.2f} ms; reopen + create_index {startup:.1f} ms")
    print(f"registry rows (_store_meta): before {rows_before}, after {rows_after}")


if __name__ == "__main__":
    asyncio.run(main())
