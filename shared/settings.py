"""Settings shared by every service (pydantic-settings, the original environment names).

Each service subclasses :class:`ServiceSettings` and overrides ``PORT`` (and adds its own
fields). Every variable has a working local default; ``ENV=production`` refuses to start
while a secret (``JWT_SECRET``, every ``SERVICE_KEY``, and ``NOTIFICATIONS_SECRET`` where a
service has it) is a development default or shorter than 32 characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.forwarding import LOOPBACK, IPNetwork, parse_networks

DEV_JWT_SECRET = "dev-jwt-secret-change-me-0123456789abcdef"
DEV_SERVICE_KEY = "dev-service-key-change-me"
MIN_SECRET_LENGTH = 32
PRODUCTION_SECRETS = ("JWT_SECRET", "SERVICE_KEY", "NOTIFICATIONS_SECRET")
"""Settings that must hold a real secret when ``ENV=production`` (checked where a service has them)."""
KNOWN_DEV_SECRETS = frozenset({DEV_JWT_SECRET, DEV_SERVICE_KEY, "dev-notifications-secret-change-me"})


class InsecureSettingsError(ValueError):
    """Raised when production settings still carry a development secret."""


def weak_secret(value: str | None, *, comma_separated: bool = False) -> bool:
    """True when ``value`` is unset, a development default or shorter than 32 characters
    (with ``comma_separated``, when any of its comma-separated parts is)."""
    parts = [p.strip() for p in (value or "").split(",")] if comma_separated else [value or ""]
    parts = [p for p in parts if p] or [""]
    return any(len(p) < MIN_SECRET_LENGTH or p in KNOWN_DEV_SECRETS for p in parts)


def weak_production_secrets(settings: object, names: Iterable[str] = PRODUCTION_SECRETS) -> list[str]:
    """The names among ``names`` that ``settings`` has and that hold a weak secret
    (:func:`weak_secret`; ``SERVICE_KEY`` is a comma-separated list, each key checked)."""
    return [
        name
        for name in names
        if hasattr(settings, name) and weak_secret(getattr(settings, name), comma_separated=name == "SERVICE_KEY")
    ]


class ServiceSettings(BaseSettings):
    """Settings every service reads. Field names are the environment variable names."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    ENV: Literal["development", "test", "production"] = "development"
    HOST: str = "127.0.0.1"
    PORT: int = 8000
    LOG_LEVEL: str = "info"
    # Processes serving HOST:PORT (uvicorn workers, ``python -m <service>`` only). Above 1, set
    # REDIS_URL so rate limits are counted once for all of them; background work is claimed
    # per row or under a store lease, so several processes (or instances) may share one store.
    WEB_CONCURRENCY: int = Field(default=1, ge=1, le=64)
    LOG_FORMAT: Literal["text", "json"] = "text"
    # Besides the console: LOG_FILE (one file) or LOG_DIR (<service>.log in it), rotated at
    # LOG_FILE_MAX_BYTES keeping LOG_FILE_BACKUPS old files.
    LOG_FILE: str | None = None
    LOG_DIR: str | None = None
    LOG_FILE_MAX_BYTES: int = Field(default=10 * 1024 * 1024, ge=1024)
    LOG_FILE_BACKUPS: int = Field(default=5, ge=0, le=1000)

    MONGODB_URI: str | None = None
    DATA_DIR: str = "./data"

    JWT_SECRET: str = DEV_JWT_SECRET
    JWT_ALGORITHM: Literal["HS256", "HS384", "HS512"] = "HS256"
    JWT_EXPIRES_SECONDS: int = 24 * 3600
    JWT_REFRESH_EXPIRES_SECONDS: int = 7 * 24 * 3600
    SERVICE_KEY: str = DEV_SERVICE_KEY
    BCRYPT_ROUNDS: int = 12

    CORS_ORIGIN: str = "*"
    RATE_LIMIT_MAX: int = 100
    RATE_LIMIT_WINDOW_MS: int = 900_000
    # Peers whose X-Forwarded-For is believed (IPs/CIDRs): the gateway, on loopback.
    TRUSTED_PROXIES: str = LOOPBACK
    REDIS_URL: str | None = None
    MAX_JSON_BODY_BYTES: int = 10 * 1024 * 1024

    FRONTEND_URL: str = "http://localhost:3000"
    OUTBOX_POLL_SECONDS: float = 5.0
    # /health's store check: refreshed in the background this often (0: only live checks),
    # each check bounded by the timeout (shared/health.py).
    HEALTH_REFRESH_SECONDS: float = Field(default=1.0, ge=0)
    HEALTH_CHECK_TIMEOUT_SECONDS: float = Field(default=2.0, gt=0)

    GATEWAY_URL: str = "http://127.0.0.1:8000"
    CUSTOMER_SERVICE_URL: str = "http://127.0.0.1:3001"
    SELLERS_SERVICE_URL: str = "http://127.0.0.1:3002"
    MEDIA_SERVICE_URL: str = "http://127.0.0.1:3003"
    PRODUCTS_SERVICE_URL: str = "http://127.0.0.1:3004"
    ORDERS_SERVICE_URL: str = "http://127.0.0.1:3005"
    ADMIN_SERVICE_URL: str = "http://127.0.0.1:3006"
    NOTIFICATIONS_SERVICE_URL: str = "http://127.0.0.1:3007"

    @model_validator(mode="after")
    def _refuse_development_secrets(self) -> ServiceSettings:
        if self.ENV == "production":
            weak = weak_production_secrets(self)
            if weak:
                raise InsecureSettingsError(
                    f"{', '.join(weak)} must be set to a secret of at least {MIN_SECRET_LENGTH} characters "
                    "(not a development default) when ENV=production"
                )
        return self

    @property
    def service_keys(self) -> list[str]:
        """The accepted service keys (``SERVICE_KEY`` is comma-separated for rotation)."""
        return [k.strip() for k in self.SERVICE_KEY.split(",") if k.strip()]

    @property
    def outgoing_service_key(self) -> str:
        """The key this service sends: the first one listed."""
        return self.service_keys[0]

    @property
    def trusted_networks(self) -> tuple[IPNetwork, ...]:
        """``TRUSTED_PROXIES`` parsed (IPs or CIDRs, comma-separated)."""
        return parse_networks(self.TRUSTED_PROXIES)

    @property
    def cors_origins(self) -> list[str]:
        """``CORS_ORIGIN`` as a list (comma-separated; ``*`` allows any origin)."""
        return [o.strip() for o in self.CORS_ORIGIN.split(",") if o.strip()]

    def service_url(self, service: str) -> str:
        """The base URL of another service, e.g. ``service_url("notifications")``."""
        return getattr(self, f"{service.upper()}_SERVICE_URL").rstrip("/")
