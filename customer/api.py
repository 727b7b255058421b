"""HTTP routes of the customer service: parse, call the domain, wrap the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from customer.deps import AddressOwner, CurrentCustomer, CustomersDomain, ProfileReader
from customer.domain import SORTABLE
from customer.schemas import (
    AddressIn,
    AdminStatusIn,
    ChangePasswordIn,
    DeactivateIn,
    EmailIn,
    LoginIn,
    OrderStatsIn,
    ProfileUpdateIn,
    RefreshIn,
    RegisterIn,
    ResetPasswordIn,
)
from customer.views import customer_view
from shared.accounts import account_list_query
from shared.auth import ServiceKey
from shared.ratelimit import rate_limit
from shared.responses import BadRequest, Forbidden, ValidationFailed, ok
from shared.validation import json_object, object_id

router = APIRouter(prefix="/api/v1")

AUTH_LIMIT_MESSAGE = "Too many authentication attempts, please try again later"


def _limited(scope: str) -> Any:
    return Depends(rate_limit(f"customer:{scope}", AUTH_LIMIT_MESSAGE))


# accounts


@router.post("/customers/register", status_code=201, dependencies=[_limited("register")])
@router.post("/customers/signup", status_code=201, dependencies=[_limited("register")])
async def register(body: RegisterIn, customers: CustomersDomain) -> JSONResponse:
    data = await customers.register(data=body)
    return ok(data, "Customer registered successfully", status_code=201)


@router.post("/customers/login", dependencies=[_limited("login")])
@router.post("/customers/signin", dependencies=[_limited("login")])
async def login(body: LoginIn, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.login(email=body.email, password=body.password), "Login successful")


@router.post("/customers/refresh-token")
async def refresh_token(body: RefreshIn, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.refresh(refresh_token=body.refreshToken), "Token refreshed successfully")


@router.post("/customers/forgot-password", dependencies=[_limited("forgot-password")])
async def forgot_password(body: EmailIn, customers: CustomersDomain) -> JSONResponse:
    await customers.forgot_password(email=body.email)
    return ok(None, "Password reset email sent")


@router.post("/customers/reset-password", dependencies=[_limited("reset-password")])
async def reset_password(body: ResetPasswordIn, customers: CustomersDomain) -> JSONResponse:
    await customers.reset_password(token=body.token, new_password=body.newPassword, confirm=body.confirmPassword)
    return ok(None, "Password reset successfully")


@router.get("/customers/verify-email/{token}")
async def verify_email(token: str, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.verify_email(token=token), "Email verified successfully")


@router.post("/customers/resend-verification", dependencies=[_limited("resend-verification")])
async def resend_verification(body: EmailIn, customers: CustomersDomain) -> JSONResponse:
    await customers.resend_verification(email=body.email)
    return ok(None, "Verification email sent")


# own profile


@router.get("/customers/profile")
async def get_profile(customer: CurrentCustomer) -> JSONResponse:
    return ok(customer_view(customer), "Profile retrieved successfully")


@router.put("/customers/profile")
async def update_profile(body: ProfileUpdateIn, customer: CurrentCustomer, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.update_profile(customer=customer, data=body), "Profile updated successfully")


@router.get("/customers/profile/{customer_id}")
async def get_profile_by_id(customer_id: str, reader: ProfileReader, customers: CustomersDomain) -> JSONResponse:
    customer_id = object_id(customer_id)
    if reader.role == "customer" and reader.user_id != customer_id:
        raise Forbidden("Access denied")
    return ok(customer_view(await customers.get_customer(customer_id=customer_id)), "Profile retrieved successfully")


@router.put("/customers/change-password")
async def change_password(
    body: ChangePasswordIn, customer: CurrentCustomer, customers: CustomersDomain
) -> JSONResponse:
    tokens = await customers.change_password(
        customer=customer, current=body.currentPassword, new_password=body.newPassword, confirm=body.confirmPassword
    )
    return ok({"message": "Password changed successfully", **tokens}, "Password changed successfully")


@router.post("/customers/deactivate")
async def deactivate(body: DeactivateIn, customer: CurrentCustomer, customers: CustomersDomain) -> JSONResponse:
    await customers.deactivate(customer=customer, password=body.password, reason=body.reason)
    return ok(None, "Account deactivated successfully")


@router.delete("/customers/account")
async def close_account(customer: CurrentCustomer, customers: CustomersDomain) -> JSONResponse:
    await customers.close_account(customer=customer)
    return ok({"message": "Account deleted successfully"}, "Account deleted successfully")


# address book: every operation answers under /customers/addresses and /addresses


async def list_addresses(owner: AddressOwner, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.list_addresses(customer_id=owner), "Addresses retrieved successfully")


async def add_address(body: AddressIn, customer: CurrentCustomer, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.add_address(customer=customer, data=body), "Address added successfully", status_code=201)


async def get_address(address_id: str, customer: CurrentCustomer, customers: CustomersDomain) -> JSONResponse:
    view = await customers.get_address(customer_id=customer["_id"], address_id=object_id(address_id))
    return ok(view, "Address retrieved successfully")


async def update_address(
    address_id: str, body: AddressIn, customer: CurrentCustomer, customers: CustomersDomain
) -> JSONResponse:
    view = await customers.update_address(customer=customer, address_id=object_id(address_id), data=body)
    return ok(view, "Address updated successfully")


async def delete_address(address_id: str, customer: CurrentCustomer, customers: CustomersDomain) -> JSONResponse:
    await customers.delete_address(customer=customer, address_id=object_id(address_id))
    return ok({"message": "Address deleted successfully"}, "Address deleted successfully")


async def set_default_address(address_id: str, customer: CurrentCustomer, customers: CustomersDomain) -> JSONResponse:
    view = await customers.set_default_address(customer=customer, address_id=object_id(address_id))
    return ok(view, "Default address updated successfully")


for prefix in ("/customers/addresses", "/addresses"):
    router.add_api_route(prefix, list_addresses, methods=["GET"])
    router.add_api_route(prefix, add_address, methods=["POST"], status_code=201)
    router.add_api_route(prefix + "/{address_id}", get_address, methods=["GET"])
    router.add_api_route(prefix + "/{address_id}", update_address, methods=["PUT"])
    router.add_api_route(prefix + "/{address_id}", delete_address, methods=["DELETE"])
    router.add_api_route(prefix + "/{address_id}/default", set_default_address, methods=["PUT"])


# admin (through the admin service's key)


@router.get("/customers/admin")
@router.get("/customers")
async def admin_list(request: Request, _: ServiceKey, customers: CustomersDomain) -> JSONResponse:
    return ok(
        await customers.admin_list(**account_list_query(request.query_params, sortable=SORTABLE)),
        "Customers retrieved successfully",
    )


@router.get("/customers/admin/{customer_id}")
async def admin_details(customer_id: str, _: ServiceKey, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.admin_details(customer_id=object_id(customer_id)), "Customer retrieved successfully")


@router.patch("/customers/admin/{customer_id}/status")
async def admin_status(
    customer_id: str, body: AdminStatusIn, _: ServiceKey, customers: CustomersDomain
) -> JSONResponse:
    view = await customers.set_status(customer_id=object_id(customer_id), active=body.isActive)
    return ok(view, "Customer status updated successfully")


# service endpoints


@router.post("/customers/service/verify")
async def service_verify(request: Request, _: ServiceKey, customers: CustomersDomain) -> JSONResponse:
    body = await json_object(request)
    if not body.get("customerId"):
        raise BadRequest("customerId is required")
    data = await customers.verify_for_service(customer_id=object_id(body["customerId"]))
    return ok(data, "Customer verified")


@router.post("/customers/service/bulk")
async def service_bulk(request: Request, _: ServiceKey, customers: CustomersDomain) -> JSONResponse:
    body = await json_object(request)
    ids = body.get("customerIds")
    if not isinstance(ids, list):
        raise BadRequest("customerIds array is required")
    if len(ids) > 100:
        raise ValidationFailed.field("customerIds", "customerIds cannot contain more than 100 ids")
    data = await customers.bulk(customer_ids=[object_id(i) for i in ids])
    return ok(data, "Customers retrieved successfully")


@router.get("/customers/service/stats")
async def service_stats(_: ServiceKey, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.stats(), "Customer statistics retrieved successfully")


@router.post("/customers/service/{customer_id}/order-stats")
async def service_order_stats(
    customer_id: str, body: OrderStatsIn, _: ServiceKey, customers: CustomersDomain
) -> JSONResponse:
    data = await customers.apply_order_stats(
        customer_id=object_id(customer_id), order_total=body.orderTotal, order_id=body.orderId
    )
    return ok(data, "Customer order statistics updated")


@router.get("/customers/service/{customer_id}/addresses/{address_id}")
async def service_address(customer_id: str, address_id: str, _: ServiceKey, customers: CustomersDomain) -> JSONResponse:
    view = await customers.get_address(customer_id=object_id(customer_id), address_id=object_id(address_id))
    return ok(view, "Address retrieved successfully")


@router.get("/customers/service/{customer_id}/addresses")
async def service_addresses(customer_id: str, _: ServiceKey, customers: CustomersDomain) -> JSONResponse:
    return ok(await customers.service_addresses(customer_id=object_id(customer_id)), "Addresses retrieved successfully")
