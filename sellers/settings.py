"""Sellers service settings (``shared.settings.ServiceSettings`` plus its own)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class SellersSettings(ServiceSettings):
    PORT: int = 3002
    RESET_TOKEN_TTL_SECONDS: int = 3600
    LOGIN_MAX_ATTEMPTS: int = 5
    LOCK_TIME_MINUTES: int = 30
    # The inline products sync of a status change waits this long; the drainer's retries 5 s.
    PRODUCTS_SYNC_TIMEOUT_SECONDS: float = 3.0
