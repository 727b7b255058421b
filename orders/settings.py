"""Orders service settings (``shared.settings.ServiceSettings`` plus its own)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    PORT: int = 3005
    RESERVATION_MINUTES: float = Field(default=30.0, gt=0, le=1440)
    """Lifetime of the stock reservation made at placement (fractions allowed, for tests)."""
    EXPIRY_TASK_SECONDS: float = 60.0
    """How often pending orders whose reservation expired are failed (0 disables the task)."""
    PENDING_GRACE_SECONDS: float = 60.0
    """How long past ``reservationExpiry`` a pending order waits before it is failed."""
    TAX_RATE: Decimal = Field(default=Decimal("0"), ge=0, le=1)
    """Tax as a fraction of the subtotal (0.1 = 10 %)."""
    SHIPPING_FEE: Decimal = Field(default=Decimal("0"), ge=0, le=100_000)
    """Flat shipping fee added to every order."""
    IDEMPOTENCY_WAIT_SECONDS: float = 5.0
    """How long a replay waits for the first request with its key to finish."""
    IDEMPOTENCY_STALE_SECONDS: float = 60.0
    """An ``in_progress`` key older than this (a crashed request) is taken over."""
    HOUSEKEEPING_SECONDS: float = 3600.0
    """Period of the clean-up of old idempotency keys, idle carts and sent outbox rows (0 disables)."""
    UPSTREAM_TIMEOUT_SECONDS: float = 5.0
    """Timeout of the customer, products (catalogue) and sellers calls."""
    INVENTORY_TIMEOUT_SECONDS: float = 10.0
    """Timeout of the reserve / confirm / release calls."""
