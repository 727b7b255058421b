"""Time helpers: every stored and answered time is ISO-8601 UTC with milliseconds and ``Z``.

That fixed-width string form compares correctly as text, so the document store can use it
in ``$gt``/``$lt`` filters on every adapter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """``2026-01-01T00:00:00.000Z`` for an aware (or naive-UTC) datetime."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_iso(delta: timedelta | None = None) -> str:
    """``iso(utcnow() + delta)``."""
    return iso(utcnow() + delta if delta else utcnow())


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 string (``Z`` accepted) into an aware UTC datetime."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
