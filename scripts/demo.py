"""Fill a running system with demo data through the gateway's public API.

    scripts/demo-data [--gateway URL] [--customers N] [--sellers N] [--products N]

Customers, sellers, products with Pillow-made images, and orders in several states
(pending, confirmed, processing, shipped, delivered, cancelled), with a progress bar.
Idempotent: accounts that exist are logged in, products are found by name, orders are placed
with a fixed ``Idempotency-Key`` and only moved forward, so a second run doubles nothing.
Status changes go through the admin service's audited proxy (``ADMIN_EMAIL``/``ADMIN_PASSWORD``,
by default the development admin). Prints the logins it made.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image, ImageDraw
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

PASSWORD = "demo-pass-123"
CATEGORIES = ("electronics", "home", "books", "sports")
PALETTE = ((231, 76, 60), (46, 204, 113), (52, 152, 219), (241, 196, 15), (155, 89, 182), (26, 188, 156))
# The order each demo customer ends up with, by index; each is reached by legal steps only.
TARGETS = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled")
FORWARD = ("pending", "confirmed", "processing", "shipped", "delivered")


class DemoError(RuntimeError):
    pass


@dataclass
class Account:
    email: str
    token: str
    user_id: str
    kind: str
    products: list[dict[str, Any]] = field(default_factory=list)


def check(response: httpx.Response, *expected: int) -> dict[str, Any]:
    if response.status_code not in expected:
        request = response.request
        raise DemoError(f"{request.method} {request.url.path} → {response.status_code}: {response.text[:300]}")
    return response.json() if response.content else {}


def product_image(index: int, name: str) -> bytes:
    color = PALETTE[index % len(PALETTE)]
    image = Image.new("RGB", (640, 480), color)
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 600, 440), outline=(255, 255, 255), width=8)
    draw.text((80, 220), name, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


async def customer(gw: httpx.AsyncClient, index: int) -> Account:
    email = f"demo.customer{index}@example.com"
    body = {"firstName": "Demo", "lastName": f"Customer{index}", "email": email, "password": PASSWORD}
    registered = await gw.post("/api/customer/customers/register", json=body)
    if registered.status_code == 409:
        registered = await gw.post("/api/customer/customers/login", json={"email": email, "password": PASSWORD})
    data = check(registered, 200, 201)["data"]
    return Account(email, data["token"], data["customer"]["id"], "customer")


async def seller(gw: httpx.AsyncClient, index: int) -> Account:
    email = f"demo.seller{index}@example.com"
    body = {
        "firstName": "Demo", "lastName": f"Seller{index}", "email": email, "password": PASSWORD,
        "confirmPassword": PASSWORD, "phone": f"555000{index:04d}", "businessName": f"Demo Shop {index}",
        "businessType": "individual",
        "address": {"street": f"{index} Market St", "city": "Austin", "state": "TX", "country": "USA",
                    "postalCode": "73301"},
    }  # fmt: skip
    signed = await gw.post("/api/sellers/sellers/signup", json=body)
    if signed.status_code == 409:
        signed = await gw.post("/api/sellers/sellers/login", json={"email": email, "password": PASSWORD})
    data = check(signed, 200, 201)["data"]
    return Account(email, data["token"], data["seller"]["id"], "seller")


async def products_of(gw: httpx.AsyncClient, account: Account, count: int, seller_index: int) -> None:
    listed = check(
        await gw.get(f"/api/products/products/seller/{account.user_id}", params={"limit": 100}, headers=auth(account)),
        200,
    )["data"]
    existing = {p["name"]: p for p in listed["products"]}
    for index in range(count):
        name = f"Demo {CATEGORIES[index % len(CATEGORIES)].title()} {seller_index}-{index}"
        if name in existing:
            account.products.append(existing[name])
            continue
        upload = await gw.post(
            "/api/media/media/upload",
            files={"file": (f"demo-{seller_index}-{index}.jpg", product_image(index, name), "image/jpeg")},
            data={"type": "product"},
            headers=auth(account),
        )
        media_id = check(upload, 201)["data"]["id"]
        product = {
            "name": name,
            "description": f"A demo product from Demo Shop {seller_index}.",
            "price": round(9.99 + 5 * index + seller_index, 2),
            "category": CATEGORIES[index % len(CATEGORIES)],
            "stock": 50,
            "images": [{"media_id": media_id}],
            "tags": ["demo"],
        }
        created = check(await gw.post("/api/products/products", json=product, headers=auth(account)), 201)
        account.products.append(created["data"])


ADDRESS = {"addressLine1": "1 Demo Road", "city": "Springfield", "state": "IL", "country": "USA", "postalCode": "62701"}


async def order_for(gw: httpx.AsyncClient, shopper: Account, index: int, catalogue: list[dict[str, Any]]) -> dict:
    """The shopper's demo order (placed once, whatever the number of runs)."""
    key = {"Idempotency-Key": f"demo-order-{shopper.email}", **auth(shopper)}
    body = {"shippingAddress": ADDRESS, "paymentMethod": "cod", "notes": "Demo order"}
    placed = await gw.post("/api/orders/orders/place", json=body, headers=key)
    if placed.status_code == 400 and "Cart is empty" in placed.text:
        await gw.delete("/api/orders/cart/clear", headers=auth(shopper))
        for offset in range(2):
            item = catalogue[(index + offset * 3) % len(catalogue)]
            added = await gw.post(
                "/api/orders/cart/add", json={"productId": item["id"], "quantity": 1 + offset}, headers=auth(shopper)
            )
            check(added, 200)
        placed = await gw.post("/api/orders/orders/place", json=body, headers=key)
    return check(placed, 201)["data"]


