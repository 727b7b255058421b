"""Benchmark: catalogue queries of the products service at 1,000 / 10,000 / 100,000 products.

Fills an embedded (SQLite) store through the products repository in batches (progress bar
on stderr), starts the real service (``python -m products``) on a free loopback port, and
times three queries with 20 concurrent clients, each request with fresh random parameters:

* ``filtered``: category + price window (10 % of the price range) + ``sort=price``, first page;
* ``search``:   ``search=<a product-name word>`` (each word is in ~0.5 % of the names);
* ``seller``:   ``/products/seller/<id>`` first page with its summary (sellers have ~100 products).

The store grows in place (1k, then +9k, then +90k); the service is restarted at each size.
Prints p50/p95/p99 latency and throughput per size and query, the service's CPU time per
request during the concurrent run (``/proc/<pid>/stat``, less sensitive to a loaded machine than
wall clock), and the **service time**: p50 of the same query sent by one client at a time.

``--gateway 1,2`` also measures, at the largest size, the three queries through the gateway
(``python -m gateway`` in front of ``python -m products``) at ``--clients`` clients, once per
listed value of ``WEB_CONCURRENCY`` (set in the environment of both processes; the bench only
asks for that many workers), and the products service's ``/health`` p50/p99 while
``--clients`` clients saturate it with searches (goal: p99 <= 20 ms).

    python bench/catalog.py [--sizes 1000,10000,100000] [--clients 20] [--requests 1000]
                            [--single 200] [--workers 1] [--gateway 1,2] [--data-dir DIR]
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
from shared.store import DocumentStore, new_id, open_store
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


async def stored_products(data_dir: Path) -> int:
    """How many products a kept ``--data-dir`` already holds (the fill continues from there)."""
    store = open_store(mongodb_uri=None, data_dir=data_dir, database="products_db")
    await store.connect()
    try:
        return await store.collection("products").count({})
    finally:
        await store.close()


async def fill(data_dir: Path, start: int, end: int) -> None:
    """Insert products ``start..end`` (batches through the repository, one transaction each)."""
    if end <= start:
        return
    store = open_store(mongodb_uri=None, data_dir=data_dir, database="products_db")
    await store.connect()
    try:
        await _fill(store, start, end)
    finally:
        await store.close()


async def _fill(store: DocumentStore, start: int, end: int) -> None:
    repo = ProductRepository(store)
    await repo.create_indexes()
    # Marks a new store's search keys complete (or completes an older store's). The bench also
    # runs on trees from before the search keys (their repository has insert_terms instead).
    if hasattr(repo, "build_search_keys"):
        await repo.build_search_keys()
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
        await repo.insert_products(docs)  # with their search keys
        if hasattr(repo, "insert_terms"):
            await repo.insert_terms(terms)
        progress(min(batch_start + BATCH, end) - start, end - start, started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def query_url(kind: str, rng: random.Random, size: int, prefix: str = "/api/v1") -> str:
    if kind == "filtered":
        low = rng.randint(0, 900)
        return (
            f"{prefix}/products?category={rng.choice(CATEGORIES)}&minPrice={low}&maxPrice={low + 100}"
            "&sortBy=price&sortOrder=asc&limit=20"
        )
    if kind == "search":
        return f"{prefix}/products?search={rng.choice(NOUNS)}&limit=20"
    return f"{prefix}/products/seller/{rng.choice(seller_ids(size))}?limit=20"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` and their children so far (uvicorn workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        for each in [pid, *children(pid)]:
            try:
                fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in found]


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__().replace("'", "")


async def measure(
    base: str, kind: str, size: int, clients: int, requests: int, *, pids: list[int] = (), prefix: str = "/api/v1"
) -> dict[str, float]:
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
                url = base + query_url(kind, rng, size, prefix)
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
            async with session.get(base + query_url(kind, rng, size, prefix)) as response:
                await response.read()
        cpu_before = cpu_seconds(list(pids))
        started = time.perf_counter()
        await asyncio.gather(*[client() for _ in range(clients)])
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(list(pids)) - cpu_before
    return {
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "rps": len(latencies) / elapsed,
        "matches": sum(totals) / len(totals),
        "cpu_ms": cpu * 1000 / len(latencies),
    }


async def wait_healthy(base: str, process: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"the process behind {base} exited ({process.args[-1]})")
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} did not become healthy")


def start_service(data_dir: Path, port: int, workers: int, *, web_concurrency: int | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "warning",
        "RESERVATION_CLEANUP_SECONDS": "3600",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    if web_concurrency is not None:
        env["WEB_CONCURRENCY"] = str(web_concurrency)
    root = Path(__file__).resolve().parent.parent
    if workers > 1:
        command = [sys.executable, "-m", "uvicorn", "--factory", "products.app:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    else:
        command = [sys.executable, "-m", "products"]
        env.update(PORT=str(port), HOST="127.0.0.1")
    return subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.DEVNULL)


def start_gateway(port: int, products_url: str, web_concurrency: int) -> subprocess.Popen:
    """``python -m gateway`` in front of the products service (other services unset: unused)."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
        "RATE_LIMIT_MAX": "100000000",
        "PRODUCTS_SERVICE_URL": products_url,
        "WEB_CONCURRENCY": str(web_concurrency),
        "PYTHONPATH": str(root),
    }
    return subprocess.Popen([sys.executable, "-m", "gateway"], env=env, cwd=root, stdout=subprocess.DEVNULL)


