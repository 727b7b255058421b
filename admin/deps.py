"""Route dependencies of the admin service (``Annotated`` aliases).

``CurrentAdmin`` is the authenticated, active admin of §5.2; ``RequirePermission(p)`` and
``SuperAdmin`` add the endpoint's guard, always on the stored role and permissions.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from admin.domain import Admins
from admin.proxy import AdminProxy
from shared.auth import BearerClaims
from shared.ratelimit import client_ip
from shared.store import Document


async def _admins(request: Request) -> Admins:
    return request.app.state.admins


AdminsDomain = Annotated[Admins, Depends(_admins)]


async def _proxy(request: Request) -> AdminProxy:
    return request.app.state.proxy


Proxy = Annotated[AdminProxy, Depends(_proxy)]


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


def _client_ip(request: Request) -> str:
    peer = request.client.host if request.client else None
    return client_ip(request.headers, peer, request.app.state.settings.TRUST_PROXY_HOPS)


ClientIp = Annotated[str, Depends(_client_ip)]
