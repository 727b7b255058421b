"""Stock rules that both the domain and the repository need (no store, no HTTP).

``stockLevel`` is derived from the available ``stock`` and ``lowStockAlert``; the repository
writes it in the same conditional update that changes stock, so it needs the rule too.
"""

from __future__ import annotations

MAX_STOCK = 1_000_000_000
"""The largest available stock of one product (and the largest single stock change)."""

DEFAULT_LOW_STOCK_ALERT = 5

LEVELS = ("out", "low", "ok")


def stock_level(stock: int, low_alert: int) -> str:
    """``out`` at 0, ``low`` up to ``lowStockAlert``, else ``ok``."""
    if stock <= 0:
        return "out"
    return "low" if stock <= low_alert else "ok"


def level_bounds(level: str, low_alert: int) -> tuple[int | None, int | None]:
    """The stock values (inclusive; None = unbounded) that have ``level`` for this alert."""
    if level == "out":
        return None, 0
    if level == "low":
        return 1, low_alert
    return low_alert + 1, None


def stock_change_type(change: int) -> str:
    """The history type of a stock change: ``stock_add`` or ``stock_reduce`` by its sign."""
    return "stock_reduce" if change < 0 else "stock_add"
