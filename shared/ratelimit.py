"""Fixed-window rate limiting per client IP, in memory or in Redis (``REDIS_URL``).

Built on the ``limits`` library. The client IP comes from :mod:`shared.forwarding`, the
resolver the gateway uses too: ``X-Forwarded-For`` is read only when the socket peer is one of
``TRUSTED_PROXIES`` (default loopback, where the gateway runs), so a caller reaching a
service's port directly cannot rotate the header to escape its limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter

from shared.forwarding import ClientResolver
from shared.responses import TooManyRequests
from shared.settings import ServiceSettings


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
    """Counts hits per (scope, client) in fixed windows of ``window_seconds``."""

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
        return cls(
            max_hits=settings.RATE_LIMIT_MAX,
            window_seconds=math.ceil(settings.RATE_LIMIT_WINDOW_MS / 1000),
            redis_url=settings.REDIS_URL,
            prefix=prefix,
        )

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


def rate_limit(
    scope: str, message: str = "Too many requests, please try again later"
) -> Callable[[Request], Awaitable[None]]:
    """A route dependency limiting calls per client IP under ``scope`` (aliases share a scope).

    Uses ``request.app.state.rate_limiter``; over the limit: 429 with ``Retry-After``.
    """

    async def dependency(request: Request) -> None:
        limiter: RateLimiter = request.app.state.rate_limiter
        if not limiter.enabled:
            return
        retry_after = await limiter.hit(scope, client_ip(request))
        if retry_after is not None:
            raise TooManyRequests(message, headers={"Retry-After": str(retry_after)})

    return dependency
