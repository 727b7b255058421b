"""Sellers routes (contract §3): each one parses, calls ``Sellers`` and wraps its answer in
the envelope. Documented with its answer model and error statuses; the token refresh and
password routes come from ``shared.account_routes``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sellers.deps import AdminBearer, AdminOrService, CurrentSeller, ProfileReader, SellerListQuery, SellersDomain
from sellers.schemas import (
    AdminDetailsPublic,
    NewSellerIn,
    ProfilePublic,
    ProfileUpdateIn,
    SellerAuthPublic,
    SellerBasicPublic,
    SellerIdIn,
    SellerIdsIn,
    SellerListPublic,
    SellerPublic,
    SellerStatusPublic,
    SellerVerifyPublic,
    SignupIn,
    StatusIn,
)
from sellers.views import profile_view
from shared.account_routes import add_password_routes, limited
from shared.account_schemas import AccountStatsPublic, LoginIn
from shared.auth import ServiceKey
from shared.fields import ObjectIdParam
from shared.responses import AUTH_ERRORS, Envelope, Forbidden, error_responses, ok

router = APIRouter(prefix="/api/v1")
add_password_routes(router, base="/sellers", service="sellers", domain=SellersDomain, current=CurrentSeller)

SIGNED_IN = error_responses(*AUTH_ERRORS)
SIGNED_IN_404 = error_responses(*AUTH_ERRORS, 404)


# accounts

SIGNUP = {"response_model": Envelope[SellerAuthPublic], "responses": error_responses(409, 429), "status_code": 201}
SIGNIN = {"response_model": Envelope[SellerAuthPublic], "responses": error_responses(401, 403, 423, 429)}


@router.post("/sellers/signup", dependencies=[limited("sellers:signup")], **SIGNUP)
@router.post("/sellers/register", dependencies=[limited("sellers:signup")], **SIGNUP)
async def signup(body: SignupIn, sellers: SellersDomain) -> Any:
    return ok(await sellers.signup(data=body), "Seller registered successfully", status_code=201)


@router.post("/sellers/signin", dependencies=[limited("sellers:signin")], **SIGNIN)
@router.post("/sellers/login", dependencies=[limited("sellers:signin")], **SIGNIN)
async def signin(body: LoginIn, sellers: SellersDomain) -> Any:
    return ok(await sellers.login(email=body.email, password=body.password), "Login successful")


# own profile


@router.get("/sellers/profile", response_model=Envelope[ProfilePublic], responses=SIGNED_IN)
async def get_profile(seller: CurrentSeller) -> Any:
    return ok(profile_view(seller), "Profile retrieved successfully")


@router.put("/sellers/profile", response_model=Envelope[ProfilePublic], responses=error_responses(401, 403, 404, 409))
async def update_profile(body: ProfileUpdateIn, seller: CurrentSeller, sellers: SellersDomain) -> Any:
    return ok(await sellers.update_profile(seller=seller, data=body), "Profile updated successfully")


@router.get("/sellers/profile/{seller_id}", response_model=Envelope[ProfilePublic], responses=SIGNED_IN_404)
async def get_profile_by_id(seller_id: ObjectIdParam, reader: ProfileReader, sellers: SellersDomain) -> Any:
    if reader.role == "seller" and reader.user_id != seller_id:
        raise Forbidden("Access denied")
    return ok(profile_view(await sellers.get_seller(seller_id=seller_id)), "Profile retrieved successfully")


# admin


@router.post(
    "/sellers/create", status_code=201, response_model=Envelope[SellerPublic], responses=error_responses(401, 403, 409)
)
async def create(body: NewSellerIn, _: AdminOrService, sellers: SellersDomain) -> Any:
    return ok(await sellers.create(data=body), "Seller created successfully", status_code=201)


@router.get("/sellers/list", response_model=Envelope[SellerListPublic], responses=SIGNED_IN)
async def admin_list_bearer(filters: SellerListQuery, _: AdminBearer, sellers: SellersDomain) -> Any:
    return ok(await sellers.admin_list(**filters), "Sellers retrieved successfully")


@router.get("/sellers/admin", response_model=Envelope[SellerListPublic], responses=SIGNED_IN)
async def admin_list(filters: SellerListQuery, _: ServiceKey, sellers: SellersDomain) -> Any:
    return ok(await sellers.admin_list(**filters), "Sellers retrieved successfully")


@router.get("/sellers/admin/{seller_id}", response_model=Envelope[AdminDetailsPublic], responses=SIGNED_IN_404)
async def admin_details(seller_id: ObjectIdParam, _: ServiceKey, sellers: SellersDomain) -> Any:
    return ok(await sellers.admin_details(seller_id=seller_id), "Seller retrieved successfully")


@router.patch(
    "/sellers/admin/{seller_id}/status",
    response_model=Envelope[SellerStatusPublic],
    responses=error_responses(*AUTH_ERRORS, 404, 409),
)
async def admin_status(seller_id: ObjectIdParam, body: StatusIn, _: ServiceKey, sellers: SellersDomain) -> Any:
    view = await sellers.set_status(seller_id=seller_id, active=body.isActive, verified=body.isVerified)
    return ok(view, "Seller status updated successfully")


# service endpoints


@router.post("/sellers/service/bulk", response_model=Envelope[list[SellerBasicPublic]], responses=SIGNED_IN)
async def service_bulk(body: SellerIdsIn, _: ServiceKey, sellers: SellersDomain) -> Any:  # type: ignore[valid-type]
    return ok(await sellers.bulk(seller_ids=body.sellerIds), "Sellers retrieved successfully")


@router.post("/sellers/service/verify", response_model=Envelope[SellerVerifyPublic], responses=SIGNED_IN)
async def service_verify(body: SellerIdIn, _: ServiceKey, sellers: SellersDomain) -> Any:  # type: ignore[valid-type]
    return ok(await sellers.verify_for_service(seller_id=body.sellerId), "Seller verified")


@router.get("/sellers/service/stats", response_model=Envelope[AccountStatsPublic], responses=SIGNED_IN)
async def service_stats(_: ServiceKey, sellers: SellersDomain) -> Any:
    return ok(await sellers.stats(), "Seller statistics retrieved successfully")
