"""Route dependencies of the admin service (``Annotated`` aliases).

``CurrentAdmin`` is the authenticated, active admin of §5.2; ``RequirePermission(p)`` and
``SuperAdmin`` add the endpoint's guard, always on the stored role and permissions.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from admin.domain import Admins, AuditContext
from admin.errors import as_app_error
from admin.proxy import AdminProxy
from shared.app import app_state
from shared.auth import BearerClaims
from shared.ratelimit import RouteLimits, client_ip
from shared.store import Document

AdminsDomain = Annotated[Admins, Depends(app_state("admins"))]
Proxy = Annotated[AdminProxy, Depends(app_state("proxy"))]


async def _current_admin(claims: BearerClaims, admins: AdminsDomain) -> Document:
    return await admins.authenticate(claims=claims)


CurrentAdmin = Annotated[Document, Depends(_current_admin)]
"""The signed-in admin: valid admin token, known account, current ``ver``, active."""


def RequirePermission(permission: str) -> Any:
    """``admin: RequirePermission("view_analytics")``: the current admin holding ``permission``."""

    async def dependency(admin: CurrentAdmin) -> Document:
        Admins.require_permission(admin=admin, permission=permission)
        return admin

    return Annotated[Document, Depends(dependency)]


async def _super_admin(admin: CurrentAdmin) -> Document:
    Admins.require_super_admin(admin=admin)
    return admin


SuperAdmin = Annotated[Document, Depends(_super_admin)]
"""The current admin, whose stored role is ``super_admin``."""


def resolve_client_ip(request: Request) -> str:
    """The client address (``shared.ratelimit.client_ip``, the resolver the gateway and every
    service share): ``X-Forwarded-For`` is believed only from a trusted peer (loopback — the
    gateway on this host — or ``TRUSTED_PROXIES``), walked from the right past trusted hops;
    otherwise the peer itself, so a client talking to the service directly cannot choose its
    own address."""
    return client_ip(request)


ClientIp = Annotated[str, Depends(resolve_client_ip)]
"""The client address as :func:`resolve_client_ip` sees it."""

LOGIN_LIMIT_MESSAGE = "Too many authentication attempts, please try again later"


async def login_limit(request: Request) -> None:
    """Count one login, forgot-password or reset-password call (aliases included) in the
    client's fixed window (one slowapi scope for all of them); over ``LOGIN_RATE_LIMIT_MAX``:
    429 with ``Retry-After``."""
    limits: RouteLimits = request.app.state.route_limits
    await limits.check("admin-login", LOGIN_LIMIT_MESSAGE)(request)


class AuditedWrite:
    """The audit entry of one admin-management write; the route passes its answer through
    :meth:`done` so the entry records the status actually sent."""

    def __init__(self) -> None:
        self.status = 500

    def done(self, response: Response) -> Response:
        self.status = response.status_code
        return response


async def _admin_write(
    request: Request, actor: SuperAdmin, admins: AdminsDomain, ip: ClientIp
) -> AsyncIterator[AuditedWrite]:
    """Open the audit entry (service ``admin``) before the write, close it with the final
    status whatever happens, a refused body (400) included. No entry, no write: 503."""
    started = time.perf_counter()
    entry_id = await admins.open_audit(
        context=AuditContext(
            admin=actor,
            method=request.method,
            service="admin",
            path=request.url.path,
            query=request.url.query,
            request_id=request.state.request_id,
            ip=ip,
        )
    )
    write = AuditedWrite()
    try:
        yield write
    except Exception as exc:
        error = as_app_error(exc)
        write.status = 400 if isinstance(exc, RequestValidationError) else error.status_code if error else 500
        raise
    finally:
        duration = round((time.perf_counter() - started) * 1000)
        await admins.close_audit(entry_id=entry_id, status=write.status, duration_ms=duration)


AdminWrite = Annotated[AuditedWrite, Depends(_admin_write, scope="function")]
"""A super_admin's write to admin accounts, with its audit entry."""
