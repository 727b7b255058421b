"""``create_app``: wires settings, the media repository, storage, domain and routes."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from media.api import UPLOAD_PATH, router
from media.domain import MediaMetrics, MediaService
from media.repository import MediaRepository
from media.settings import MediaSettings
from media.storage import MediaStorage
from shared.app import create_service_app


def create_app(
    settings: MediaSettings | None = None,
    *,
    store: MediaRepository | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """The media app: SQLite metadata under ``DATA_DIR`` (or ``store``), files under
    ``MEDIA_ROOT``. ``transports`` is accepted for the common shape; media calls no service."""
    settings = settings or MediaSettings()
    repository = store or MediaRepository(settings.database_path)
    registry = CollectorRegistry()  # /metrics serves the media counters next to the HTTP ones
    media = MediaService(
        settings=settings,
        repository=repository,
        storage=MediaStorage(settings.media_root),
        metrics=MediaMetrics(registry),
    )

    async def health() -> dict[str, object]:
        """The contract's ``database`` and ``storage`` fields (4.14); unhealthy if either fails."""
        database, storage = await media.healthy()
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
        parts=[media],
        metrics_registry=registry,
        raw_body_paths=[UPLOAD_PATH],
        title="media-service",
    )
    app.state.store = repository
    app.state.media = media
    return app
