"""``/health`` answers that never wait behind the service's work.

A service's readiness check (a store ping, a pending count) shares the event loop, the store's
connection threads and the GIL with the service's main work, so a probe that runs the check
while the service is saturated queues behind that work. :class:`HealthMonitor` keeps the last
verdict fresh from a background task (every ``HEALTH_REFRESH_SECONDS``): while other requests
are in flight, ``/health`` answers from that verdict and does no I/O. A service with nothing
in flight has nothing to wait behind, so it checks live and a change shows at once.

A verdict older than one refresh plus one check timeout is not trusted (the refresher is stuck
behind a hanging check): the probe then checks live, bounded by ``HEALTH_CHECK_TIMEOUT_SECONDS``.
A check that raises or times out counts as unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

HealthCheck = Callable[[], Awaitable[bool | Mapping[str, Any]]]
"""Answers True/False, or a mapping of extra ``/health`` fields (with ``"healthy": False`` for
an unhealthy answer); raising counts as unhealthy."""

Verdict = tuple[bool, dict[str, Any]]
"""(healthy, extra ``/health`` fields)."""


def _interpret(raw: bool | Mapping[str, Any]) -> Verdict:
    if isinstance(raw, Mapping):
        extra = dict(raw)
        return bool(extra.pop("healthy", True)), extra
    return bool(raw), {}


class HealthMonitor:
    """The service's readiness verdict, refreshed in the background and read by ``/health``.

    ``in_flight`` is the number of HTTP requests being served (the request middleware counts
    them, the probe included). ``refresh_seconds`` 0 turns the background refresh off: every
    probe then checks live.
    """

    def __init__(self, check: HealthCheck | None, *, refresh_seconds: float, timeout_seconds: float) -> None:
        self.check = check
        self.refresh_seconds = refresh_seconds
        self.timeout_seconds = timeout_seconds
        self.in_flight = 0
        self._verdict: Verdict = (True, {})
        self._started_at = -math.inf  # when the check behind ``_verdict`` began
        self._task: asyncio.Task[None] | None = None

    async def verdict(self) -> Verdict:
        """The answer for one probe: the kept verdict while the service is busy and the verdict
        is fresh, else a live check."""
        if self.check is None:
            return True, {}
        if self.in_flight > 1 and self._fresh():
            return self._verdict
        return await self.refresh()

    def _fresh(self) -> bool:
        if self.refresh_seconds <= 0:
            return False
        return time.monotonic() - self._started_at <= self.refresh_seconds + self.timeout_seconds

    async def refresh(self) -> Verdict:
        """Run the check once (bounded by the timeout) and keep its verdict unless a check that
        began later has already answered."""
        assert self.check is not None
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                verdict = _interpret(await self.check())
        except Exception:  # a failing or hanging check is the unhealthy answer
            verdict = (False, {})
        if started >= self._started_at:
            self._verdict, self._started_at = verdict, started
        return verdict

    def start(self) -> None:
        """Start the background refresh (in the app's lifespan, once the store is open)."""
        if self.check is not None and self.refresh_seconds > 0 and self._task is None:
            self._task = asyncio.create_task(self._refresh_forever(), name="health-refresh")

    async def stop(self) -> None:
        """Stop the background refresh (before the store closes)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _refresh_forever(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.refresh_seconds)
