"""Gateway settings: the shared ones plus the edge's own (contract §2)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

# The seven routed services, in routing-table order (contract §3).
SERVICES: tuple[str, ...] = ("customer", "sellers", "media", "products", "orders", "admin", "notifications")


def _url(plural: str, singular: str | None, port: int) -> str:
    names = (plural, singular) if singular else (plural,)
    return Field(f"http://127.0.0.1:{port}", validation_alias=AliasChoices(*names))


class GatewaySettings(ServiceSettings):
    """``PORT`` 8000 and the gateway's variables; the singular service-URL spellings of the
    original (``SELLER_SERVICE_URL`` …) are read when the plural one is unset."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    PORT: int = 8000
    RATE_LIMIT_MAX: int = 1000

    CUSTOMER_SERVICE_URL: str = _url("CUSTOMER_SERVICE_URL", None, 3001)
    SELLERS_SERVICE_URL: str = _url("SELLERS_SERVICE_URL", "SELLER_SERVICE_URL", 3002)
    MEDIA_SERVICE_URL: str = _url("MEDIA_SERVICE_URL", None, 3003)
    PRODUCTS_SERVICE_URL: str = _url("PRODUCTS_SERVICE_URL", "PRODUCT_SERVICE_URL", 3004)
    ORDERS_SERVICE_URL: str = _url("ORDERS_SERVICE_URL", "ORDER_SERVICE_URL", 3005)
    ADMIN_SERVICE_URL: str = _url("ADMIN_SERVICE_URL", None, 3006)
    NOTIFICATIONS_SERVICE_URL: str = _url("NOTIFICATIONS_SERVICE_URL", "NOTIFICATION_SERVICE_URL", 3007)

    TRUSTED_PROXIES: str = ""  # the gateway faces the internet: it trusts no proxy unless told
    PROXY_TIMEOUT_MS: int = 30_000
    MEDIA_TIMEOUT_MS: int = 10_000
    HEALTH_TIMEOUT_MS: int = 3_000
    CIRCUIT_FAILURE_THRESHOLD: int = 5
    CIRCUIT_COOLDOWN_MS: int = 10_000
    GATEWAY_FORWARD_SERVICE_KEY: bool = False
    GZIP_MIN_BYTES: int = 1024
    PROXY_MAX_CONNECTIONS: int = 100

    def service_urls(self) -> dict[str, str]:
        """Base URL of each routed service, in routing-table order, without a trailing slash."""
        return {name: self.service_url(name) for name in SERVICES}
