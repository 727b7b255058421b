"""NotificationsSettings of the notifications service (environment variable names are the field names)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from shared.settings import InsecureSettingsError, ServiceSettings

DEV_NOTIFICATIONS_SECRET = "dev-notifications-secret-change-me"


class NotificationsSettings(ServiceSettings):
    """Every value has a working local default; see ``.env.example`` and ``notifications/README.md``."""

    PORT: int = 3007

    NOTIFY_OUTBOX_DIR: str | None = None
    """Where the file transport writes ``<id>.eml``; default ``DATA_DIR/outbox``."""

    NOTIFICATIONS_SECRET: str = DEV_NOTIFICATIONS_SECRET
    """Encrypts the stored SMTP password (Fernet); refused at its default when ENV=production."""

    # Read once, when smtp_configs is empty (R8). Kept as text so that a bad value is reported
    # with the same field messages as POST /smtp rather than as a pydantic type error.
    SMTP_HOST: str | None = None
    SMTP_PORT: str = "587"
    SMTP_USERNAME: str = ""
    SMTP_PASSWORD: str | None = None
    SMTP_ENCRYPTION: str = "tls"
    SMTP_FROM_EMAIL: str = "no-reply@localhost"
    SMTP_FROM_NAME: str = "System"
    SMTP_TIMEOUT_SECONDS: float = Field(30.0, gt=0)
    SMTP_TLS_VERIFY: bool = True
    SMTP_LOCAL_HOSTNAME: str | None = None
    """Name sent in EHLO; default the machine's FQDN, looked up once at start-up."""

    NOTIFY_SYNC_SEND_TIMEOUT_SECONDS: float = Field(3.0, gt=0)
    NOTIFY_MAX_ATTEMPTS: int = Field(5, ge=1)
    NOTIFY_RETRY_BASE_SECONDS: float = Field(30.0, ge=0)
    NOTIFY_RETRY_MAX_DELAY_SECONDS: float = Field(3600.0, ge=0)
    NOTIFY_WORKER_INTERVAL_SECONDS: float = Field(5.0, gt=0)
    NOTIFY_WORKER_BATCH: int = Field(20, ge=1)
    NOTIFY_RENDER_TIMEOUT_SECONDS: float = Field(1.0, gt=0, le=30)
    """Wall-time budget of one render (a template exceeding it is refused with 400)."""
    NOTIFY_COMPANY_NAME: str = "E-commerce Platform"
    NOTIFY_SUPPORT_EMAIL: str = "support@example.com"

    @model_validator(mode="after")
    def _refuse_development_secret(self) -> NotificationsSettings:
        if self.ENV == "production" and self.NOTIFICATIONS_SECRET == DEV_NOTIFICATIONS_SECRET:
            raise InsecureSettingsError("NOTIFICATIONS_SECRET must be changed from its default when ENV=production")
        return self

    @property
    def database_path(self) -> Path:
        return Path(self.DATA_DIR) / "notifications.db"

    @property
    def outbox_dir(self) -> Path:
        return Path(self.NOTIFY_OUTBOX_DIR) if self.NOTIFY_OUTBOX_DIR else Path(self.DATA_DIR) / "outbox"
