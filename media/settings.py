"""Settings of the media service (the shared ones plus the ``MEDIA_*`` variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import ServiceSettings


class MediaSettings(ServiceSettings):
    """``MEDIA_ROOT`` defaults to ``DATA_DIR/media``; the database is ``DATA_DIR/media.db``."""

    PORT: int = 3003
    MEDIA_ROOT: str | None = None
    MEDIA_MAX_BYTES: int = Field(default=10 * 1024 * 1024, ge=1)
    MEDIA_MAX_PIXELS: int = Field(default=40_000_000, ge=1)
    MEDIA_ALLOW_ANONYMOUS: bool = True
    MEDIA_TEMP_TTL_HOURS: float = Field(default=24, ge=0)
    MEDIA_UNUSED_TTL_HOURS: float = Field(default=24, ge=0)
    MEDIA_CLEANUP_INTERVAL_SECONDS: float = Field(default=3600, ge=0)
    MEDIA_IMAGE_WORKERS: int = Field(default=4, ge=1)
    MEDIA_DECODE_BUDGET_BYTES: int = Field(default=256 * 1024 * 1024, ge=1)
    """Decoded pixels all image workers may hold at once (estimated per image before it is
    decoded); a decode that does not fit waits. One image larger than the budget runs alone."""

    @property
    def media_root(self) -> Path:
        """Where the files live (created at start-up)."""
        return Path(self.MEDIA_ROOT) if self.MEDIA_ROOT else Path(self.DATA_DIR) / "media"

    @property
    def database_path(self) -> Path:
        """The SQLite file of the ``media_files`` table."""
        return Path(self.DATA_DIR) / "media.db"

    @property
    def max_size_label(self) -> str:
        """``MEDIA_MAX_BYTES`` in MiB for messages: ``10`` or ``1.5`` (no decimals when whole)."""
        mib = self.MEDIA_MAX_BYTES / 1048576
        return str(int(mib)) if mib.is_integer() else f"{mib:.2f}".rstrip("0").rstrip(".")
