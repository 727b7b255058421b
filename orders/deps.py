"""Route dependencies of the orders service (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from orders.cart import Cart
from orders.domain import Caller, Orders
from shared.app import app_state
from shared.auth import (
    SERVICE_KEY_HEADER,
    Principal,
    any_of,
    bearer_token,
    check_service_key,
    decode_token,
    require_role,
)
from shared.responses import Forbidden, Unauthorized, ValidationFailed

OrdersDomain = Annotated[Orders, Depends(app_state("orders"))]
CartDomain = Annotated[Cart, Depends(app_state("cart"))]

CurrentCustomer = Annotated[Principal, Depends(require_role("customer"))]
"""A customer's access token (401 without one, 403 ``Access denied`` for other roles)."""

CurrentSeller = Annotated[Principal, Depends(require_role("seller"))]
"""A seller's access token."""

ServiceOrAdmin = Annotated[Principal, Depends(any_of(service=True, roles=("admin",)))]
"""The service key (wins when present) or an admin's token."""


async def _order_reader(request: Request) -> Caller:
    """Service key (wins when present) → staff; else a customer, seller or admin token."""
    settings = request.app.state.settings
    if SERVICE_KEY_HEADER.lower() in request.headers:
        check_service_key(settings, request.headers.get(SERVICE_KEY_HEADER))
        return Caller(kind="staff")
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Access token required")
    claims = decode_token(settings, token)
    role = claims.get("role")
    if role == "customer":
        return Caller(kind="customer", user_id=claims["sub"])
    if role == "seller":
        return Caller(kind="seller", user_id=claims["sub"])
    if role == "admin":
        return Caller(kind="staff", user_id=claims["sub"])

    raise Forbidden("Access denied")


OrderReader = Annotated[Caller, Depends(_order_reader)]
"""Who reads orders: customer (own), seller (seller view) or staff (service key, admin)."""


async def _idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1..255 visible ASCII characters; the same key from the same customer places one order",
        ),
    ] = None,
) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or any(not 0x21 <= ord(c) <= 0x7E for c in key):
        raise ValidationFailed.field("Idempotency-Key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key


IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]
