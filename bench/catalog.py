"""Benchmark: catalogue queries of the products service at 1,000 / 10,000 / 100,000 products.

Fills an embedded (SQLite) store through the products repository in batches (progress bar
on stderr), starts the real service (``python -m products``) on a free loopback port, and
times three queries with 20 concurrent clients, each request with fresh random parameters:

* ``filtered``: category + price window (10 % of the price range) + ``sort=price``, first page;
* ``search``:   ``search=<a product-name word>`` (each word is in ~0.5 % of the names);
* ``seller``:   ``/products/seller/<id>`` first page with its summary (sellers have ~100 products).

The store grows in place (1k, then +9k, then +90k); the service is restarted at each size.
Prints p50/p95/p99 latency and throughput per size and query.

    python bench/catalog.py [--sizes 1000,10000,100000] [--clients 20] [--requests 1000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from products.domain import build_product
from products.repository import ProductRepository
from products.schemas import ProductCreateIn
from shared.store import new_id, open_store
from shared.testing import free_port
from shared.timeutil import iso

BATCH = 2000
CATEGORIES = [f"category-{i:02d}" for i in range(20)]
SUBCATEGORIES = [f"sub-{i}" for i in range(5)]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "da", "fi", "gu", "he", "jo", "xa"]


def pseudo_words(rng: random.Random, count: int, syllables: int) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        found.add("".join(rng.choice(SYLLABLES) for _ in range(syllables)))
    return sorted(found)


RNG = random.Random(42)
NOUNS = pseudo_words(RNG, 200, 3)  # searchable product-name words
ADJECTIVES = pseudo_words(RNG, 100, 2)
DESCRIPTION_WORDS = pseudo_words(RNG, 3000, 4)
TAGS = pseudo_words(RNG, 300, 5)


def seller_ids(n: int) -> list[str]:
    """One seller per 100 products (stable across sizes: seller i is the same id every run)."""
    return [f"{i:024x}" for i in range(1, max(1, n // 100) + 1)]


def product_body(rng: random.Random) -> dict:
    return {
        "name": f"{rng.choice(ADJECTIVES).title()} {rng.choice(NOUNS)} {rng.randint(1, 999)}",
        "description": " ".join(rng.choices(DESCRIPTION_WORDS, k=14)),
        "price": round(rng.uniform(1, 1000), 2),
        "category": rng.choice(CATEGORIES),
        "subcategory": rng.choice(SUBCATEGORIES),
        "stock": rng.randint(0, 200),
        "tags": rng.sample(TAGS, 3),
        "specifications": {"Brand": rng.choice(ADJECTIVES), "Weight": rng.randint(1, 5000)},
    }


def progress(done: int, total: int, started: float) -> None:
    width = 40
    filled = width * done // total
    rate = done / max(time.perf_counter() - started, 1e-9)
    sys.stderr.write(f"\r  filling [{'#' * filled}{'.' * (width - filled)}] {done:>7}/{total} ({rate:,.0f}/s)")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


async def fill(data_dir: Path, start: int, end: int) -> None:
    """Insert products ``start..end`` (batches through the repository, one transaction each)."""
    store = open_store(mongodb_uri=None, data_dir=data_dir, database="products_db")
    await store.connect()
    repo = ProductRepository(store)
    await repo.create_indexes()
    rng = random.Random(start)
    sellers = seller_ids(end)
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    for batch_start in range(start, end, BATCH):
        docs, terms = [], {}
        for i in range(batch_start, min(batch_start + BATCH, end)):
            data = ProductCreateIn.model_validate(product_body(rng))
            doc, words = build_product(data, seller_id=sellers[i % len(sellers)], images=[], seller_active=True)
            doc["_id"] = new_id()
            doc["createdAt"] = doc["updatedAt"] = iso(epoch + timedelta(seconds=i))
            docs.append(doc)
            terms[doc["_id"]] = words
        await repo.insert_products(docs)
        await repo.insert_terms(terms)
        progress(min(batch_start + BATCH, end) - start, end - start, started)
    await store.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def query_url(kind: str, rng: random.Random, size: int) -> str:
    if kind == "filtered":
        low = rng.randint(0, 900)
        return (
            f"/api/v1/products?category={rng.choice(CATEGORIES)}&minPrice={low}&maxPrice={low + 100}"
            "&sortBy=price&sortOrder=asc&limit=20"
        )
    if kind == "search":
        return f"/api/v1/products?search={rng.choice(NOUNS)}&limit=20"
    return f"/api/v1/products/seller/{rng.choice(seller_ids(size))}?limit=20"


async def measure(base: str, kind: str, size: int, clients: int, requests: int) -> dict[str, float]:
    latencies: list[float] = []
    totals: list[int] = []
    rng = random.Random(7)
    remaining = requests
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                url = base + query_url(kind, rng, size)
                started = time.perf_counter()
                async with session.get(url) as response:
                    body = await response.json()
                latencies.append((time.perf_counter() - started) * 1000)
                assert response.status == 200, body
                page = body["data"] if kind != "seller" else body["data"]["products"]
                info = body["pagination"] if kind != "seller" else body["data"]["pagination"]
                assert len(page) <= 20
                totals.append(info["total"])

        for _ in range(clients * 2):  # warm-up (connections, caches)
            async with session.get(base + query_url(kind, rng, size)) as response:
                await response.read()
        started = time.perf_counter()
        await asyncio.gather(*[client() for _ in range(clients)])
        elapsed = time.perf_counter() - started
    return {
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "rps": len(latencies) / elapsed,
        "matches": sum(totals) / len(totals),
    }


async def wait_healthy(base: str, process: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError("the products service exited")
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the products service did not become healthy")


def start_service(data_dir: Path, port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "warning",
        "RESERVATION_CLEANUP_SECONDS": "3600",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    root = Path(__file__).resolve().parent.parent
    if workers > 1:
        command = [sys.executable, "-m", "uvicorn", "--factory", "products.app:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    else:
        command = [sys.executable, "-m", "products"]
        env.update(PORT=str(port), HOST="127.0.0.1")
    return subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.DEVNULL)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000, help="requests per query and size")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--data-dir", help="keep the store here instead of a temporary directory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        filled = 0
        for size in sizes:
            print(f"{size:,} products", file=sys.stderr)
            await fill(data_dir, filled, size)
            filled = size
            port = free_port()
            process = start_service(data_dir, port, args.workers)
            try:
                base = f"http://127.0.0.1:{port}"
                await wait_healthy(base, process)
                for kind in ("filtered", "search", "seller"):
                    result = await measure(base, kind, size, args.clients, args.requests)
                    rows.append((size, kind, result))
                    print(
                        f"  {kind:<9} p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms"
                        f"  {result['rps']:6.0f} req/s  ~{result['matches']:.0f} matches",
                        file=sys.stderr,
                    )
            finally:
                process.terminate()
                process.wait(timeout=10)
    print(f"\nproducts catalogue, {args.clients} concurrent clients, {args.requests} requests per cell, "
          f"{args.workers} worker(s)")  # fmt: skip
    header = ("products", "query", "p50 ms", "p95 ms", "p99 ms", "req/s", "matches")
    print(" | ".join(f"{h:>9}" if i == 0 else f"{h:<9}" if i == 1 else f"{h:>7}" for i, h in enumerate(header)))
    print("-" * 70)
    for size, kind, r in rows:
        print(
            f"{size:>9,} | {kind:<9} | {r['p50']:7.1f} | {r['p95']:7.1f} | {r['p99']:7.1f} | {r['rps']:6.0f} | "
            f"{r['matches']:7.0f}"
        )
    base_p50 = {kind: r["p50"] for size, kind, r in rows if size == sizes[0]}
    last = sizes[-1]
    print()
    for size, kind, r in rows:
        if size == last:
            print(
                f"{kind:<9} {last:,}: p99 {r['p99']:.1f} ms (goal <= 50: {'met' if r['p99'] <= 50 else 'MISSED'}), "
                f"p50 {r['p50'] / base_p50[kind]:.2f}x the {sizes[0]:,} p50 (goal <= 2x: "
                f"{'met' if r['p50'] <= 2 * base_p50[kind] else 'MISSED'})"
            )


if __name__ == "__main__":
    asyncio.run(main())
