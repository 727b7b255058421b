"""Route dependencies of the sellers service (``Annotated`` aliases).

"A service key wins, else a bearer token of these roles" is :func:`shared.auth.any_of`;
the account checks (exists, active, token version current) are ``shared.account_routes``'.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from sellers.domain import SORTABLE, Sellers
from shared.account_routes import reader_of, signed_in
from shared.accounts import account_list_params
from shared.app import app_state
from shared.auth import Principal, any_of, require_role

SellersDomain = Annotated[Sellers, Depends(app_state("sellers"))]

CurrentSeller = signed_in(SellersDomain)
"""The signed-in, active seller whose token version is current."""

ProfileReader = reader_of(SellersDomain, role="seller")
"""Service key, admin bearer (claims only) or the seller itself (4.8)."""

AdminOrService = Annotated[Principal, Depends(any_of(roles=("admin",)))]
"""Service key (wins when present) or an admin bearer checked by its claims only (4.10)."""

AdminBearer = Annotated[Principal, Depends(require_role("admin"))]
"""An access token with ``role: admin`` (claims only; admins live in the admin service)."""

SellerListQuery = Annotated[dict, Depends(account_list_params(sortable=SORTABLE))]
"""The admin list's filters (``page``, ``limit``, ``search``, ``status``, ``sort`` …)."""
