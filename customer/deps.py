"""Route dependencies of the customer service (``Annotated`` aliases).

"A service key wins, else a bearer token of these roles" is :func:`shared.auth.any_of`;
what is added here is the customer's own check (exists, active, token version current).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from customer.domain import SORTABLE, Customers
from shared.accounts import account_list_params
from shared.auth import BearerClaims, Principal, any_of
from shared.responses import BadRequest
from shared.store import Document
from shared.validation import object_id


async def _customers(request: Request) -> Customers:
    return request.app.state.customers


CustomersDomain = Annotated[Customers, Depends(_customers)]


async def _current_customer(claims: BearerClaims, customers: CustomersDomain) -> Document:
    return await customers.authenticate(claims=claims)


CurrentCustomer = Annotated[Document, Depends(_current_customer)]
"""The signed-in, active customer whose token version is current."""


async def _profile_reader(
    caller: Annotated[Principal, Depends(any_of(roles=("admin", "customer")))], customers: CustomersDomain
) -> Principal:
    """Service key (wins when present), admin bearer (claims only) or the customer itself."""
    if caller.role == "customer":
        await customers.authenticate(claims=caller.claims)
    return caller


ProfileReader = Annotated[Principal, Depends(_profile_reader)]


async def _address_owner(
    caller: Annotated[Principal, Depends(any_of(roles=("customer",)))],
    customers: CustomersDomain,
    customerId: Annotated[str | None, Query(description="Whose address book (service callers only)")] = None,
) -> str:
    """Whose address book: the service key's ``?customerId=`` (key wins) or the bearer's own."""
    if caller.is_service:
        if not customerId:
            raise BadRequest("customerId is required")
        return object_id(customerId)
    customer = await customers.authenticate(claims=caller.claims)
    return customer["_id"]


AddressOwner = Annotated[str, Depends(_address_owner)]

CustomerListQuery = Annotated[dict, Depends(account_list_params(sortable=SORTABLE))]
"""The admin list's filters (``page``, ``limit``, ``search``, ``status``, ``sort`` …)."""
