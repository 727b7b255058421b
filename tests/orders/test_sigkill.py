"""SIGKILL while placements run: the real ``python -m orders`` process killed twice
mid-traffic and restarted on the same data. Every order answered 201 exists after the
restart; reservations left behind by killed requests belong to an order or expire, and once
the expiry has run no stock stays reserved. Products and customer are the real apps, served
on loopback ports by the test process (so only orders pays the start-up cost)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.testing import free_port
from tests.orders.conftest import ADDRESS, KEY, SVC
from tests.orders.test_gateway import served

ROOT = Path(__file__).resolve().parents[2]


def start(port: int, data_dir: Path, log: Path, env: dict[str, str]) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PORT": str(port), "HOST": "127.0.0.1",
                   "DATA_DIR": str(data_dir), "SERVICE_KEY": KEY, "LOG_LEVEL": "warning", **env}  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "orders"], cwd=ROOT, env=environment, stdout=out, stderr=out)


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"orders did not start: {log.read_text()[-2000:]}")


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


async def test_sigkill_during_placements_loses_no_answered_order(tmp_path, shop_factory):
    async with shop_factory(products_settings={"RESERVATION_CLEANUP_SECONDS": 0.3}) as shop:
        seller = await shop.new_seller()
        product_ids = [await shop.new_product(seller, price=5, stock=10_000) for _ in range(3)]
        buyers = [c.headers for c in await shop.new_customers(8)]
        async with served(shop.apps["products"]) as products_url, served(shop.apps["customer"]) as customer_url:
            port, dead = free_port(), f"http://127.0.0.1:{free_port()}"
            base = f"http://127.0.0.1:{port}"
            env = {
                "PRODUCTS_SERVICE_URL": products_url, "CUSTOMER_SERVICE_URL": customer_url,
                "NOTIFICATIONS_SERVICE_URL": dead, "SELLERS_SERVICE_URL": dead, "RESERVATION_MINUTES": "0.05",
                "PENDING_GRACE_SECONDS": "0", "EXPIRY_TASK_SECONDS": "0.3", "OUTBOX_POLL_SECONDS": "60",
            }  # fmt: skip
            log = tmp_path / "orders.log"
            process = start(port, tmp_path / "orders", log, env)
            try:
                await asyncio.to_thread(wait_healthy, base, process, log)
                answered: set[str] = set()
                stop = asyncio.Event()
                keys = itertools.count()

                async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=10) as http:

                    async def shopper(headers: dict[str, str], n: int) -> None:
                        while not stop.is_set():
                            try:
                                item = {"productId": product_ids[n % 3], "quantity": 1}
                                await http.post("/cart/add", json=item, headers=headers)
                                placed = await http.post(
                                    "/orders/place", json={"shippingAddress": ADDRESS},
                                    headers={**headers, "Idempotency-Key": f"k-{next(keys)}"},
                                )  # fmt: skip
                                if placed.status_code == 201:
                                    answered.add(placed.json()["data"]["id"])
                            except httpx.HTTPError:
                                await asyncio.sleep(0.05)

                    workers = [asyncio.create_task(shopper(h, n)) for n, h in enumerate(buyers)]
                    for _ in range(2):  # two kills mid-traffic (each restart costs the imports)
                        await asyncio.sleep(1.0)
                        kill(process)
                        process = start(port, tmp_path / "orders", log, env)
                        await asyncio.to_thread(wait_healthy, base, process, log)
                    await asyncio.sleep(0.5)
                    stop.set()
                    await asyncio.gather(*workers)

                    assert len(answered) >= 5, f"too few placements got through: {len(answered)}"
                    for order_id in answered:
                        found = await http.get(f"/orders/{order_id}", headers=SVC)
                        assert found.status_code == 200, (order_id, found.text)

                    # Every reservation belongs to an order or expires: after the expiry nothing stays reserved.
                    deadline = time.monotonic() + 30
                    while True:
                        states = [await shop.product(p) for p in product_ids]
                        pending = await http.get("/admin/orders", params={"status": "pending"}, headers=SVC)
                        left = pending.json()["data"]["pagination"]["total"]
                        if all(s["reservedStock"] == 0 for s in states) and left == 0:
                            break
                        assert time.monotonic() < deadline, (states, left)
                        await asyncio.sleep(0.3)
                    for state in states:
                        assert state["stock"] + state["soldStock"] == state["totalStock"] == 10_000
                    failed = await http.get("/admin/orders", params={"status": "failed"}, headers=SVC)
                    assert failed.json()["data"]["pagination"]["total"] >= len(answered)
            finally:
                kill(process)
