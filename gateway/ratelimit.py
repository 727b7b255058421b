"""The gateway's rate limiter: ``shared.ratelimit.RateLimiter`` plus what the edge needs.

The edge sends ``RateLimit-Limit/-Remaining/-Reset`` on every counted answer, so each hit must
report its window (``check``), and a Redis outage must never fail a request: the hit is
counted in memory instead and a warning logged (at most once a minute).

Every request passes here, so the in-memory count (the default, and the fallback) is a plain
dict of fixed windows: about 4,000 instructions a hit where ``limits``' asyncio memory storage
(locks, expiry task, three awaits) takes about 45,000 (callgrind, ``bench/gateway.py`` notes).
Redis goes through ``limits``' storage: one atomic increment-and-expire script, then the TTL.
"""

from __future__ import annotations

import logging
import math
import time
from typing import NamedTuple

from limits.aio.storage import MemoryStorage, Storage

from shared.ratelimit import RateLimiter

log = logging.getLogger("gateway.ratelimit")

_WARN_EVERY_SECONDS = 60.0


class Quota(NamedTuple):
    """One counted hit: allowed or not, the limit, the hits left and the seconds until the window ends."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


class MemoryWindows:
    """Fixed windows in a dict: ``key -> [count, window end]``; ended windows are swept as the
    dict grows, so memory stays bounded by the clients seen in one window."""

    __slots__ = ("_next_sweep", "_windows", "window")

    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._windows: dict[str, list[float]] = {}
        self._next_sweep = 1024

    def hit(self, key: str, now: float) -> tuple[int, float]:
        """Count one hit; ``(count in the window, window end)``."""
        entry = self._windows.get(key)
        if entry is None or entry[1] <= now:
            if len(self._windows) >= self._next_sweep:
                self._sweep(now)
            entry = self._windows[key] = [0, now + self.window]
        entry[0] += 1
        return int(entry[0]), entry[1]

    def _sweep(self, now: float) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        self._next_sweep = max(1024, 2 * len(self._windows))


class GatewayRateLimiter(RateLimiter):
    """Fixed window per client IP, counters in memory or Redis (``REDIS_URL``)."""

    def __init__(self, *, max_hits: int, window_seconds: int, redis_url: str | None = None, prefix: str = "rl"):
        super().__init__(max_hits=max_hits, window_seconds=window_seconds, redis_url=redis_url, prefix=prefix)
        store: Storage = self._limiter.storage
        self._redis: Storage | None = None if isinstance(store, MemoryStorage) else store
        self._memory = MemoryWindows(self._item.get_expiry())
        self._limit = self._item.amount
        self.limit_header = (b"ratelimit-limit", str(self._limit).encode())  # the same on every answer
        self._warned_at = -_WARN_EVERY_SECONDS

    def check_now(self, client: str) -> Quota | None:
        """Count one hit in memory, without awaiting; None when Redis counts (then :meth:`check`)."""
        if self._redis is not None:
            return None
        now = time.time()
        count, reset_at = self._memory.hit(client, now)
        limit = self._limit
        # A window in memory ends within (0, window] seconds: no clamping needed (see _quota).
        return Quota(count <= limit, limit, limit - count if count < limit else 0, math.ceil(reset_at - now))

    async def check(self, scope: str, client: str) -> Quota:
        """Count one hit (refused hits count too) and report its window."""
        now = time.time()
        if self._redis is None:
            count, reset_at = self._memory.hit(client, now)
        else:
            try:
                key = self._item.key_for(scope, client)
                count = await self._redis.incr(key, self._item.get_expiry())
                reset_at = await self._redis.get_expiry(key)
            except Exception as exc:
                if now - self._warned_at >= _WARN_EVERY_SECONDS:
                    self._warned_at = now
                    log.warning("rate-limit store unreachable (%s); counting in memory", exc)
                count, reset_at = self._memory.hit(client, now)
        return self._quota(count, reset_at, now)

    def _quota(self, count: int, reset_at: float, now: float) -> Quota:
        limit = self._limit
        reset = min(self.window_seconds, max(1, math.ceil(reset_at - now)))  # Redis TTLs are whole seconds
        return Quota(count <= limit, limit, max(0, limit - count), reset)
