"""The calls orders makes to products, customer and sellers, with the contract's error mapping.

Refused, breaker open or a 5xx → 503 ``"<Name> service unavailable"``; a timeout → 504
``"<Name> service timed out"`` (contract §6). A 4xx the caller must interpret is raised as
:class:`shared.clients.UpstreamStatus`. Nothing here knows about orders or carts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.clients import ServiceClients, UpstreamStatus
from shared.responses import GatewayTimeout, ServiceUnavailable, UpstreamError

__all__ = ["Products", "Customers", "Sellers", "UpstreamStatus"]


def _unavailable(name: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"{name} service unavailable", service=name.lower())


def _timed_out(name: str) -> GatewayTimeout:
    return GatewayTimeout(f"{name} service timed out", service=name.lower())


async def _call(
    clients: ServiceClients,
    service: str,
    name: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    timeout: float,
) -> Any:
    """``data`` of a 2xx envelope; 4xx → :class:`UpstreamStatus`; failures as the contract maps them."""
    try:
        response = await clients.get(service).request(method, path, json=json, timeout=timeout)
    except GatewayTimeout:
        raise _timed_out(name) from None
    except UpstreamError:
        raise _unavailable(name) from None
    if response.status_code == 504:
        raise _timed_out(name)
    if response.status_code >= 500:
        raise _unavailable(name)
    try:
        body = response.json()
    except ValueError:
        raise _unavailable(name) from None
    if response.status_code >= 400:
        raise UpstreamStatus(service, response.status_code, body)
    if not isinstance(body, dict):
        raise _unavailable(name)
    return body.get("data")


@dataclass(frozen=True, slots=True)
class Products:
    """The products service: catalogue reads and the reservation protocol."""

    clients: ServiceClients
    timeout: float
    inventory_timeout: float

    async def bulk(self, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Purchasable products by id (missing ids are not purchasable)."""
        if not product_ids:
            return {}
        data = await _call(
            self.clients, "products", "Products", "POST", "/api/v1/service/products/bulk",
            json={"productIds": list(product_ids)}, timeout=self.timeout,
        )  # fmt: skip
        if not isinstance(data, list):
            raise _unavailable("Products")
        return {p["id"]: p for p in data if isinstance(p, dict) and isinstance(p.get("id"), str)}

    async def reserve(
        self, *, order_id: str, customer_id: str | None, items: Sequence[Mapping[str, Any]], minutes: float
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"orderId": order_id, "items": list(items), "expirationMinutes": minutes}
        if customer_id:
            body["customerId"] = customer_id
        return await _call(
            self.clients, "products", "Products", "POST", "/api/v1/service/inventory/reserve",
            json=body, timeout=self.inventory_timeout,
        )  # fmt: skip

    async def confirm(self, *, order_id: str) -> dict[str, Any]:
        return await _call(
            self.clients, "products", "Products", "POST", "/api/v1/service/inventory/confirm",
            json={"orderId": order_id}, timeout=self.inventory_timeout,
        )  # fmt: skip

    async def release(self, *, order_id: str, reason: str) -> dict[str, Any]:
        return await _call(
            self.clients, "products", "Products", "POST", "/api/v1/service/inventory/release",
            json={"orderId": order_id, "reason": reason}, timeout=self.inventory_timeout,
        )  # fmt: skip

    async def check(self, *, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return await _call(
            self.clients, "products", "Products", "POST", "/api/v1/service/inventory/check-availability",
            json={"items": list(items)}, timeout=self.timeout,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Customers:
    """The customer service: verification and the address book."""

    clients: ServiceClients
    timeout: float

    async def verify(self, customer_id: str) -> dict[str, Any]:
        data = await _call(
            self.clients, "customer", "Customer", "POST", "/api/v1/customers/service/verify",
            json={"customerId": customer_id}, timeout=self.timeout,
        )  # fmt: skip
        return data if isinstance(data, dict) else {}

    async def address(self, customer_id: str, address_id: str) -> dict[str, Any] | None:
        """The address view, or None when the customer service says 404."""
        try:
            data = await _call(
                self.clients, "customer", "Customer", "GET",
                f"/api/v1/customers/service/{customer_id}/addresses/{address_id}", timeout=self.timeout,
            )  # fmt: skip
        except UpstreamStatus as exc:
            if exc.status == 404:
                return None
            raise _unavailable("Customer") from None
        return data if isinstance(data, dict) else None


@dataclass(frozen=True, slots=True)
class Sellers:
    """The sellers service: contact details for the seller emails."""

    clients: ServiceClients
    timeout: float

    async def contact(self, seller_id: str) -> dict[str, Any] | None:
        """The active seller's bulk record, or None when unknown or inactive."""
        data = await _call(
            self.clients, "sellers", "Sellers", "POST", "/api/v1/sellers/service/bulk",
            json={"sellerIds": [seller_id]}, timeout=self.timeout,
        )  # fmt: skip
        if not isinstance(data, list):
            raise _unavailable("Sellers")
        for row in data:
            if isinstance(row, dict) and seller_id in (row.get("id"), row.get("_id")):
                return row
        return None