async def single(base: str, kind: str, size: int, requests: int, pids: list[int]) -> tuple[float, float]:
    """Service time: p50 of ``requests`` sent one at a time by a single client, and the
    service's CPU ms per request meanwhile (the wall figure includes waiting for a core)."""
    result = await measure(base, kind, size, 1, requests, pids=pids)
    return result["p50"], result["cpu_ms"]


async def health_under_load(base: str, size: int, clients: int, requests: int) -> dict[str, float]:
    """``/health`` latency (one probe every 10 ms) while ``clients`` clients run searches."""
    latencies: list[float] = []
    load = asyncio.create_task(measure(base, "search", size, clients, requests))
    async with aiohttp.ClientSession() as session:
        await asyncio.sleep(0.2)
        while not load.done():
            started = time.perf_counter()
            async with session.get(f"{base}/health") as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)
    searches = await load
    return {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99), "n": len(latencies),
            "search_rps": searches["rps"]}  # fmt: skip


async def through_gateway(data_dir: Path, size: int, args: argparse.Namespace, web_concurrency: int) -> list:
    """The three queries through the gateway, and products' /health under searches."""
    rows = []
    port, gateway_port = free_port(), free_port()
    products = start_service(data_dir, port, 1, web_concurrency=web_concurrency)
    gateway = start_gateway(gateway_port, f"http://127.0.0.1:{port}", web_concurrency)
    try:
        try:
            await wait_healthy(f"http://127.0.0.1:{port}", products)
            await wait_healthy(f"http://127.0.0.1:{gateway_port}", gateway)
        except RuntimeError as exc:  # e.g. a tree whose services do not honour WEB_CONCURRENCY yet
            print(f"  WEB_CONCURRENCY={web_concurrency}: {exc}", file=sys.stderr)
            return [("failed", {"error": str(exc)})]
        for kind in ("filtered", "search", "seller"):
            result = await measure(
                f"http://127.0.0.1:{gateway_port}", kind, size, args.clients, args.requests,
                pids=[products.pid, gateway.pid], prefix="/api/products",
            )  # fmt: skip
            rows.append((kind, result))
            print(
                f"  gateway WEB_CONCURRENCY={web_concurrency} {kind:<9} {result['rps']:6.0f} req/s"
                f"  p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms  load {loadavg()}",
                file=sys.stderr,
            )
        health = await health_under_load(f"http://127.0.0.1:{port}", size, args.clients, args.requests)
        print(
            f"  products /health under {args.clients} searching clients (WEB_CONCURRENCY={web_concurrency}): "
            f"p50 {health['p50']:.1f} ms p99 {health['p99']:.1f} ms (n={health['n']}, "
            f"{health['search_rps']:.0f} searches/s)  load {loadavg()}",
            file=sys.stderr,
        )
        rows.append(("health", health))
    finally:
        for process in (gateway, products):
            process.terminate()
            process.wait(timeout=10)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000, help="requests per query and size")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--data-dir", help="keep the store here instead of a temporary directory")
    parser.add_argument("--single", type=int, default=200, help="one-client requests per query (service time)")
    parser.add_argument("--gateway", default="", help="WEB_CONCURRENCY values for the gateway run, e.g. 1,2")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        filled = await stored_products(data_dir)
        for size in sizes:
            print(f"{size:,} products  load {loadavg()}", file=sys.stderr)
            await fill(data_dir, filled, size)
            filled = max(filled, size)
            port = free_port()
            process = start_service(data_dir, port, args.workers)
            try:
                base = f"http://127.0.0.1:{port}"
                await wait_healthy(base, process)
                # A store written by an older version builds its search keys in the background.
                async with aiohttp.ClientSession() as session:
                    async with session.get(f"{base}/api/v1/products?search=x&limit=1") as response:
                        await response.read()
                for kind in ("filtered", "search", "seller"):
                    result = await measure(base, kind, size, args.clients, args.requests, pids=[process.pid])
                    result["service"], result["service_cpu"] = await single(
                        base, kind, size, args.single, [process.pid]
                    )
                    rows.append((size, kind, result))
                    print(
                        f"  {kind:<9} p50 {result['p50']:6.1f} ms  p99 {result['p99']:6.1f} ms"
                        f"  {result['rps']:6.0f} req/s  ~{result['matches']:.0f} matches"
                        f"  cpu {result['cpu_ms']:.2f} ms/req  service {result['service']:.2f} ms"
                        f" ({result['service_cpu']:.2f} ms CPU)  load {loadavg()}",
                        file=sys.stderr,
                    )
            finally:
                process.terminate()
                process.wait(timeout=10)
    print(f"\nproducts catalogue, {args.clients} concurrent clients, {args.requests} requests per cell, "
          f"{args.workers} worker(s)")  # fmt: skip
    header = ("products", "query", "p50 ms", "p95 ms", "p99 ms", "req/s", "matches", "cpu ms", "service", "svc cpu")
    print(" | ".join(f"{h:>9}" if i == 0 else f"{h:<9}" if i == 1 else f"{h:>7}" for i, h in enumerate(header)))
    print("-" * 102)
    for size, kind, r in rows:
        print(
            f"{size:>9,} | {kind:<9} | {r['p50']:7.1f} | {r['p95']:7.1f} | {r['p99']:7.1f} | {r['rps']:7.0f} | "
            f"{r['matches']:7.0f} | {r['cpu_ms']:7.2f} | {r['service']:7.2f} | {r['service_cpu']:7.2f}"
        )
    base_p50 = {kind: r["p50"] for size, kind, r in rows if size == sizes[0]}
    last = sizes[-1]
    print()
    for size, kind, r in rows:
        if size == last:
            print(
                f"{kind:<9} {last:,}: p99 {r['p99']:.1f} ms (goal <= 50: {'met' if r['p99'] <= 50 else 'MISSED'}), "
                f"p50 {r['p50'] / base_p50[kind]:.2f}x the {sizes[0]:,} p50 (goal <= 2x: "
                f"{'met' if r['p50'] <= 2 * base_p50[kind] else 'MISSED'}), service time {r['service']:.2f} ms "
                f"({r['service_cpu']:.2f} ms CPU)"
            )
    print(f"load average at the end: {loadavg()}")
    if args.gateway:
        print(
            f"\nthrough the gateway, {sizes[-1]:,} products, {args.clients} clients, {args.requests} requests per cell"
        )
        for web_concurrency in [int(w) for w in args.gateway.split(",")]:
            for kind, r in await through_gateway(data_dir, sizes[-1], args, web_concurrency):
                if kind == "failed":
                    print(f"  WEB_CONCURRENCY={web_concurrency} (asked): not measured, {r['error']}")
                elif kind == "health":
                    print(
                        f"  WEB_CONCURRENCY={web_concurrency} (asked) products /health while searches saturate it: "
                        f"p50 {r['p50']:.1f} ms p99 {r['p99']:.1f} ms (goal p99 <= 20: "
                        f"{'met' if r['p99'] <= 20 else 'MISSED'}), {r['search_rps']:.0f} searches/s"
                    )
                else:
                    print(
                        f"  WEB_CONCURRENCY={web_concurrency} (asked) {kind:<9} {r['rps']:6.0f} req/s  "
                        f"p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  cpu {r['cpu_ms']:.2f} ms/req (both)"
                    )
            print(f"  load {loadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
