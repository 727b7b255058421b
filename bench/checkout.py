"""Benchmark: checkout through the gateway against a catalogue whose stock runs out.

Starts the real processes (gateway, customer, products, orders, notifications with its file
outbox) on free loopback ports with a temporary data folder, registers N customers and a
catalogue of P products holding fewer units than the customers want, then every customer
adds one product to the cart and places the order through the gateway, C at a time.

Prints placed orders/s (placements only; the cart adds are timed apart), p50/p99 of
placement, the refusals (409 "Some items are not available") and the **oversold units**,
checked afterwards against the products service's counters: for every product, the units in
placed orders must not exceed its stock, and reserved + sold + available must equal total.

    .venv/bin/python bench/checkout.py [--customers 600] [--products 20] [--stock 25] [--clients 32]

``BENCH_PROFILE_ORDERS=/tmp/orders.prof`` runs the orders process under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from shared.auth import issue_token  # noqa: E402
from shared.settings import ServiceSettings  # noqa: E402
from shared.testing import free_port  # noqa: E402

KEY = "bench-service-key"
SERVICES = ("customer", "products", "orders", "notifications", "gateway")
ADDRESS = {"addressLine1": "1 Main St", "city": "Austin", "state": "TX", "country": "USA", "postalCode": "73301"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU seconds used so far by each process (Linux ``/proc``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[name] = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            used[name] = float("nan")
    return used


def start_all(data_dir: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SERVICE_KEY": KEY,
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_MAX": "0",
        "LOG_LEVEL": "warning",
        "SELLERS_SERVICE_URL": dead,
        "MEDIA_SERVICE_URL": dead,
        **{f"{name.upper()}_SERVICE_URL": url for name, url in urls.items() if name != "gateway"},
    }
    processes = []
    for name, port in ports.items():
        service_env = {**env, "PORT": str(port), "DATA_DIR": str(data_dir / name)}
        profile = os.environ.get("BENCH_PROFILE_ORDERS") if name == "orders" else None
        command = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []), "-m", name]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=service_env, stdout=subprocess.DEVNULL))
    return urls, processes


async def wait_healthy(session: aiohttp.ClientSession, urls: dict[str, str]) -> None:
    deadline = time.monotonic() + 120
    for name, url in urls.items():
        while True:
            try:
                async with session.get(f"{url}/health") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become healthy")
            await asyncio.sleep(0.2)


async def run(args: argparse.Namespace, urls: dict[str, str], pids: dict[str, int]) -> None:
    connector = aiohttp.TCPConnector(limit=args.clients * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_healthy(session, urls)
        gw = urls["gateway"]
        svc = {"X-Service-Key": KEY}

        seller_token, _ = issue_token(ServiceSettings(_env_file=None), subject="5" * 24, role="seller", email="s@x.io")
        seller = {"Authorization": f"Bearer {seller_token}"}
        products = []
        for n in range(args.products):
            body = {"name": f"Bench item {n}", "price": 9.99 + n, "category": "bench", "stock": args.stock}
            async with session.post(f"{gw}/api/products/products", json=body, headers=seller) as response:
                assert response.status == 201, await response.text()
                products.append((await response.json())["data"]["id"])

        semaphore = asyncio.Semaphore(args.clients)

        async def register(n: int) -> dict[str, str]:
            body = {"firstName": "Bench", "lastName": "Buyer", "email": f"b{n}@example.com", "password": "secret123"}
            async with semaphore, session.post(f"{urls['customer']}/api/v1/customers/register", json=body) as r:
                assert r.status == 201, await r.text()
                return {"Authorization": f"Bearer {(await r.json())['data']['token']}"}

        started = time.perf_counter()
        customers = await asyncio.gather(*(register(n) for n in range(args.customers)))
        print(f"setup: {args.customers} customers registered in {time.perf_counter() - started:.1f}s, "
              f"{args.products} products × {args.stock} units = {args.products * args.stock} units")  # fmt: skip

        rng = random.Random(7)
        wanted = [products[rng.randrange(len(products))] for _ in customers]

        async def add(headers: dict[str, str], product_id: str) -> float:
            t = time.perf_counter()
            async with (
                semaphore,
                session.post(
                    f"{gw}/api/orders/cart/add", json={"productId": product_id, "quantity": 1}, headers=headers
                ) as response,
            ):
                await response.read()
                assert response.status in (200, 409), (response.status, await response.text())
            return time.perf_counter() - t

        started = time.perf_counter()
        add_times = await asyncio.gather(*(add(h, p) for h, p in zip(customers, wanted, strict=True)))
        add_elapsed = time.perf_counter() - started

        outcomes: Counter[int] = Counter()
        latencies: list[float] = []
        placed_units: Counter[str] = Counter()

        async def place(n: int, headers: dict[str, str]) -> None:
            async with semaphore:
                t = time.perf_counter()
                async with session.post(
                    f"{gw}/api/orders/orders/place",
                    json={"shippingAddress": ADDRESS},
                    headers={**headers, "Idempotency-Key": f"bench-{n}"},
                ) as response:
                    body = await response.json()
                latencies.append((time.perf_counter() - t) * 1000)
            outcomes[response.status] += 1
            if response.status == 201:
                for item in body["data"]["items"]:
                    placed_units[item["productId"]] += item["quantity"]

        cpu_before = cpu_seconds(pids)
        started = time.perf_counter()
        await asyncio.gather(*(place(n, h) for n, h in enumerate(customers)))
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds(pids)

        oversold, inconsistent = 0, 0
        for product_id in products:
            async with session.get(f"{urls['products']}/api/v1/products/{product_id}", headers=svc) as response:
                state = (await response.json())["data"]
            oversold += max(0, placed_units[product_id] - args.stock)
            if state["reservedStock"] + state["soldStock"] != placed_units[product_id]:
                inconsistent += 1
            counted = state["reservedStock"] + state["soldStock"] + state["stock"]
            if counted != state["totalStock"] or state["stock"] < 0:
                inconsistent += 1

        placed = outcomes[201]
        print(f"cart adds: {len(add_times)} in {add_elapsed:.1f}s = {len(add_times) / add_elapsed:.0f}/s, "
              f"p50 {percentile(add_times, 0.5) * 1000:.0f} ms")  # fmt: skip
        print(f"placements: {sum(outcomes.values())} in {elapsed:.2f}s with {args.clients} clients; "
              f"answers {dict(sorted(outcomes.items()))}")  # fmt: skip
        print(f"placed orders/s: {placed / elapsed:.1f}  (placed {placed}, refused {outcomes[409]})")
        print(f"placement latency: p50 {percentile(latencies, 0.5):.0f} ms, p99 {percentile(latencies, 0.99):.0f} ms")
        print(f"oversold units: {oversold}; products whose counters disagree with the orders: {inconsistent}")
        per = {name: (cpu_after[name] - cpu_before[name]) * 1000 / max(1, sum(outcomes.values())) for name in pids}
        print("CPU ms per placement: " + ", ".join(f"{name} {ms:.1f}" for name, ms in per.items())
              + f" (total {sum(per.values()):.1f}; machine load average {os.getloadavg()[0]:.1f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--stock", type=int, default=25)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        urls, processes = start_all(Path(data_dir))
        try:
            asyncio.run(run(args, urls, {name: p.pid for name, p in zip(SERVICES, processes, strict=True)}))
        finally:
            for process in processes:
                process.send_signal(signal.SIGINT)  # a graceful stop (lets cProfile write its file)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    main()
