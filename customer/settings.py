"""Customer service settings (``shared.settings.ServiceSettings`` plus its own)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class CustomerSettings(ServiceSettings):
    PORT: int = 3001
    RESET_TOKEN_TTL_SECONDS: int = 3600
    VERIFICATION_TOKEN_TTL_SECONDS: int = 24 * 3600
