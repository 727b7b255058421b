"""HTTP routes of the customer service: parse, call the domain, wrap the answer.

Every route declares what it answers (``response_model``) and every status it can answer
(``responses``); the answers themselves go out through ``ok()`` unchanged.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from customer.deps import AddressOwner, CurrentCustomer, CustomerListQuery, CustomersDomain, ProfileReader
from customer.schemas import (
    AddressIn,
    AddressPublic,
    AdminCustomerPublic,
    AdminStatusIn,
    CustomerAuthPublic,
    CustomerBasicPublic,
    CustomerIdIn,
    CustomerIdsIn,
    CustomerListPublic,
    CustomerPublic,
    CustomerVerifyPublic,
    DeactivateIn,
    EmailVerifiedPublic,
    OrderStatsIn,
    OrderStatsPublic,
    ProfileUpdateIn,
    RegisterIn,
)
from customer.views import customer_view
from shared.account_routes import add_password_routes, limited
from shared.account_schemas import AccountStatsPublic, EmailIn, LoginIn, MessagePublic
from shared.auth import ServiceKey
from shared.fields import ObjectIdParam
from shared.responses import AUTH_ERRORS, Envelope, Forbidden, MessageEnvelope, error_responses, ok

router = APIRouter(prefix="/api/v1")
add_password_routes(router, base="/customers", service="customer", domain=CustomersDomain, current=CurrentCustomer)

SIGNED_IN = error_responses(*AUTH_ERRORS)
SERVICE = error_responses(*AUTH_ERRORS)
SERVICE_404 = error_responses(*AUTH_ERRORS, 404)


# accounts


@router.post(
    "/customers/register",
    status_code=201,
    dependencies=[limited("customer:register")],
    response_model=Envelope[CustomerAuthPublic],
    responses=error_responses(409, 429),
)
@router.post(
    "/customers/signup",
    status_code=201,
    dependencies=[limited("customer:register")],
    response_model=Envelope[CustomerAuthPublic],
    responses=error_responses(409, 429),
)
async def register(body: RegisterIn, customers: CustomersDomain) -> Any:
    data = await customers.register(data=body)
    return ok(data, "Customer registered successfully", status_code=201)


@router.post(
    "/customers/login",
    dependencies=[limited("customer:login")],
    response_model=Envelope[CustomerAuthPublic],
    responses=error_responses(401, 403, 429),
)
@router.post(
    "/customers/signin",
    dependencies=[limited("customer:login")],
    response_model=Envelope[CustomerAuthPublic],
    responses=error_responses(401, 403, 429),
)
async def login(body: LoginIn, customers: CustomersDomain) -> Any:
    return ok(await customers.login(email=body.email, password=body.password), "Login successful")


@router.get("/customers/verify-email/{token}", response_model=Envelope[EmailVerifiedPublic])
async def verify_email(token: str, customers: CustomersDomain) -> Any:
    return ok(await customers.verify_email(token=token), "Email verified successfully")


@router.post(
    "/customers/resend-verification",
    dependencies=[limited("customer:resend-verification")],
    response_model=MessageEnvelope,
    responses=error_responses(429),
)
async def resend_verification(body: EmailIn, customers: CustomersDomain) -> Any:
    await customers.resend_verification(email=body.email)
    return ok(None, "Verification email sent")


# own profile


@router.get("/customers/profile", response_model=Envelope[CustomerPublic], responses=SIGNED_IN)
async def get_profile(customer: CurrentCustomer) -> Any:
    return ok(customer_view(customer), "Profile retrieved successfully")


@router.put("/customers/profile", response_model=Envelope[CustomerPublic], responses=error_responses(401, 403, 404))
async def update_profile(body: ProfileUpdateIn, customer: CurrentCustomer, customers: CustomersDomain) -> Any:
    return ok(await customers.update_profile(customer=customer, data=body), "Profile updated successfully")


@router.get("/customers/profile/{customer_id}", response_model=Envelope[CustomerPublic], responses=SERVICE_404)
async def get_profile_by_id(customer_id: ObjectIdParam, reader: ProfileReader, customers: CustomersDomain) -> Any:
    if reader.role == "customer" and reader.user_id != customer_id:
        raise Forbidden("Access denied")
    return ok(customer_view(await customers.get_customer(customer_id=customer_id)), "Profile retrieved successfully")


@router.post("/customers/deactivate", response_model=MessageEnvelope, responses=SIGNED_IN)
async def deactivate(body: DeactivateIn, customer: CurrentCustomer, customers: CustomersDomain) -> Any:
    await customers.deactivate(customer=customer, password=body.password, reason=body.reason)
    return ok(None, "Account deactivated successfully")


@router.delete("/customers/account", response_model=Envelope[MessagePublic], responses=SIGNED_IN)
async def close_account(customer: CurrentCustomer, customers: CustomersDomain) -> Any:
    await customers.close_account(customer=customer)
    return ok({"message": "Account deleted successfully"}, "Account deleted successfully")


# address book: every operation answers under /customers/addresses and /addresses


async def list_addresses(owner: AddressOwner, customers: CustomersDomain) -> Any:
    return ok(await customers.list_addresses(customer_id=owner), "Addresses retrieved successfully")


async def add_address(body: AddressIn, customer: CurrentCustomer, customers: CustomersDomain) -> Any:
    return ok(await customers.add_address(customer=customer, data=body), "Address added successfully", status_code=201)


async def get_address(address_id: ObjectIdParam, customer: CurrentCustomer, customers: CustomersDomain) -> Any:
    view = await customers.get_address(customer_id=customer["_id"], address_id=address_id)
    return ok(view, "Address retrieved successfully")


async def update_address(
    address_id: ObjectIdParam, body: AddressIn, customer: CurrentCustomer, customers: CustomersDomain
) -> Any:
    view = await customers.update_address(customer=customer, address_id=address_id, data=body)
    return ok(view, "Address updated successfully")


async def delete_address(address_id: ObjectIdParam, customer: CurrentCustomer, customers: CustomersDomain) -> Any:
    await customers.delete_address(customer=customer, address_id=address_id)
    return ok({"message": "Address deleted successfully"}, "Address deleted successfully")


async def set_default_address(address_id: ObjectIdParam, customer: CurrentCustomer, customers: CustomersDomain) -> Any:
    view = await customers.set_default_address(customer=customer, address_id=address_id)
    return ok(view, "Default address updated successfully")


ADDRESS = Envelope[AddressPublic]
for prefix in ("/customers/addresses", "/addresses"):
    router.add_api_route(
        prefix, list_addresses, methods=["GET"], response_model=Envelope[list[AddressPublic]], responses=SERVICE_404
    )
    router.add_api_route(
        prefix, add_address, methods=["POST"], status_code=201, response_model=ADDRESS, responses=SIGNED_IN
    )
    router.add_api_route(
        prefix + "/{address_id}", get_address, methods=["GET"], response_model=ADDRESS, responses=SERVICE_404
    )
    router.add_api_route(
        prefix + "/{address_id}", update_address, methods=["PUT"], response_model=ADDRESS, responses=SERVICE_404
    )
    router.add_api_route(
        prefix + "/{address_id}",
        delete_address,
        methods=["DELETE"],
        response_model=Envelope[MessagePublic],
        responses=SERVICE_404,
    )
    router.add_api_route(
        prefix + "/{address_id}/default",
        set_default_address,
        methods=["PUT"],
        response_model=ADDRESS,
        responses=SERVICE_404,
    )


# admin (through the admin service's key)


@router.get("/customers/admin", response_model=Envelope[CustomerListPublic], responses=SERVICE)
@router.get("/customers", response_model=Envelope[CustomerListPublic], responses=SERVICE)
async def admin_list(filters: CustomerListQuery, _: ServiceKey, customers: CustomersDomain) -> Any:
    return ok(await customers.admin_list(**filters), "Customers retrieved successfully")


@router.get("/customers/admin/{customer_id}", response_model=Envelope[AdminCustomerPublic], responses=SERVICE_404)
async def admin_details(customer_id: ObjectIdParam, _: ServiceKey, customers: CustomersDomain) -> Any:
    return ok(await customers.admin_details(customer_id=customer_id), "Customer retrieved successfully")


@router.patch("/customers/admin/{customer_id}/status", response_model=Envelope[CustomerPublic], responses=SERVICE_404)
async def admin_status(
    customer_id: ObjectIdParam, body: AdminStatusIn, _: ServiceKey, customers: CustomersDomain
) -> Any:
    view = await customers.set_status(customer_id=customer_id, active=body.isActive)
    return ok(view, "Customer status updated successfully")


# service endpoints


@router.post("/customers/service/verify", response_model=Envelope[CustomerVerifyPublic], responses=SERVICE)
async def service_verify(body: CustomerIdIn, _: ServiceKey, customers: CustomersDomain) -> Any:  # type: ignore[valid-type]
    data = await customers.verify_for_service(customer_id=body.customerId)
    return ok(data, "Customer verified")


@router.post("/customers/service/bulk", response_model=Envelope[list[CustomerBasicPublic]], responses=SERVICE)
async def service_bulk(body: CustomerIdsIn, _: ServiceKey, customers: CustomersDomain) -> Any:  # type: ignore[valid-type]
    data = await customers.bulk(customer_ids=body.customerIds)
    return ok(data, "Customers retrieved successfully")


@router.get("/customers/service/stats", response_model=Envelope[AccountStatsPublic], responses=SERVICE)
async def service_stats(_: ServiceKey, customers: CustomersDomain) -> Any:
    return ok(await customers.stats(), "Customer statistics retrieved successfully")


@router.post(
    "/customers/service/{customer_id}/order-stats", response_model=Envelope[OrderStatsPublic], responses=SERVICE_404
)
async def service_order_stats(
    customer_id: ObjectIdParam, body: OrderStatsIn, _: ServiceKey, customers: CustomersDomain
) -> Any:
    data = await customers.apply_order_stats(
        customer_id=customer_id, order_total=body.orderTotal, order_id=body.orderId
    )
    return ok(data, "Customer order statistics updated")


@router.get(
    "/customers/service/{customer_id}/addresses/{address_id}",
    response_model=Envelope[AddressPublic],
    responses=SERVICE_404,
)
async def service_address(
    customer_id: ObjectIdParam, address_id: ObjectIdParam, _: ServiceKey, customers: CustomersDomain
) -> Any:
    view = await customers.get_address(customer_id=customer_id, address_id=address_id)
    return ok(view, "Address retrieved successfully")


@router.get(
    "/customers/service/{customer_id}/addresses", response_model=Envelope[list[AddressPublic]], responses=SERVICE_404
)
async def service_addresses(customer_id: ObjectIdParam, _: ServiceKey, customers: CustomersDomain) -> Any:
    return ok(await customers.service_addresses(customer_id=customer_id), "Addresses retrieved successfully")
