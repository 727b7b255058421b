"""Route dependencies of the products service (``Annotated`` aliases).

Credentials go through :func:`shared.auth.any_of` / :func:`shared.auth.require_role`; on top,
a seller token older than the token version the sellers service recorded here
(``seller_status.tokenVersion``) is refused with 401 ``Invalid token``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from products.domain import Catalogue
from products.inventory import Inventory
from products.schemas import ADMIN_STATUSES, SELLER_SORT_FIELDS, ListQuery, list_query, list_query_doc
from shared.app import app_state
from shared.auth import Principal, any_of, require_role
from shared.fields import PageRequest, page_query

CatalogueDomain = Annotated[Catalogue, Depends(app_state("catalogue"))]
InventoryDomain = Annotated[Inventory, Depends(app_state("inventory"))]


async def _current(catalogue: Catalogue, principal: Principal | None) -> Principal | None:
    """``principal``, unless it is a seller token older than the recorded token version."""
    if principal is not None and principal.role == "seller" and principal.user_id:
        await catalogue.check_token_version(seller_id=principal.user_id, version=principal.claims.get("ver"))
    return principal


_ANYONE = any_of(service=True, roles=("customer", "seller", "admin"), anonymous=True)
_SELLER_OR_SERVICE = any_of(service=True, roles=("seller",))


async def _optional_caller(
    catalogue: CatalogueDomain, principal: Annotated[Principal | None, Depends(_ANYONE)]
) -> Principal | None:
    return await _current(catalogue, principal)


async def _seller(
    catalogue: CatalogueDomain, principal: Annotated[Principal, Depends(require_role("seller"))]
) -> Principal:
    await _current(catalogue, principal)
    return principal


async def _seller_or_service(
    catalogue: CatalogueDomain, principal: Annotated[Principal, Depends(_SELLER_OR_SERVICE)]
) -> Principal:
    await _current(catalogue, principal)
    return principal


OptionalCaller = Annotated[Principal | None, Depends(_optional_caller)]
"""None for anonymous callers; a service or a user when valid credentials were sent."""

CurrentSeller = Annotated[Principal, Depends(_seller)]
"""A seller's current access token (403 ``Access denied`` for other roles)."""

SellerOrService = Annotated[Principal, Depends(_seller_or_service)]
"""The service key (wins when present) or a seller's current token; ownership is checked per product."""

ServiceOrAdmin = Annotated[Principal, Depends(any_of(service=True, roles=("admin",)))]

_public_list = list_query()
_seller_list = list_query(sort_fields=SELLER_SORT_FIELDS, default_status=None, with_seller=False)
_admin_list = list_query(sort_fields=SELLER_SORT_FIELDS, statuses=ADMIN_STATUSES, default_status="all")
PublicListQuery = Annotated[ListQuery, Depends(_public_list)]
SellerListQuery = Annotated[ListQuery, Depends(_seller_list)]
AdminListQuery = Annotated[ListQuery, Depends(_admin_list)]
PUBLIC_LIST_DOC = list_query_doc(_public_list)
"""``openapi_extra`` of the routes taking :data:`PublicListQuery` (their query parameters)."""
SELLER_LIST_DOC = list_query_doc(_seller_list)
ADMIN_LIST_DOC = list_query_doc(_admin_list)
Page10 = Annotated[PageRequest, Depends(page_query(default_limit=10, max_limit=100))]
Page20 = Annotated[PageRequest, Depends(page_query(default_limit=20, max_limit=100))]
