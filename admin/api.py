"""HTTP routes of the admin service: parse, call the domain, pick the message, wrap the answer.

Every route declares its answer model and documents every status it can give; the
statuses and messages of domain errors are in ``admin.errors``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.convertors import Convertor, register_url_convertor

from admin.deps import (
    AdminsDomain,
    AdminWrite,
    ClientIp,
    CurrentAdmin,
    Proxy,
    RequirePermission,
    SuperAdmin,
    login_limit,
)
from admin.domain import PROXY_SERVICES, admin_view
from admin.monitoring import dashboard, services_health
from admin.schemas import (
    AdminHolderPublic,
    AdminsPublic,
    AdminUpdateIn,
    AuditPublic,
    DashboardPublic,
    EmailIn,
    LoginIn,
    LoginPublic,
    NewAdminIn,
    ResetPasswordIn,
    RoleName,
    ServicesHealthPublic,
)
from shared.fields import EmptyAsNone, LaxBool, ObjectIdStr, PageRequest, page_query
from shared.responses import (
    AUTH_ERRORS,
    UPSTREAM_ERRORS,
    Envelope,
    MessageEnvelope,
    error_responses,
    ok,
)
from shared.validation import object_id

router = APIRouter(prefix="/api/v1")

_limited = [Depends(login_limit)]

AdminPage = Annotated[PageRequest, Depends(page_query(default_limit=20, max_limit=100))]
ViewAnalytics = RequirePermission("view_analytics")


# auth


@router.post(
    "/login",
    dependencies=_limited,
    response_model=Envelope[LoginPublic],
    responses=error_responses(400, 401, 403, 423, 429),
)
@router.post(
    "/auth/login",
    dependencies=_limited,
    response_model=Envelope[LoginPublic],
    responses=error_responses(400, 401, 403, 423, 429),
)
async def login(body: LoginIn, admins: AdminsDomain) -> JSONResponse:
    return ok(await admins.login(email=body.email, password=body.password), "Login successful")


@router.post(
    "/forgot-password", dependencies=_limited, response_model=MessageEnvelope, responses=error_responses(400, 429)
)
@router.post(
    "/auth/forgot-password", dependencies=_limited, response_model=MessageEnvelope, responses=error_responses(400, 429)
)
async def forgot_password(body: EmailIn, admins: AdminsDomain) -> JSONResponse:
    key = await admins.forgot_password(email=body.email)
    if key is not None:
        admins.outbox.send_soon(key)
    return ok(None, "Password reset email sent")


@router.post(
    "/reset-password", dependencies=_limited, response_model=MessageEnvelope, responses=error_responses(400, 429)
)
@router.post(
    "/auth/reset-password", dependencies=_limited, response_model=MessageEnvelope, responses=error_responses(400, 429)
)
async def reset_password(body: ResetPasswordIn, admins: AdminsDomain) -> JSONResponse:
    await admins.reset_password(token=body.token, new_password=body.newPassword, confirm=body.confirmPassword)
    return ok(None, "Password reset successfully")


@router.get("/me", response_model=Envelope[AdminHolderPublic], responses=error_responses(*AUTH_ERRORS))
@router.get("/auth/me", response_model=Envelope[AdminHolderPublic], responses=error_responses(*AUTH_ERRORS))
async def me(admin: CurrentAdmin) -> JSONResponse:
    return ok({"admin": admin_view(admin)})


# dashboard and health


@router.get("/dashboard/stats", response_model=Envelope[DashboardPublic], responses=error_responses(*AUTH_ERRORS))
async def dashboard_stats(request: Request, _: ViewAnalytics) -> JSONResponse:
    state = request.app.state
    return ok(await dashboard(client_for=state.clients.get, timeout_ms=state.settings.STATS_TIMEOUT_MS))


@router.get("/services/health", response_model=Envelope[ServicesHealthPublic], responses=error_responses(*AUTH_ERRORS))
async def health_of_services(request: Request, _: ViewAnalytics) -> JSONResponse:
    state = request.app.state
    return ok(await services_health(targets=state.health_targets(), timeout_ms=state.settings.HEALTH_TIMEOUT_MS))


# admin management


@router.get(
    "/admins",
    response_model=Envelope[AdminsPublic],
    responses=error_responses(*AUTH_ERRORS),
)
async def list_admins(
    _: SuperAdmin,
    admins: AdminsDomain,
    paging: AdminPage,
    role: Annotated[RoleName | None, Query(), EmptyAsNone] = None,
    isActive: Annotated[LaxBool | None, Query(), EmptyAsNone] = None,
    search: Annotated[str | None, Query(max_length=100), EmptyAsNone] = None,
) -> JSONResponse:
    page = await admins.list_admins(
        page=paging.page, limit=paging.limit, role=role, active=isActive, search=(search or "").strip() or None
    )
    return ok({"admins": page["items"], "pagination": page["pagination"]}, "Admins retrieved successfully")


@router.post(
    "/admins",
    status_code=201,
    response_model=Envelope[AdminHolderPublic],
    responses=error_responses(*AUTH_ERRORS, 409, 503),
)
async def create_admin(body: NewAdminIn, actor: SuperAdmin, write: AdminWrite, admins: AdminsDomain) -> Response:
    created = await admins.create_admin(
        actor=actor,
        first_name=body.firstName,
        last_name=body.lastName,
        email=body.email,
        password=body.password,
        phone=body.phone,
        role=body.role,
        permissions=body.permissions,
        is_active=body.isActive,
    )
    return write.done(ok({"admin": admin_view(created)}, "Admin created successfully", status_code=201))


@router.get(
    "/admins/{admin_id}",
    response_model=Envelope[AdminHolderPublic],
    responses=error_responses(400, *AUTH_ERRORS, 404),
)
async def get_admin(admin_id: str, _: SuperAdmin, admins: AdminsDomain) -> JSONResponse:
    return ok({"admin": admin_view(await admins.get_admin(admin_id=object_id(admin_id)))})


@router.patch(
    "/admins/{admin_id}",
    response_model=Envelope[AdminHolderPublic],
    responses=error_responses(400, *AUTH_ERRORS, 404, 409, 503),
)
async def update_admin(
    admin_id: str, body: AdminUpdateIn, actor: SuperAdmin, write: AdminWrite, admins: AdminsDomain
) -> Response:
    updated = await admins.update_admin(
        actor=actor,
        admin_id=object_id(admin_id),
        role=body.role,
        permissions=body.permissions,
        is_active=body.isActive,
    )
    return write.done(ok({"admin": admin_view(updated)}, "Admin updated successfully"))


@router.get("/audit", response_model=Envelope[AuditPublic], responses=error_responses(*AUTH_ERRORS))
async def audit_log(
    _: SuperAdmin,
    admins: AdminsDomain,
    paging: AdminPage,
    adminId: Annotated[ObjectIdStr | None, Query(), EmptyAsNone] = None,
    service: Annotated[str | None, Query(max_length=50), EmptyAsNone] = None,
    method: Annotated[str | None, Query(max_length=10), EmptyAsNone] = None,
    since: Annotated[datetime | None, Query(alias="from"), EmptyAsNone] = None,
    until: Annotated[datetime | None, Query(alias="to"), EmptyAsNone] = None,
) -> JSONResponse:
    page = await admins.list_audit(
        page=paging.page,
        limit=paging.limit,
        admin_id=adminId,
        service=service,
        method=method,
        since=since,
        until=until,
    )
    return ok({"entries": page["items"], "pagination": page["pagination"]})


# the proxy


class _AnyPath(Convertor[str]):
    """Like ``path`` but also across control characters, so a path holding an encoded
    newline reaches the proxy's path rules (and gets their 400) instead of a 404."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("proxypath", _AnyPath())

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PROXY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **error_responses(400, *AUTH_ERRORS, 404, 413, *UPSTREAM_ERRORS),
    "default": {"description": "The target service's answer, relayed unchanged"},
}


