"""Route dependencies of the customer service (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from customer.domain import Customers
from shared.auth import SERVICE_KEY_HEADER, BearerClaims, Principal, bearer_token, check_service_key, decode_token
from shared.responses import BadRequest, Forbidden, Unauthorized
from shared.store import Document
from shared.validation import object_id


async def _customers(request: Request) -> Customers:
    return request.app.state.customers


CustomersDomain = Annotated[Customers, Depends(_customers)]


async def _current_customer(claims: BearerClaims, customers: CustomersDomain) -> Document:
    return await customers.authenticate(claims=claims)


CurrentCustomer = Annotated[Document, Depends(_current_customer)]
"""The signed-in, active customer whose token version is current."""


async def _profile_reader(request: Request, customers: CustomersDomain) -> Principal:
    """Service key (wins when present), admin bearer (claims only) or the customer itself."""
    settings = request.app.state.settings
    if SERVICE_KEY_HEADER.lower() in request.headers:
        check_service_key(settings, request.headers.get(SERVICE_KEY_HEADER))
        return Principal(kind="service")
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Access token required")
    claims: dict[str, Any] = decode_token(settings, token)
    if claims.get("role") == "admin":
        return Principal(kind="user", role="admin", user_id=claims["sub"], claims=claims)
    if claims.get("role") != "customer":
        raise Forbidden("Access denied")
    customer = await customers.authenticate(claims=claims)
    return Principal(kind="user", role="customer", user_id=customer["_id"], claims=claims)


ProfileReader = Annotated[Principal, Depends(_profile_reader)]


async def _address_owner(request: Request, customers: CustomersDomain) -> str:
    """Whose address book: the service key's ``?customerId=`` (key wins) or the bearer's own."""
    settings = request.app.state.settings
    if SERVICE_KEY_HEADER.lower() in request.headers:
        check_service_key(settings, request.headers.get(SERVICE_KEY_HEADER))
        customer_id = request.query_params.get("customerId")
        if not customer_id:
            raise BadRequest("customerId is required")
        return object_id(customer_id)
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Access token required")
    customer = await customers.authenticate(claims=decode_token(settings, token))
    return customer["_id"]


AddressOwner = Annotated[str, Depends(_address_owner)]
