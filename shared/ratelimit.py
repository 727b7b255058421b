"""Rate limits per client IP: the services' per-route limits (slowapi) and the asyncio limiter
the gateway's edge builds on (``limits``).

The client IP comes from :mod:`shared.forwarding`, the resolver the gateway uses too:
``X-Forwarded-For`` is read only when the socket peer is one of ``TRUSTED_PROXIES`` (default
loopback, where the gateway runs), so a caller reaching a service's port directly cannot
rotate the header to escape its limit.

Per-route limits (:class:`RouteLimits`, :func:`rate_limit`) are slowapi's ``shared_limit``:
one slowapi ``Limiter`` per app (``app.state.route_limits``), built from that app's settings,
one fixed-window counter per scope (aliases of an endpoint share a scope), counters in Redis
when ``REDIS_URL`` is set. slowapi's decorator is applied to the route's *dependency*, not to
the endpoint: an endpoint decorator runs after FastAPI has validated the body, and the
contracts count every call, a refused body (400) included (admin §5.4 "any outcome").

slowapi calls ``limits``' synchronous storage, so with Redis one hit holds the event loop for
one round trip (about 45–85 µs on loopback, ``bench/ratelimit_storage.py``) and a stalled
Redis for up to the socket timeout set here (:data:`REDIS_TIMEOUT_SECONDS`); then the counts
go to memory until Redis answers again (slowapi's in-memory fallback).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded

from shared.forwarding import ClientResolver
from shared.responses import error_response
from shared.settings import ServiceSettings

REDIS_TIMEOUT_SECONDS = 0.25
"""Connect and read timeout of the per-route limits' Redis client: how long a stalled Redis may
hold a service's event loop (slowapi's storage is synchronous) before the count goes to memory."""

DEFAULT_MESSAGE = "Too many requests, please try again later"


def _settings_rule(settings: ServiceSettings) -> dict[str, Any]:
    """``max_hits``, ``window_seconds`` and ``redis_url`` from ``RATE_LIMIT_*`` and ``REDIS_URL``."""
    return {
        "max_hits": settings.RATE_LIMIT_MAX,
        "window_seconds": math.ceil(settings.RATE_LIMIT_WINDOW_MS / 1000),
        "redis_url": settings.REDIS_URL,
    }


def client_ip(request: Request) -> str:
    """The client address of ``request`` under its app's ``TRUSTED_PROXIES``."""
    state = request.app.state
    resolver: ClientResolver | None = getattr(state, "client_resolver", None)
    if resolver is None:
        settings: ServiceSettings = state.settings
        resolver = state.client_resolver = ClientResolver(settings.trusted_networks)
    peer = request.client.host if request.client else None
    return resolver.client_ip(peer, request.headers.get("x-forwarded-for"))


class RateLimiter:
    """Counts hits per (scope, client) in fixed windows of ``window_seconds`` with ``limits``'
    asyncio storage: the base of the gateway's edge limiter (``gateway/ratelimit.py``)."""

    def __init__(self, *, max_hits: int, window_seconds: int, redis_url: str | None = None, prefix: str = "rl"):
        self.max_hits = max_hits
        self.window_seconds = max(1, window_seconds)
        storage: Storage
        if redis_url:
            uri = redis_url.replace("redis://", "async+redis://", 1).replace("rediss://", "async+rediss://", 1)
            storage = RedisStorage(uri, implementation="redispy", key_prefix=prefix)
        else:
            storage = MemoryStorage()
        self._limiter = FixedWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(max(1, max_hits), self.window_seconds)

    @classmethod
    def from_settings(cls, settings: ServiceSettings, *, prefix: str) -> RateLimiter:
        """``RATE_LIMIT_MAX`` hits per ``RATE_LIMIT_WINDOW_MS``; counters in Redis when set."""
        return cls(**_settings_rule(settings), prefix=prefix)

    @property
    def enabled(self) -> bool:
        return self.max_hits > 0

    async def hit(self, scope: str, client: str) -> int | None:
        """Count one hit; None when allowed, else the seconds until the window resets."""
        if not self.enabled:
            return None
        if await self._limiter.hit(self._item, scope, client):
            return None
        stats = await self._limiter.get_window_stats(self._item, scope, client)
        return max(1, math.ceil(stats.reset_time - time.time()))


