"""Route dependencies of the customer service (``Annotated`` aliases).

"A service key wins, else a bearer token of these roles" is :func:`shared.auth.any_of`;
the account checks (exists, active, token version current) are ``shared.account_routes``'.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from customer.domain import SORTABLE, Customers
from shared.account_routes import reader_of, signed_in
from shared.accounts import account_list_params
from shared.app import app_state
from shared.auth import Principal, any_of
from shared.responses import BadRequest
from shared.validation import object_id

CustomersDomain = Annotated[Customers, Depends(app_state("customers"))]

CurrentCustomer = signed_in(CustomersDomain)
"""The signed-in, active customer whose token version is current."""

ProfileReader = reader_of(CustomersDomain, role="customer")
"""Service key (wins when present), admin bearer (claims only) or the customer itself."""


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