async def move_to(gw: httpx.AsyncClient, admin_token: str, order: dict, target: str) -> str:
    """Move ``order`` forward to ``target`` with legal steps; a second run finds it there."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    current = check(await gw.get(f"/api/admin/proxy/orders/api/v1/orders/{order['id']}", headers=headers), 200)[
        "data"
    ]["status"]
    if current == target or current in ("cancelled", "failed", "delivered"):
        return current
    if target == "cancelled":
        steps = ["cancelled"]
    else:
        steps = list(FORWARD[FORWARD.index(current) + 1 : FORWARD.index(target) + 1])
    for status in steps:
        path = f"/api/admin/proxy/orders/api/v1/admin/orders/{order['id']}/status"
        check(await gw.put(path, json={"status": status, "notes": "Demo data"}, headers=headers), 200)
        current = status
    return current


async def run(args: argparse.Namespace, console: Console) -> int:
    async with httpx.AsyncClient(base_url=args.gateway, timeout=30) as gw:
        try:
            check(await gw.get("/health"), 200)
        except (httpx.TransportError, DemoError) as exc:
            console.print(f"[red]The gateway at {args.gateway} does not answer: {exc}[/red] (scripts/start)")
            return 1
        credentials = {"email": args.admin_email, "password": args.admin_password}
        admin_login = await gw.post("/api/admin/login", json=credentials)
        admin_token = check(admin_login, 200)["data"]["token"]
        total = args.sellers * (1 + args.products) + args.customers * 2
        with Progress(console=console) as progress:
            task = progress.add_task("demo data", total=total)
            sellers = []
            for index in range(args.sellers):
                account = await seller(gw, index)
                progress.advance(task)
                await products_of(gw, account, args.products, index)
                progress.advance(task, args.products)
                sellers.append(account)
            catalogue = [p for s in sellers for p in s.products]
            customers, states = [], []
            for index in range(args.customers):
                shopper = await customer(gw, index)
                progress.advance(task)
                order = await order_for(gw, shopper, index, catalogue)
                states.append(await move_to(gw, admin_token, order, TARGETS[index % len(TARGETS)]))
                progress.advance(task)
                customers.append(shopper)
    table = Table(title="Demo logins (password for customers and sellers: " + PASSWORD + ")")
    table.add_column("role")
    table.add_column("email")
    table.add_column("detail")
    table.add_row("admin", args.admin_email, "password from ADMIN_PASSWORD")
    for account in sellers:
        table.add_row("seller", account.email, f"{len(account.products)} products")
    for account, state in zip(customers, states, strict=True):
        table.add_row("customer", account.email, f"one order, {state}")
    console.print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--customers", type=int, default=6)
    parser.add_argument("--sellers", type=int, default=2)
    parser.add_argument("--products", type=int, default=4, help="products per seller")
    parser.add_argument("--admin-email", default=os.environ.get("ADMIN_EMAIL", "admin@example.com"))
    parser.add_argument("--admin-password", default=os.environ.get("ADMIN_PASSWORD", "admin123"))
    args = parser.parse_args(argv)
    console = Console()
    try:
        return asyncio.run(run(args, console))
    except DemoError as exc:
        console.print(f"[red]demo data stopped: {exc}[/red]")
        return 1


if __name__ == "__main__":
    sys.exit(main())
