"""Soak: the eight real processes driven through the gateway with a shopper mix, then the books.

    .venv/bin/python bench/soak.py [--minutes 10] [--shoppers 16]

Mix: about 80 % browse (list pages, search, product detail), 15 % cart, 5 % checkout, plus
one seller worker updating stock and one admin worker moving orders through their states
(confirm, process, ship, deliver, cancel). Afterwards it checks the books:

* for every product, sold + reserved + available = units ever stocked, and sold/reserved
  equal what the orders say (confirmed-or-later quantities, pending quantities);
* every order answered 201 exists, once;
* every email the run owes was sent once (notification history by template and recipient).

Prints requests/s, p50/p99 per kind, the count of 5xx (goal 0), and each service's RSS after
warm-up and at the end (goal: growth under 10 %).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.system.conftest import KEY, SERVICES, running_stack  # noqa: E402

PASSWORD = "secret123"
ADDRESS = {"addressLine1": "1 Soak St", "city": "Springfield", "state": "IL", "country": "USA", "postalCode": "62701"}
WORDS = ("lamp", "chair", "kettle", "fan", "desk", "shelf", "mug", "rug")
NEXT_STATUS = {"pending": "confirmed", "confirmed": "processing", "processing": "shipped", "shipped": "delivered"}


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.server_errors: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()

    async def call(self, kind: str, request) -> httpx.Response:
        started = time.perf_counter()
        response = await request
        self.latency[kind].append((time.perf_counter() - started) * 1000)
        self.statuses[(kind, response.status_code)] += 1
        if response.status_code >= 500:
            self.server_errors[kind] += 1
        return response


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def setup(gw: httpx.AsyncClient, sellers: int, products: int, shoppers: int) -> dict[str, Any]:
    seller_tokens, product_ids, customer_tokens = [], [], []
    for n in range(sellers):
        body = {
            "firstName": "Soak", "lastName": f"Seller{n}", "email": f"soak.seller{n}@example.com",
            "password": PASSWORD, "confirmPassword": PASSWORD, "phone": "1234567890",
            "businessName": f"Soak Shop {n}", "businessType": "individual",
            "address": {"street": "1 Main", "city": "Austin", "state": "TX", "country": "USA", "postalCode": "73301"},
        }  # fmt: skip
        signup = await gw.post("/api/sellers/sellers/signup", json=body)
        signup.raise_for_status()
        token = signup.json()["data"]["token"]
        seller_tokens.append(token)
        for p in range(products):
            word = WORDS[(n * products + p) % len(WORDS)]
            product = {"name": f"{word.title()} {n}-{p}", "price": 5 + p, "category": "home", "stock": 40,
                       "description": f"A {word} for the soak test", "tags": [word]}  # fmt: skip
            created = await gw.post("/api/products/products", json=product, headers=bearer(token))
            created.raise_for_status()
            product_ids.append((created.json()["data"]["id"], token))
    for n in range(shoppers):
        body = {"firstName": "Soak", "lastName": f"Shopper{n}", "email": f"soak.shopper{n}@example.com",
                "password": PASSWORD}  # fmt: skip
        registered = await gw.post("/api/customer/customers/register", json=body)
        registered.raise_for_status()
        customer_tokens.append(registered.json()["data"]["token"])
    admin = await gw.post("/api/admin/login", json={"email": "admin@example.com", "password": "admin123"})
    admin.raise_for_status()
    return {
        "sellers": seller_tokens,
        "products": product_ids,
        "customers": customer_tokens,
        "admin": admin.json()["data"]["token"],
    }


async def shopper(gw, rec: Recorder, token: str, products: list, deadline: float, placed: list, n: int) -> None:
    rng = random.Random(n)
    auth = bearer(token)
    orders = 0
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.35:
            await rec.call("browse", gw.get("/api/products/products", params={"page": rng.randint(1, 3), "limit": 10}))
        elif roll < 0.55:
            await rec.call("search", gw.get("/api/products/products", params={"search": rng.choice(WORDS)}))
        elif roll < 0.80:
            await rec.call("detail", gw.get(f"/api/products/products/{rng.choice(products)[0]}"))
        elif roll < 0.95:
            if rng.random() < 0.5:
                item = {"productId": rng.choice(products)[0], "quantity": rng.randint(1, 2)}
                await rec.call("cart", gw.post("/api/orders/cart/add", json=item, headers=auth))
            else:
                await rec.call("cart", gw.get("/api/orders/cart", headers=auth))
        else:
            orders += 1
            headers = {**auth, "Idempotency-Key": f"soak-{n}-{orders}"}
            answer = await rec.call(
                "checkout", gw.post("/api/orders/orders/place", json={"shippingAddress": ADDRESS}, headers=headers)
            )
            if answer.status_code == 201:
                placed.append(answer.json()["data"]["id"])
            elif answer.status_code in (400, 409):
                await gw.delete("/api/orders/cart/clear", headers=auth)  # empty or short: start over


async def seller_worker(gw, rec: Recorder, products: list, deadline: float) -> None:
    rng = random.Random(7)
    while time.monotonic() < deadline:
        product_id, token = rng.choice(products)
        body = {"stock": rng.randint(5, 60), "notes": "soak restock"}
        await rec.call("stock", gw.put(f"/api/products/products/{product_id}/stock", json=body, headers=bearer(token)))
        await asyncio.sleep(0.2)


async def admin_worker(gw, rec: Recorder, token: str, placed: list, deadline: float, moves: Counter) -> None:
    rng = random.Random(11)
    auth = bearer(token)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        if not placed:
            continue
        order_id = rng.choice(placed)
        order = await rec.call("admin", gw.get(f"/api/admin/proxy/orders/api/v1/orders/{order_id}", headers=auth))
        if order.status_code != 200:
            continue
        current = order.json()["data"]["status"]
        cancel = current in ("pending", "confirmed") and rng.random() < 0.15
        target = "cancelled" if cancel else NEXT_STATUS.get(current)
        if target is None:
            continue
        path = f"/api/admin/proxy/orders/api/v1/admin/orders/{order_id}/status"
        answer = await rec.call("admin", gw.put(path, json={"status": target}, headers=auth))
        if answer.status_code == 200:
            moves[target] += 1


async def all_pages(client: httpx.AsyncClient, url: str, key: str, params: dict | None = None) -> list[dict]:
    rows, page = [], 1
    while True:
        query = {**(params or {}), "page": page, "limit": 100}
        answer = await client.get(url, params=query, headers={"X-Service-Key": KEY})
        answer.raise_for_status()
        data = answer.json()["data"]
        batch = data[key]
        rows.extend(batch)
        if page >= data["pagination"]["totalPages"]:
            return rows
        page += 1


async def check_books(stack, placed: list[str], moves: Counter, setup_data: dict) -> list[str]:
    problems: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        orders = await all_pages(client, stack.urls["orders"] + "/api/v1/admin/orders", "orders")
        products_url = stack.urls["products"] + "/api/v1/products/admin"
        products = await all_pages(client, products_url, "products", {"status": "all"})
        ids = [o["id"] for o in orders]
        if len(ids) != len(set(ids)):
            problems.append("an order is stored twice")
        if sorted(ids) != sorted(set(placed)):
            problems.append(f"orders answered 201: {len(set(placed))}, stored: {len(ids)}")
        sold, reserved = Counter(), Counter()
        for order in orders:
            for item in order["items"]:
                if order["status"] in ("confirmed", "processing", "shipped", "delivered"):
                    sold[item["productId"]] += item["quantity"]
                elif order["status"] == "pending":
                    reserved[item["productId"]] += item["quantity"]
        for product in products:
            pid = product["id"]
            if product["soldStock"] + product["reservedStock"] + product["stock"] != product["totalStock"]:
                problems.append(f"{pid}: sold + reserved + stock != totalStock")
            if product["soldStock"] != sold[pid] or product["reservedStock"] != reserved[pid]:
                problems.append(
                    f"{pid}: sold {product['soldStock']} (orders say {sold[pid]}), "
                    f"reserved {product['reservedStock']} (orders say {reserved[pid]})"
                )
        history = await all_pages(client, stack.urls["notifications"] + "/api/v1/history", "history")
        sent = Counter(row["template_code"] for row in history)
        once_each = ("welcome_customer", "email_verification", "welcome_seller")
        per_recipient = Counter(
            (row["template_code"], row["recipient_email"]) for row in history if row["template_code"] in once_each
        )
        owed = {
            "welcome_customer": len(setup_data["customers"]),
            "email_verification": len(setup_data["customers"]),
            "welcome_seller": len(setup_data["sellers"]),
            "order_confirmation": len(orders),
            "new_order_seller": sum(len(set(o["sellers"])) for o in orders),
            "order_status_update": sum(moves.values()),
        }
        for template, count in owed.items():
            if sent[template] != count:
                problems.append(f"{template}: owed {count}, sent {sent[template]}")
        doubled = [key for key, n in per_recipient.items() if n > 1]
        if doubled:
            problems.append(f"{len(doubled)} emails sent twice, e.g. {doubled[0]}")
    return problems


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def soak(args: argparse.Namespace) -> int:
    import tempfile

    if not {"orders", "admin"} <= set(SERVICES):
        print("the soak needs the orders and admin services")
        return 1
    with running_stack(Path(tempfile.mkdtemp(prefix="soak-")), env={"BCRYPT_ROUNDS": "10"}) as stack:
        limits = httpx.Limits(max_connections=args.shoppers + 8)
        async with httpx.AsyncClient(base_url=stack.gateway, timeout=30, limits=limits) as gw:
            data = await setup(gw, sellers=3, products=8, shoppers=args.shoppers)
            rec, placed, moves = Recorder(), [], Counter()
            started = time.monotonic()
            deadline = started + args.minutes * 60
            warm = min(30.0, args.minutes * 60 / 4)

            async def sample_warm() -> dict[str, float]:
                await asyncio.sleep(warm)
                return {name: rss_mb(p.pid) for name, p in stack.processes.items()}

            warm_task = asyncio.create_task(sample_warm())
            await asyncio.gather(
                *(
                    shopper(gw, rec, token, data["products"], deadline, placed, n)
                    for n, token in enumerate(data["customers"])
                ),
                seller_worker(gw, rec, data["products"], deadline),
                admin_worker(gw, rec, data["admin"], placed, deadline, moves),
            )
            elapsed = time.monotonic() - started
            rss_warm = await warm_task
            rss_end = {name: rss_mb(p.pid) for name, p in stack.processes.items()}
        await asyncio.sleep(3)  # outbox drains (poll 0.3 s) before the books are read
        problems = await check_books(stack, placed, moves, data)

    total = sum(len(v) for v in rec.latency.values())
    print(f"soak: {args.minutes} min, {args.shoppers} shoppers, {total} requests, {total / elapsed:.0f} req/s")
    print(f"{'kind':<10}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}")
    for kind, values in sorted(rec.latency.items()):
        print(f"{kind:<10}{len(values):>8}{statistics.median(values):>10.1f}{percentile(values, 0.99):>10.1f}")
    print(f"5xx: {sum(rec.server_errors.values())} {dict(rec.server_errors) or ''}")
    print(f"orders placed: {len(placed)}, status moves: {dict(moves)}")
    print(f"{'service':<15}{'RSS warm':>10}{'RSS end':>10}{'growth':>9}")
    for name in rss_end:
        growth = (rss_end[name] - rss_warm[name]) / rss_warm[name] * 100 if rss_warm[name] else 0.0
        print(f"{name:<15}{rss_warm[name]:>8.1f}MB{rss_end[name]:>8.1f}MB{growth:>8.1f}%")
    print("books: balanced" if not problems else "books: NOT balanced")
    for problem in problems[:20]:
        print(f"  - {problem}")
    return 0 if not problems and not rec.server_errors else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--shoppers", type=int, default=16)
    return asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
