"""SIGKILL while placements run: the real ``python -m orders`` process (with real products and
customer processes) killed repeatedly mid-traffic. Every order answered 201 exists after the
restart; reservations left behind by killed requests expire, and once the expiry has run no
stock stays reserved."""

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

from shared.auth import issue_token
from shared.settings import ServiceSettings
from shared.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
KEY = "sigkill-test-key"
SVC = {"X-Service-Key": KEY}
ADDRESS = {"addressLine1": "1 Main St", "city": "Austin", "state": "TX", "country": "USA", "postalCode": "73301"}


def start(name: str, port: int, data_dir: Path, log: Path, **env: str) -> subprocess.Popen:
    environment = {
        **os.environ, "PYTHONPATH": str(ROOT), "PORT": str(port), "HOST": "127.0.0.1", "DATA_DIR": str(data_dir),
        "SERVICE_KEY": KEY, "LOG_LEVEL": "warning", "BCRYPT_ROUNDS": "4", "RATE_LIMIT_MAX": "0", **env,
    }  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", name], cwd=ROOT, env=environment, stdout=out, stderr=out)


def wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not start: {log.read_text()[-2000:]}")


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


async def test_sigkill_during_placements_loses_no_answered_order(tmp_path):
    ports = {name: free_port() for name in ("orders", "products", "customer")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    dead = f"http://127.0.0.1:{free_port()}"
    links = {"PRODUCTS_SERVICE_URL": urls["products"], "CUSTOMER_SERVICE_URL": urls["customer"],
             "NOTIFICATIONS_SERVICE_URL": dead, "SELLERS_SERVICE_URL": dead, "MEDIA_SERVICE_URL": dead}  # fmt: skip
    orders_env = {**links, "RESERVATION_MINUTES": "0.05", "PENDING_GRACE_SECONDS": "0", "EXPIRY_TASK_SECONDS": "0.3",
                  "OUTBOX_POLL_SECONDS": "60"}  # fmt: skip
    logs = {name: tmp_path / f"{name}.log" for name in ports}
    peers = {
        "products": start("products", ports["products"], tmp_path / "products", logs["products"],
                          RESERVATION_CLEANUP_SECONDS="0.3", **links),
        "customer": start("customer", ports["customer"], tmp_path / "customer", logs["customer"], **links),
    }  # fmt: skip
    orders = start("orders", ports["orders"], tmp_path / "orders", logs["orders"], **orders_env)
    try:
        for name in ("products", "customer", "orders"):
            wait_healthy(urls[name], peers.get(name, orders), logs[name])
        settings = ServiceSettings(_env_file=None)
        seller_token, _ = issue_token(settings, subject="f" * 24, role="seller", email="s@example.com")
        async with httpx.AsyncClient(timeout=10) as http:
            product_ids = []
            for n in range(3):
                made = await http.post(
                    f"{urls['products']}/api/v1/products",
                    json={"name": f"Item {n}", "price": 5, "category": "things", "stock": 10_000},
                    headers={"Authorization": f"Bearer {seller_token}"},
                )
                assert made.status_code == 201, made.text
                product_ids.append(made.json()["data"]["id"])
            customers = []
            for n in range(8):
                body = {"firstName": "Kim", "lastName": "Lee", "email": f"k{n}@example.com", "password": "secret123"}
                registered = await http.post(f"{urls['customer']}/api/v1/customers/register", json=body)
                assert registered.status_code == 201, registered.text
                customers.append({"Authorization": f"Bearer {registered.json()['data']['token']}"})

            answered: dict[str, str] = {}
            stop = asyncio.Event()
            keys = itertools.count()

            async def shopper(headers: dict[str, str], n: int) -> None:
                base = f"{urls['orders']}/api/v1"
                while not stop.is_set():
                    try:
                        await http.post(
                            f"{base}/cart/add", json={"productId": product_ids[n % 3], "quantity": 1}, headers=headers
                        )
                        key = f"k-{next(keys)}"
                        placed = await http.post(
                            f"{base}/orders/place", json={"shippingAddress": ADDRESS},
                            headers={**headers, "Idempotency-Key": key},
                        )  # fmt: skip
                        if placed.status_code == 201:
                            answered[placed.json()["data"]["id"]] = key
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)

            workers = [asyncio.create_task(shopper(h, n)) for n, h in enumerate(customers)]
            for _round in range(2):  # two kills mid-traffic (each restart costs seconds of imports)
                await asyncio.sleep(1.0)
                kill(orders)
                await asyncio.sleep(0.2)
                orders = start("orders", ports["orders"], tmp_path / "orders", logs["orders"], **orders_env)
                await asyncio.to_thread(wait_healthy, urls["orders"], orders, logs["orders"])
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*workers)

            assert len(answered) >= 5, f"too few placements got through: {len(answered)}"
            for order_id in answered:
                found = await http.get(f"{urls['orders']}/api/v1/orders/{order_id}", headers=SVC)
                assert found.status_code == 200, (order_id, found.text)

            # Every reservation belongs to an order or expires: once the expiry ran, nothing stays reserved.
            deadline = time.monotonic() + 20
            while True:
                states = [
                    (await http.get(f"{urls['products']}/api/v1/products/{p}", headers=SVC)).json()["data"]
                    for p in product_ids
                ]
                pending = await http.get(
                    f"{urls['orders']}/api/v1/admin/orders", params={"status": "pending"}, headers=SVC
                )
                if all(s["reservedStock"] == 0 for s in states) and pending.json()["data"]["pagination"]["total"] == 0:
                    break
                assert time.monotonic() < deadline, (states, pending.json()["data"]["pagination"])
                await asyncio.sleep(0.3)
            for state in states:
                assert state["stock"] + state["soldStock"] == state["totalStock"] == 10_000
            failed = await http.get(f"{urls['orders']}/api/v1/admin/orders", params={"status": "failed"}, headers=SVC)
            assert failed.json()["data"]["pagination"]["total"] >= len(answered)
    finally:
        kill(orders)
        for process in peers.values():
            kill(process)
