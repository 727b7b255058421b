"""HTTP routes of the sellers service: parse, call the domain, wrap the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sellers.deps import AdminBearer, AdminOrService, CurrentSeller, ProfileReader, SellersDomain
from sellers.domain import SORTABLE
from sellers.schemas import (
    ChangePasswordIn,
    EmailIn,
    LoginIn,
    NewSellerIn,
    ProfileUpdateIn,
    RefreshIn,
    ResetPasswordIn,
    SignupIn,
    StatusIn,
)
from sellers.views import profile_view
from shared.accounts import account_list_query
from shared.auth import ServiceKey
from shared.ratelimit import rate_limit
from shared.responses import BadRequest, Forbidden, ValidationFailed, ok
from shared.validation import json_object, object_id

router = APIRouter(prefix="/api/v1")

AUTH_LIMIT_MESSAGE = "Too many authentication attempts, please try again later"
MAX_BULK_IDS = 100


def _limited(scope: str) -> Any:
    return Depends(rate_limit(f"sellers:{scope}", AUTH_LIMIT_MESSAGE))


# accounts


@router.post("/sellers/signup", status_code=201, dependencies=[_limited("signup")])
@router.post("/sellers/register", status_code=201, dependencies=[_limited("signup")])
async def signup(body: SignupIn, sellers: SellersDomain) -> JSONResponse:
    return ok(await sellers.signup(data=body), "Seller registered successfully", status_code=201)


@router.post("/sellers/signin", dependencies=[_limited("signin")])
@router.post("/sellers/login", dependencies=[_limited("signin")])
async def signin(body: LoginIn, sellers: SellersDomain) -> JSONResponse:
    return ok(await sellers.login(email=body.email, password=body.password), "Login successful")


@router.post("/sellers/refresh-token")
async def refresh_token(body: RefreshIn, sellers: SellersDomain) -> JSONResponse:
    return ok(await sellers.refresh(refresh_token=body.refreshToken), "Token refreshed successfully")


@router.post("/sellers/forgot-password", dependencies=[_limited("forgot-password")])
async def forgot_password(body: EmailIn, sellers: SellersDomain) -> JSONResponse:
    await sellers.forgot_password(email=body.email)
    return ok(None, "Password reset email sent")


@router.post("/sellers/reset-password", dependencies=[_limited("reset-password")])
async def reset_password(body: ResetPasswordIn, sellers: SellersDomain) -> JSONResponse:
    await sellers.reset_password(token=body.token, new_password=body.newPassword, confirm=body.confirmPassword)
    return ok(None, "Password reset successfully")


# own profile


@router.get("/sellers/profile")
async def get_profile(seller: CurrentSeller) -> JSONResponse:
    return ok(profile_view(seller), "Profile retrieved successfully")


@router.put("/sellers/profile")
async def update_profile(body: ProfileUpdateIn, seller: CurrentSeller, sellers: SellersDomain) -> JSONResponse:
    return ok(await sellers.update_profile(seller=seller, data=body), "Profile updated successfully")


@router.get("/sellers/profile/{seller_id}")
async def get_profile_by_id(seller_id: str, reader: ProfileReader, sellers: SellersDomain) -> JSONResponse:
    seller_id = object_id(seller_id)
    if reader.role == "seller" and reader.user_id != seller_id:
        raise Forbidden("Access denied")
    return ok(profile_view(await sellers.get_seller(seller_id=seller_id)), "Profile retrieved successfully")


@router.put("/sellers/change-password")
async def change_password(body: ChangePasswordIn, seller: CurrentSeller, sellers: SellersDomain) -> JSONResponse:
    tokens = await sellers.change_password(
        seller=seller, current=body.currentPassword, new_password=body.newPassword, confirm=body.confirmPassword
    )
    return ok({"message": "Password changed successfully", **tokens}, "Password changed successfully")


# admin


@router.post("/sellers/create", status_code=201)
async def create(body: NewSellerIn, _: AdminOrService, sellers: SellersDomain) -> JSONResponse:
    return ok(await sellers.create(data=body), "Seller created successfully", status_code=201)


@router.get("/sellers/list")
async def admin_list_bearer(request: Request, _: AdminBearer, sellers: SellersDomain) -> JSONResponse:
    return ok(
        await sellers.admin_list(**account_list_query(request.query_params, sortable=SORTABLE)),
        "Sellers retrieved successfully",
    )


@router.get("/sellers/admin")
async def admin_list(request: Request, _: ServiceKey, sellers: SellersDomain) -> JSONResponse:
    return ok(
        await sellers.admin_list(**account_list_query(request.query_params, sortable=SORTABLE)),
        "Sellers retrieved successfully",
    )


@router.get("/sellers/admin/{seller_id}")
async def admin_details(seller_id: str, _: ServiceKey, sellers: SellersDomain) -> JSONResponse:
    return ok(await sellers.admin_details(seller_id=object_id(seller_id)), "Seller retrieved successfully")


@router.patch("/sellers/admin/{seller_id}/status")
async def admin_status(seller_id: str, body: StatusIn, _: ServiceKey, sellers: SellersDomain) -> JSONResponse:
    view = await sellers.set_status(seller_id=object_id(seller_id), active=body.isActive, verified=body.isVerified)
    return ok(view, "Seller status updated successfully")


# service endpoints


@router.post("/sellers/service/bulk")
async def service_bulk(request: Request, _: ServiceKey, sellers: SellersDomain) -> JSONResponse:
    body = await json_object(request)
    ids = body.get("sellerIds")
    if not isinstance(ids, list):
        raise BadRequest("sellerIds array is required")
    if len(ids) > MAX_BULK_IDS:
        raise ValidationFailed.field("sellerIds", f"sellerIds cannot contain more than {MAX_BULK_IDS} ids")
    return ok(await sellers.bulk(seller_ids=[object_id(i) for i in ids]), "Sellers retrieved successfully")


@router.post("/sellers/service/verify")
async def service_verify(request: Request, _: ServiceKey, sellers: SellersDomain) -> JSONResponse:
    body = await json_object(request)
    if not body.get("sellerId"):
        raise BadRequest("sellerId is required")
    return ok(await sellers.verify_for_service(seller_id=object_id(body["sellerId"])), "Seller verified")


@router.get("/sellers/service/stats")
async def service_stats(_: ServiceKey, sellers: SellersDomain) -> JSONResponse:
    return ok(await sellers.stats(), "Seller statistics retrieved successfully")