class RouteLimits:
    """One app's per-route limits: a slowapi ``Limiter`` and the rule of that app's settings.

    ``max_hits`` calls per ``window_seconds`` per client IP and scope (fixed window); ``0``
    disables. Counters in memory, or in Redis under ``prefix`` when ``redis_url`` is set.
    """

    def __init__(
        self,
        *,
        max_hits: int,
        window_seconds: int,
        redis_url: str | None = None,
        prefix: str = "rl",
    ) -> None:
        self.rule = f"{max(1, max_hits)} per {max(1, window_seconds)} second"
        options: dict[str, object] = {}
        if redis_url:
            options = {
                "key_prefix": prefix,
                "socket_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
            }
        self.limiter = Limiter(
            key_func=client_ip,
            strategy="fixed-window",
            storage_uri=redis_url or "memory://",
            storage_options=options,  # type: ignore[arg-type]
            in_memory_fallback_enabled=bool(redis_url),
            enabled=max_hits > 0,
        )
        self._checks: dict[str, Callable[[Request], Awaitable[None]]] = {}

    @classmethod
    def from_settings(cls, settings: ServiceSettings, *, prefix: str) -> RouteLimits:
        """``RATE_LIMIT_MAX`` hits per ``RATE_LIMIT_WINDOW_MS``; counters in Redis when set."""
        return cls(**_settings_rule(settings), prefix=prefix)

    def install(self, app: FastAPI) -> None:
        """Make these the limits of ``app``: ``app.state.route_limits`` and the 429 answer."""
        app.state.route_limits = self
        app.state.limiter = self.limiter  # where slowapi's own helpers look for it
        app.add_exception_handler(RateLimitExceeded, self._refused)  # type: ignore[arg-type]

    def check(self, scope: str, message: str = DEFAULT_MESSAGE) -> Callable[[Request], Awaitable[None]]:
        """The slowapi-limited call counting one hit of ``scope``; over the limit it raises
        slowapi's ``RateLimitExceeded`` with ``message`` (built once per scope)."""
        check = self._checks.get(scope)
        if check is None:

            async def hit(request: Request) -> None:
                """Nothing to do: slowapi's wrapper counts the hit, or raises RateLimitExceeded."""

            # slowapi files its limits under the function's name: one name per scope
            hit.__name__ = hit.__qualname__ = f"hit:{scope}"
            check = self.limiter.shared_limit(self.rule, scope=scope, error_message=message)(hit)
            self._checks[scope] = check
        return check

    def _retry_after(self, request: Request) -> int:
        """Seconds until the refused window ends (ceil, at least 1)."""
        window = getattr(request.state, "view_rate_limit", None)
        if window is not None:
            try:
                stats = self.limiter.limiter.get_window_stats(window[0], *window[1])
                return max(1, math.ceil(stats.reset_time - time.time()))
            except Exception:  # the store went away after the hit: the whole window is the bound
                return window[0].get_expiry()
        return 1

    async def _refused(self, request: Request, exc: RateLimitExceeded) -> JSONResponse:
        return error_response(429, exc.detail, headers={"Retry-After": str(self._retry_after(request))})


def rate_limit(scope: str, message: str = DEFAULT_MESSAGE) -> Callable[[Request], Awaitable[None]]:
    """A route dependency counting one call of ``scope`` per client IP (aliases share a scope).

    Uses the app's :class:`RouteLimits` (``app.state.route_limits``); over the limit: 429 in
    the envelope with ``message`` and ``Retry-After``.
    """

    async def dependency(request: Request) -> None:
        limits: RouteLimits = request.app.state.route_limits
        await limits.check(scope, message)(request)

    return dependency
