"""The retry worker: a background task of the app that delivers due ``pending`` rows (R5)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from notifications.domain import Notifier

log = logging.getLogger("notifications.worker")


class RetryWorker:
    """Every ``interval`` seconds (at once again after a full batch) claims and attempts due rows.

    Stopping cancels in-flight attempts; their rows keep their lease and are taken again once it
    ends, by this process after a restart or by another instance on the same database.
    """

    def __init__(self, notifier: Notifier, *, interval: float, batch: int) -> None:
        self.notifier = notifier
        self.interval = interval
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notifications-retry-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            seen = 0
            try:
                seen = await self.notifier.run_due()
                await self.notifier.refresh_pending_gauge()
            except Exception:
                log.exception("retry worker pass failed")
            if seen < self.batch:
                await asyncio.sleep(self.interval)
            else:
                await asyncio.sleep(0)
