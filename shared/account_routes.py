"""The routes every account service answers alike: token refresh and the password flows
(``refresh-token``, ``forgot-password``, ``reset-password``, ``change-password``).

No ``from __future__ import annotations`` here: the route functions are built inside
:func:`add_password_routes` and FastAPI reads their annotations as objects.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from shared.account_schemas import (
    ChangePasswordIn,
    EmailIn,
    PasswordChangedPublic,
    RefreshIn,
    ResetPasswordIn,
    TokensPublic,
)
from shared.auth import BearerClaims, Principal, Role, any_of
from shared.ratelimit import rate_limit
from shared.responses import AUTH_ERRORS, Envelope, MessageEnvelope, error_responses, ok
from shared.store import Document

AUTH_LIMIT_MESSAGE = "Too many authentication attempts, please try again later"


def limited(scope: str) -> Any:
    """The auth endpoints' rate limit for ``scope`` (``customer:login`` …)."""
    return Depends(rate_limit(scope, AUTH_LIMIT_MESSAGE))


def add_password_routes(router: APIRouter, *, base: str, service: str, domain: Any, current: Any) -> None:
    """Add the four routes under ``base`` (``/customers``, ``/sellers``).

    ``domain`` is the ``Annotated`` dependency of the service's
    :class:`shared.accounts.AccountService`, ``current`` that of the signed-in account;
    ``service`` prefixes the rate-limit scopes.
    """

    @router.post(
        f"{base}/refresh-token", response_model=Envelope[TokensPublic], responses=error_responses(*AUTH_ERRORS)
    )
    async def refresh_token(body: RefreshIn, accounts: domain) -> Any:
        return ok(await accounts.refresh(refresh_token=body.refreshToken), "Token refreshed successfully")

    @router.post(
        f"{base}/forgot-password",
        dependencies=[limited(f"{service}:forgot-password")],
        response_model=MessageEnvelope,
        responses=error_responses(429),
    )
    async def forgot_password(body: EmailIn, accounts: domain) -> Any:
        await accounts.forgot_password(email=body.email)
        return ok(None, "Password reset email sent")

    @router.post(
        f"{base}/reset-password",
        dependencies=[limited(f"{service}:reset-password")],
        response_model=MessageEnvelope,
        responses=error_responses(429),
    )
    async def reset_password(body: ResetPasswordIn, accounts: domain) -> Any:
        await accounts.reset_password(token=body.token, new_password=body.newPassword, confirm=body.confirmPassword)
        return ok(None, "Password reset successfully")

    @router.put(
        f"{base}/change-password",
        response_model=Envelope[PasswordChangedPublic],
        responses=error_responses(*AUTH_ERRORS),
    )
    async def change_password(body: ChangePasswordIn, account: current, accounts: domain) -> Any:
        tokens = await accounts.change_password(
            account=account, current=body.currentPassword, new_password=body.newPassword, confirm=body.confirmPassword
        )
        return ok({"message": "Password changed successfully", **tokens}, "Password changed successfully")


# Dependencies every account service declares the same way


def signed_in(domain: Any) -> Any:
    """``Annotated`` alias of the signed-in account: active, token version current
    (``domain`` is the ``Annotated`` alias of the service's AccountService)."""

    async def dependency(claims: BearerClaims, accounts: domain) -> Document:
        return await accounts.authenticate(claims=claims)

    return Annotated[Document, Depends(dependency)]


def reader_of(domain: Any, *, role: Role) -> Any:
    """``Annotated`` alias of who may read an account's profile: a service key (wins when
    present), an admin bearer (claims only) or an account of ``role``, checked like
    :func:`signed_in` (which account it may read is the route's rule)."""

    async def dependency(
        caller: Annotated[Principal, Depends(any_of(roles=("admin", role)))], accounts: domain
    ) -> Principal:
        if caller.role == role:
            await accounts.authenticate(claims=caller.claims)
        return caller

    return Annotated[Principal, Depends(dependency)]
