"""Route dependencies of the sellers service (``Annotated`` aliases).

"A service key wins, else a bearer token of these roles" is :func:`shared.auth.any_of`;
what is added here is the seller's own check (exists, active, token version current).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sellers.domain import SORTABLE, Sellers
from shared.accounts import account_list_params
from shared.auth import BearerClaims, Principal, any_of, require_role
from shared.store import Document


async def _sellers(request: Request) -> Sellers:
    return request.app.state.sellers


SellersDomain = Annotated[Sellers, Depends(_sellers)]


async def _current_seller(claims: BearerClaims, sellers: SellersDomain) -> Document:
    return await sellers.authenticate(claims=claims)


CurrentSeller = Annotated[Document, Depends(_current_seller)]
"""The signed-in, active seller whose token version is current."""


async def _profile_reader(
    caller: Annotated[Principal, Depends(any_of(roles=("admin", "seller")))], sellers: SellersDomain
) -> Principal:
    """Service key, admin bearer (claims only) or the seller itself (4.8)."""
    if caller.role == "seller":
        await sellers.authenticate(claims=caller.claims)
    return caller


ProfileReader = Annotated[Principal, Depends(_profile_reader)]

AdminOrService = Annotated[Principal, Depends(any_of(roles=("admin",)))]
"""Service key (wins when present) or an admin bearer checked by its claims only (4.10)."""

AdminBearer = Annotated[Principal, Depends(require_role("admin"))]
"""An access token with ``role: admin`` (claims only; admins live in the admin service)."""

SellerListQuery = Annotated[dict, Depends(account_list_params(sortable=SORTABLE))]
"""The admin list's filters (``page``, ``limit``, ``search``, ``status``, ``sort`` …)."""
