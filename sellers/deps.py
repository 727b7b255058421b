"""Route dependencies of the sellers service (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from sellers.domain import Sellers
from shared.auth import (
    SERVICE_KEY_HEADER,
    BearerClaims,
    Principal,
    bearer_token,
    check_service_key,
    decode_token,
    require_role,
)
from shared.responses import Forbidden, Unauthorized
from shared.store import Document


async def _sellers(request: Request) -> Sellers:
    return request.app.state.sellers


SellersDomain = Annotated[Sellers, Depends(_sellers)]


async def _current_seller(claims: BearerClaims, sellers: SellersDomain) -> Document:
    return await sellers.authenticate(claims=claims)


CurrentSeller = Annotated[Document, Depends(_current_seller)]
"""The signed-in, active seller whose token version is current."""


def _service_or_bearer(request: Request) -> Principal | dict[str, Any]:
    """A service principal when ``X-Service-Key`` is present (it wins), else the bearer claims."""
    settings = request.app.state.settings
    if SERVICE_KEY_HEADER.lower() in request.headers:
        check_service_key(settings, request.headers.get(SERVICE_KEY_HEADER))
        return Principal(kind="service")
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Access token required")
    return decode_token(settings, token)


async def _profile_reader(request: Request, sellers: SellersDomain) -> Principal:
    """Service key, admin bearer (claims only) or the seller itself (4.8)."""
    caller = _service_or_bearer(request)
    if isinstance(caller, Principal):
        return caller
    if caller.get("role") == "admin":
        return Principal(kind="user", role="admin", user_id=caller["sub"], claims=caller)
    if caller.get("role") != "seller":
        raise Forbidden("Access denied")
    seller = await sellers.authenticate(claims=caller)
    return Principal(kind="user", role="seller", user_id=seller["_id"], claims=caller)


ProfileReader = Annotated[Principal, Depends(_profile_reader)]


async def _admin_or_service(request: Request) -> Principal:
    """Service key (wins when present) or an admin bearer checked by its claims only (4.10)."""
    caller = _service_or_bearer(request)
    if isinstance(caller, Principal):
        return caller
    if caller.get("role") != "admin":
        raise Forbidden("Access denied")
    return Principal(kind="user", role="admin", user_id=caller["sub"], claims=caller)


AdminOrService = Annotated[Principal, Depends(_admin_or_service)]

AdminBearer = Annotated[Principal, Depends(require_role("admin"))]
"""An access token with ``role: admin`` (claims only; admins live in the admin service)."""
