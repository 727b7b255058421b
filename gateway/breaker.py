"""One circuit breaker per service (contract §5.3).

``closed`` → calls pass; a failure (an attempt the gateway answered 502/503/504) adds one,
any HTTP answer resets the count. At ``threshold`` consecutive failures → ``open``: every
call is refused at once. After ``cooldown`` → ``half_open``: exactly one trial passes
(concurrent calls are refused); its answer closes the breaker, its failure opens it again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
STATE_CODES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitBreaker:
    __slots__ = ("_clock", "_on_change", "cooldown", "failures", "opened_at", "state", "threshold", "trial_running")

    def __init__(
        self,
        *,
        threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.threshold = max(1, threshold)
        self.cooldown = cooldown_seconds
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.trial_running = False
        self._clock = clock
        self._on_change = on_change

    def acquire(self) -> float | None:
        """Ask to make a call: None when it may go ahead, else the seconds to wait (> 0).

        A call that was let through must end in :meth:`success`, :meth:`failure` or
        :meth:`release` (neither: e.g. the client went away).
        """
        if self.state == CLOSED:
            return None
        if self.state == OPEN:
            left = self.opened_at + self.cooldown - self._clock()
            if left > 0:
                return left
            self._set(HALF_OPEN)
        if self.trial_running:
            return max(1.0, self.cooldown)
        self.trial_running = True
        return None

    def success(self) -> None:
        """The service answered (any status)."""
        self.failures = 0
        self.trial_running = False
        if self.state != CLOSED:
            self._set(CLOSED)

    def failure(self) -> None:
        """The gateway answered the call 502/503/504 itself."""
        self.failures += 1
        self.trial_running = False
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.threshold):
            self.opened_at = self._clock()
            self._set(OPEN)

    def release(self) -> None:
        """A call that neither succeeded nor failed (cancelled); a half-open trial may be retried."""
        self.trial_running = False

    def snapshot(self) -> dict[str, object]:
        """``{"state", "consecutiveFailures"[, "retryAfterMs"]}`` as ``/api/status`` shows it."""
        state = self.state
        info: dict[str, object] = {"state": state, "consecutiveFailures": self.failures}
        if state == OPEN:
            left = self.opened_at + self.cooldown - self._clock()
            if left > 0:
                info["retryAfterMs"] = math.ceil(left * 1000)
            else:
                info["state"] = HALF_OPEN
        return info

    def _set(self, state: str) -> None:
        self.state = state
        if self._on_change is not None:
            self._on_change(state)
