"""The cart rules (contract §4.1–4.5, §5 "Cart writes").

Every write reads the cart, builds the new item list and stores it with a compare-and-set
on ``version``; a lost race re-reads and tries again (3 tries, then 409). Products are read
through the products service's bulk endpoint, which returns purchasable products only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orders.repository import OrdersRepository
from orders.upstream import Products
from shared.responses import AppError, BadRequest, Conflict, NotFound
from shared.store import Document
from shared.timeutil import now_iso
from shared.validation import to_cents

MAX_ITEMS = 50
MAX_QUANTITY = 100
CAS_TRIES = 3

PRODUCT_NOT_FOUND = "Product not found"
ITEM_NOT_FOUND = "Item not found in cart"
CART_RACE = "Cart was modified concurrently, please retry"


def insufficient(available: int, requested: int) -> Conflict:
    return Conflict(f"Insufficient stock. Available: {available}, Requested: {requested}")


def product_image(product: Mapping[str, Any]) -> str | None:
    """The primary image's media id of a bulk product, else the first image's, else None."""
    if product.get("primaryImageId"):
        return product["primaryImageId"]
    images = product.get("images") or []
    for image in images:
        if isinstance(image, dict) and image.get("isPrimary") and image.get("media_id"):
            return image["media_id"]
    for image in images:
        if isinstance(image, dict) and image.get("media_id"):
            return image["media_id"]
    return None


def snapshot(product: Mapping[str, Any]) -> dict[str, Any]:
    """The product fields a cart item keeps, from a bulk record."""
    return {
        "sellerId": product.get("sellerId"),
        "productName": product.get("name"),
        "productImage": product_image(product),
        "priceCents": to_cents(product.get("price", 0)),
        "availableStock": int(product.get("stock", 0)),
    }


class Cart:
    def __init__(self, *, repo: OrdersRepository, products: Products) -> None:
        self.repo = repo
        self.products = products

    async def _write(
        self, customer_id: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    ) -> Document:
        """Apply ``change`` to the current items and compare-and-set the result."""
        for _ in range(CAS_TRIES):
            cart = await self.repo.get_or_create_cart(customer_id)
            items = change([dict(i) for i in cart.get("items") or []])
            written = await self.repo.replace_cart_items(cart, items)
            if written is not None:
                return written
        raise Conflict(CART_RACE)

    async def _product(self, product_id: str) -> dict[str, Any]:
        found = await self.products.bulk([product_id])
        product = found.get(product_id)
        if product is None:
            raise NotFound(PRODUCT_NOT_FOUND)
        return product

    async def add(self, *, customer_id: str, product_id: str, quantity: int) -> Document:
        product = await self._product(product_id)
        fresh = snapshot(product)

        def change(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            now = now_iso()
            current = next((i for i in items if i["productId"] == product_id), None)
            wanted = quantity + (int(current["quantity"]) if current else 0)
            if wanted > MAX_QUANTITY:
                raise BadRequest("Quantity per item cannot exceed 100")
            if current is None and len(items) >= MAX_ITEMS:
                raise BadRequest("Cart cannot contain more than 50 items")
            if fresh["availableStock"] < wanted:
                raise insufficient(fresh["availableStock"], wanted)
            if current is None:
                items.append({"productId": product_id, **fresh, "quantity": wanted, "addedAt": now, "updatedAt": now})
            else:
                current.update(fresh, quantity=wanted, updatedAt=now)
            return items

        return await self._write(customer_id, change)

    async def update(self, *, customer_id: str, product_id: str, quantity: int) -> Document:
        cart = await self.repo.get_cart(customer_id)
        if cart is None or not any(i["productId"] == product_id for i in cart.get("items") or []):
            raise NotFound(ITEM_NOT_FOUND)
        fresh = snapshot(await self._product(product_id)) if quantity > 0 else None

        def change(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            current = next((i for i in items if i["productId"] == product_id), None)
            if current is None:
                raise NotFound(ITEM_NOT_FOUND)
            if fresh is None:
                return [i for i in items if i["productId"] != product_id]
            if fresh["availableStock"] < quantity:
                raise insufficient(fresh["availableStock"], quantity)
            current.update(fresh, quantity=quantity, updatedAt=now_iso())
            return items

        return await self._write(customer_id, change)

    async def remove(self, *, customer_id: str, product_id: str) -> None:
        await self.repo.remove_cart_products(customer_id, [product_id])

    async def clear(self, *, customer_id: str) -> None:
        await self.repo.empty_cart(customer_id)

    async def current(self, *, customer_id: str) -> tuple[Document, bool]:
        """The cart refreshed from products (saved), or the stored snapshot and False when
        products cannot answer. An empty cart is answered without a call (refreshed)."""
        for _ in range(CAS_TRIES):
            cart = await self.repo.get_or_create_cart(customer_id)
            items = cart.get("items") or []
            if not items:
                return cart, True
            try:
                found = await self.products.bulk([i["productId"] for i in items])
            except AppError:
                return cart, False
            refreshed = [{**i, **snapshot(found[i["productId"]])} for i in items if i["productId"] in found]
            if refreshed == items:
                return cart, True
            written = await self.repo.replace_cart_items(cart, refreshed)
            if written is not None:
                return written, True
        return await self.repo.get_or_create_cart(customer_id), False
