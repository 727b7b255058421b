"""Admin service settings (``shared.settings.ServiceSettings`` plus its own, contract §2)."""

from __future__ import annotations

import ipaddress

from pydantic import model_validator

from shared.settings import ServiceSettings


class AdminSettings(ServiceSettings):
    PORT: int = 3006
    # The older spelling; read when MONGODB_URI is unset.
    ADMIN_MONGODB_URI: str | None = None

    # The first super_admin (§5.5). Outside production the defaults are admin@example.com /
    # admin123; with ENV=production both must be set and the password must not be admin123.
    ADMIN_EMAIL: str | None = None
    ADMIN_PASSWORD: str | None = None
    ADMIN_FIRST_NAME: str = "Super"
    ADMIN_LAST_NAME: str = "Admin"

    LOGIN_RATE_LIMIT_MAX: int = 20
    LOGIN_RATE_LIMIT_WINDOW_MS: int = 900_000
    LOCKOUT_THRESHOLD: int = 5
    LOCKOUT_MINUTES: int = 30
    RESET_TOKEN_TTL_MINUTES: int = 60

    # Peers whose X-Forwarded-For is believed besides loopback (which is always believed: the
    # gateway on this host): IPs or CIDRs, comma-separated, e.g. the gateway's container
    # network. From any other peer the socket address is the client (login limit, audit ip).
    TRUSTED_PROXIES: str = ""

    PROXY_TIMEOUT_MS: int = 30_000
    STATS_TIMEOUT_MS: int = 5_000
    HEALTH_TIMEOUT_MS: int = 5_000

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Loopback and ``TRUSTED_PROXIES``, parsed."""
        items = ["127.0.0.0/8", "::1", *self.TRUSTED_PROXIES.split(",")]
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())

    @model_validator(mode="after")
    def _older_mongodb_name(self) -> AdminSettings:
        if not self.MONGODB_URI and self.ADMIN_MONGODB_URI:
            self.MONGODB_URI = self.ADMIN_MONGODB_URI
        return self
