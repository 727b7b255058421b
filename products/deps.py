"""Route dependencies of the products service (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from products.domain import Catalogue
from products.inventory import Inventory
from shared.auth import (
    SERVICE_KEY_HEADER,
    Principal,
    any_of,
    bearer_token,
    check_service_key,
    decode_token,
    require_role,
)
from shared.responses import Unauthorized


async def _catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue


async def _inventory(request: Request) -> Inventory:
    return request.app.state.inventory


CatalogueDomain = Annotated[Catalogue, Depends(_catalogue)]
InventoryDomain = Annotated[Inventory, Depends(_inventory)]


async def _optional_caller(request: Request) -> Principal | None:
    """Public endpoints: anonymous is fine, but credentials that are sent must be valid."""
    settings = request.app.state.settings
    if SERVICE_KEY_HEADER.lower() in request.headers:
        check_service_key(settings, request.headers.get(SERVICE_KEY_HEADER))
        return Principal(kind="service")
    if "authorization" not in request.headers:
        return None
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Invalid token")
    claims = decode_token(settings, token)
    return Principal(kind="user", role=claims.get("role"), user_id=claims["sub"], claims=claims)


OptionalCaller = Annotated[Principal | None, Depends(_optional_caller)]
"""None for anonymous callers; a service or a user when valid credentials were sent."""

CurrentSeller = Annotated[Principal, Depends(require_role("seller"))]
"""A seller's access token (403 ``Access denied`` for other roles)."""

SellerOrService = Annotated[Principal, Depends(any_of(service=True, roles=("seller",)))]
"""The service key (wins when present) or a seller's token; ownership is checked per product."""

ServiceOrAdmin = Annotated[Principal, Depends(any_of(service=True, roles=("admin",)))]