@router.api_route("/proxy/{service}", methods=PROXY_METHODS, include_in_schema=False)
@router.api_route("/proxy/{service}/", methods=PROXY_METHODS, include_in_schema=False)
async def proxy_without_path(
    request: Request, service: str, admin: CurrentAdmin, proxy: Proxy, ip: ClientIp
) -> Response:
    return await proxy.handle(request, admin=admin, service=service, ip=ip)


ProxyService = Annotated[str, Path(json_schema_extra={"enum": list(PROXY_SERVICES)})]
ProxyPath = Annotated[str, Path(json_schema_extra={"pattern": "^api/v1/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"})]
"""The target path (the rules in ``admin.domain.proxy_path_is_safe`` decide; this is the plain form)."""
"""A service name, documented as the six proxied ones (any other answers 404 ``Service not found``)."""


async def proxy(
    request: Request, service: ProxyService, path: ProxyPath, admin: CurrentAdmin, proxy: Proxy, ip: ClientIp
) -> Response:
    """Forward to ``service`` with the service key; ``path`` is taken raw from the request line."""
    return await proxy.handle(request, admin=admin, service=service, ip=ip)


for _method in PROXY_METHODS:  # one operation per method, so each has its own id in the document
    router.add_api_route(
        "/proxy/{service}/{path:proxypath}",
        proxy,
        methods=[_method],
        responses=PROXY_RESPONSES,
        operation_id=f"proxy_{_method.lower()}",
        summary="Audited, permission-checked proxy to a service",
    )
