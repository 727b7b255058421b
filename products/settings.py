"""Products service settings (``shared.settings.ServiceSettings`` plus its own)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class ProductsSettings(ServiceSettings):
    PORT: int = 3004
    RESERVATION_CLEANUP_SECONDS: float = 60.0
    """How often the background task releases expired reservations (0 disables it)."""
    RESERVATION_DEFAULT_MINUTES: float = 30.0
    MEDIA_TIMEOUT_SECONDS: float = 5.0
    SEARCH_CANDIDATE_LIMIT: int = 5000
    """Above this many keyword matches a search falls back to scanning ``searchText``."""
    SELLER_STATUS_CACHE_SECONDS: float = 2.0
    """How long a seller's recorded status (active flag, token version) is reused for the token
    check before it is read again; this process's own writes clear it at once."""
