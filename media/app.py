"""``create_app(settings)``: the media service wired on the shared app factory."""

from __future__ import annotations

from fastapi import FastAPI

from media.api import UPLOAD_PATH, router
from media.domain import MediaMetrics, MediaService
from media.repository import MediaRepository
from media.settings import MediaSettings
from media.storage import MediaStorage
from shared.app import create_service_app


def create_app(settings: MediaSettings | None = None) -> FastAPI:
    """The media app: SQLite metadata under ``DATA_DIR``, files under ``MEDIA_ROOT``."""
    settings = settings or MediaSettings()
    holder: dict[str, MediaService] = {}

    async def startup(app: FastAPI) -> None:
        await holder["service"].start()

    async def shutdown(app: FastAPI) -> None:
        await holder["service"].stop()

    async def health() -> dict[str, object]:
        """The contract's ``database`` and ``storage`` fields (4.14); unhealthy if either fails."""
        database, storage = await holder["service"].healthy()
        return {
            "healthy": database and storage,
            "database": "connected" if database else "disconnected",
            "storage": "writable" if storage else "not writable",
        }

    app = create_service_app(
        settings,
        service="media",
        routers=[router],
        health_check=health,
        on_startup=[startup],
        on_shutdown=[shutdown],
        raw_body_paths=[UPLOAD_PATH],
        title="media-service",
    )
    service = MediaService(
        settings=settings,
        repository=MediaRepository(settings.database_path),
        storage=MediaStorage(settings.media_root),
        metrics=MediaMetrics(app.state.metrics_registry),
    )
    holder["service"] = service
    app.state.media = service
    return app
