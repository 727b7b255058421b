"""The rules of the media service: storing uploads, marks, deletion, cleanup and stats.

No HTTP types here; public methods are keyword-only and return data (routes pick the
messages). Blocking work (type detection, Pillow, disk) runs in worker threads; image work
is capped at ``MEDIA_IMAGE_WORKERS`` threads, and the pixels they decode at once at
``MEDIA_DECODE_BUDGET_BYTES`` (``images.DecodeBudget``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from prometheus_client import CollectorRegistry, Counter

from media import images, sniff
from media.ids import is_media_id, new_media_id
from media.repository import MediaRepository, MediaRow
from media.settings import MediaSettings
from media.storage import MediaStorage, Served, stored_base
from media.upload import ReceivedUpload, UploadReceiver, boundary_of, unsupported_type
from shared.auth import Principal
from shared.fields import PageRequest
from shared.responses import AppError, BadRequest, Forbidden, NotFound, ValidationFailed

log = logging.getLogger("media.domain")

UPLOAD_TYPES = ("profile", "service", "temp")
MAX_IDS = 100
FIRST_CLEANUP_DELAY_SECONDS = 60.0
_MAX_FILENAME = 255
_THUMB_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


class SaveFailed(AppError):
    status_code, message = 500, "Failed to save file information"


def stamp(moment: datetime | None = None) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ`` (the stored and answered form)."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def sanitize_filename(raw: str) -> str:
    """R7: last path component, control characters removed, trimmed, at most 255 characters.

    Browsers (and httpx) send ``"`` CR LF in a multipart filename as ``%22 %0D %0A``; those
    three escapes are undone first so the name is stored as the user had it.
    """
    name = raw.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cc").strip()
    return name[:_MAX_FILENAME].strip() or "file"


def upload_type_of(field: str | None) -> str:
    """The ``type`` part, trimmed and lower-cased; anything unknown (``product``) is ``temp``."""
    value = (field or "").strip().lower()
    return value if value in UPLOAD_TYPES else "temp"


class MediaMetrics:
    """``media_uploads_total{result}`` and ``media_cleanup_deleted_total``."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.uploads = Counter("media_uploads_total", "Uploads by result", ["result"], registry=registry)
        self.cleanup_deleted = Counter("media_cleanup_deleted_total", "Files removed by the cleanup", registry=registry)

    def upload_result(self, status: int) -> None:
        result = {201: "ok", 413: "too_large", 415: "unsupported"}.get(status, "invalid" if status == 400 else None)
        if result is not None:
            self.uploads.labels(result).inc()


def uploader_of(caller: Principal | None) -> tuple[str | None, str | None]:
    """(``uploader_role``, ``uploader_id``) recorded for a caller: ``service`` with no id for
    the service key, the token's role and ``sub`` for a user, both None when anonymous."""
    if caller is None:
        return None, None
    if caller.is_service:
        return "service", None
    return caller.role, caller.user_id


def _too_many(field: str) -> ValidationFailed:
    return ValidationFailed.field(field, f"At most {MAX_IDS} ids may be sent")


class MediaService:
    """The media rules over one repository and one storage root."""

    def __init__(
        self,
        *,
        settings: MediaSettings,
        repository: MediaRepository,
        storage: MediaStorage,
        metrics: MediaMetrics,
    ) -> None:
        self.settings = settings
        self.repo = repository
        self.storage = storage
        self.metrics = metrics
        self._image_workers: images.ImageWorkers | None = None
        self._cleanup_lock = asyncio.Lock()
        self._cleanup_task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, *, background: bool = True) -> None:
        """Create folders, open and migrate the database, sweep ``.tmp``, start the cleanup timer."""
        self._image_workers = images.ImageWorkers(
            self.settings.MEDIA_IMAGE_WORKERS, budget_bytes=self.settings.MEDIA_DECODE_BUDGET_BYTES
        )
        await anyio.to_thread.run_sync(self.storage.prepare)
        await self.repo.open()
        swept = await self.storage.sweep_tmp()
        if swept:
            log.info("removed %d abandoned temp files", swept)
        if background and self.settings.MEDIA_CLEANUP_INTERVAL_SECONDS > 0:
            self._cleanup_task = asyncio.create_task(self._cleanup_loop(), name="media-cleanup")

    async def stop(self) -> None:
        if self._cleanup_task is not None:
            self._cleanup_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleanup_task
            self._cleanup_task = None
        await self.repo.close()
        if self._image_workers is not None:
            await anyio.to_thread.run_sync(self._image_workers.shutdown)
            self._image_workers = None

    async def healthy(self) -> tuple[bool, bool]:
        """(database answers, storage writable)."""
        try:
            database = await self.repo.ping()
        except Exception:
            database = False
        try:
            storage = self.storage.writable()
        except Exception:
            storage = False
        return database, storage

    # -- upload -----------------------------------------------------------------------------

    @property
    def image_workers(self) -> images.ImageWorkers:
        if self._image_workers is None:
            raise RuntimeError("MediaService.start() was not awaited")
        return self._image_workers

    def receiver(self, *, content_type: str | None) -> UploadReceiver:
        """A receiver for one multipart body (400 ``Invalid multipart body`` when not multipart)."""
        return UploadReceiver(
            storage=self.storage,
            boundary=boundary_of(content_type),
            max_bytes=self.settings.MEDIA_MAX_BYTES,
            size_label=self.settings.max_size_label,
        )

    async def upload(
        self, *, receiver: UploadReceiver, body: AsyncIterator[bytes], uploader: Principal | None
    ) -> MediaRow:
        """Receive the body, check the content, store file and thumbnail, then write the row."""
        received = await receiver.receive(body)
        try:
            return await self._store(received, uploader)
        finally:
            received.temp.discard()  # no-op once installed

    async def _image_thumbnail(self, path: Path, kind: sniff.Kind) -> images.Thumbnail | None:
        """Check the image header, then decode and thumbnail it once its estimated decode
        memory fits in the budget shared by every upload (``MEDIA_DECODE_BUDGET_BYTES``)."""
        workers = self.image_workers
        max_pixels = self.settings.MEDIA_MAX_PIXELS
        found = await workers.run(images.probe, path, kind, max_pixels)
        return await workers.run_within_budget(
            found.decode_bytes, images.decode_and_thumbnail, found, max_pixels, not_started=found.close
        )

    async def _store(self, received: ReceivedUpload, uploader: Principal | None) -> MediaRow:
        kind = await anyio.to_thread.run_sync(sniff.detect, received.path, received.head)
        if kind is None:
            raise unsupported_type()
        thumbnail = await self._image_thumbnail(received.path, kind) if kind.is_image else None
        uploader_role, uploader_id = uploader_of(uploader)
        media_id = new_media_id()
        base = stored_base(media_id)
        stored_filename = f"{base}.{kind.ext}"
        thumb_filename = f"{base}_thumb.{thumbnail.ext}" if thumbnail else None
        original = self.storage.path_for(media_id, stored_filename)
        thumb_path = self.storage.path_for(media_id, thumb_filename) if thumb_filename else None
        thumb_temp: Path | None = None
        installed = False
        try:
            moves = [(received.path, original)]
            if thumbnail is not None and thumb_path is not None:
                thumb_temp = await self.storage.write_temp(thumbnail.data)
                moves.append((thumb_temp, thumb_path))
            installed = True  # set first: a cancelled install may still have moved files
            await self.storage.install(moves)
            received.temp.installed()
            thumb_temp = None
            now = stamp()
            row: MediaRow = {
                "id": media_id,
                "original_filename": sanitize_filename(received.filename),
                "stored_filename": stored_filename,
                "file_size": received.size,
                "file_extension": kind.ext,
                "content_type": kind.content_type,
                "upload_type": upload_type_of(received.type_field),
                "access_url": f"/media/serve/{media_id}",
                "thumbnail_url": f"/media/serve-thumb/{media_id}" if thumb_filename else None,
                "thumb_filename": thumb_filename,
                "sha256": received.sha256,
                "is_used": 0,
                "unused_since": now,
                "uploader_role": uploader_role,
                "uploader_id": uploader_id,
                "uploaded_at": now,
                "updated_at": now,
            }
            try:
                # Shielded: once the insert has started, its outcome decides who owns the files.
                with anyio.CancelScope(shield=True):
                    await self.repo.insert(row)
            except Exception:
                log.exception("could not insert media row %s", media_id)
                raise SaveFailed() from None
            installed = False  # the row owns the files now
            return row
        finally:
            # Any failure (or cancellation) before the row exists leaves nothing behind.
            if installed or thumb_temp is not None:
                MediaStorage.remove_now(thumb_temp, *((original, thumb_path) if installed else ()))

    # -- reads ------------------------------------------------------------------------------

    async def get(self, *, media_id: str) -> MediaRow:
        """The row of a well-formed id (400 / 404 otherwise)."""
        row = await self.repo.get(canonical_id(media_id))
        if row is None:
            raise NotFound("Media not found")
        return row

    def original_path(self, *, row: MediaRow) -> Path:
        return self.storage.path_for(row["id"], row["stored_filename"])

    def thumbnail_path(self, *, row: MediaRow) -> Path | None:
        return self.storage.path_for(row["id"], row["thumb_filename"]) if row["thumb_filename"] else None

    async def open_for_serving(self, *, media_id: str, thumb: bool) -> Served:
        """4.2/4.3: the original, or the thumbnail (falling back to the original when it has
        none or its file is gone); 404 ``File not found on disk`` / ``Thumbnail not found``."""
        row = await self.get(media_id=media_id)
        uploaded = parse_stamp(row["uploaded_at"])
        if thumb:
            thumb_path = self.thumbnail_path(row=row)
            opened = await self.storage.open_file(thumb_path) if thumb_path else None
            if opened is not None:
                handle, stat = opened
                thumb_type = _THUMB_TYPES[row["thumb_filename"].rsplit(".", 1)[-1]]
                etag = f'"{row["sha256"]}-thumb"'
                name = f"thumb_{row['original_filename']}"
                return Served(handle, stat.st_size, thumb_type, etag, uploaded, name, ranges=False)
        opened = await self.storage.open_file(self.original_path(row=row))
        if opened is None:
            raise NotFound("Thumbnail not found" if thumb else "File not found on disk")
        handle, stat = opened
        content_type = "text/plain; charset=utf-8" if row["file_extension"] == "txt" else row["content_type"]
        name = f"thumb_{row['original_filename']}" if thumb else row["original_filename"]
        etag = f'"{row["sha256"]}"'
        return Served(handle, stat.st_size, content_type, etag, uploaded, name, ranges=not thumb)

    async def page(
        self, *, paging: PageRequest, upload_type: str | None, is_used: int | None
    ) -> tuple[list[MediaRow], int]:
        """One page of rows, newest upload first, and the total matching."""
        return await self.repo.page(offset=paging.skip, limit=paging.limit, upload_type=upload_type, is_used=is_used)

    async def validate(self, *, ids: list[Any] | None, field: str) -> dict[str, Any]:
        """4.7: every sent id answered in order, ``valid`` = row exists and file on disk."""
        ids = self._bulk_ids(ids, field=field)
        rows = await self.repo.get_many(i.lower() for i in ids if is_media_id(i))
        on_disk = dict(
            zip(rows, await self.storage.existing([self.original_path(row=r) for r in rows.values()]), strict=True)
        )
        files: list[dict[str, Any]] = []
        for item in ids:
            if not is_media_id(item):
                files.append({"id": item, "valid": False, "exists": False, "reason": "Invalid UUID format"})
                continue
            row = rows.get(item.lower())
            if row is None:
                files.append({"id": item, "valid": False, "exists": False, "reason": "File not found"})
            elif not on_disk[row["id"]]:
                files.append(
                    {
                        "id": item,
                        "valid": False,
                        "exists": True,
                        "reason": "File not found on disk",
                        "filename": row["stored_filename"],
                    }
                )
            else:
                files.append(
                    {
                        "id": item,
                        "valid": True,
                        "exists": True,
                        "filename": row["stored_filename"],
                        "original_name": row["original_filename"],
                        "file_size": row["file_size"],
                        "file_type": row["content_type"],
                        "url": row["access_url"],
                        "thumbnail_url": row["thumbnail_url"],
                        "is_used": row["is_used"],
                        "uploaded_at": row["uploaded_at"],
                    }
                )
        valid = sum(1 for f in files if f["valid"])
        return {"files": files, "summary": {"total": len(files), "valid": valid, "invalid": len(files) - valid}}

    async def stats(self) -> dict[str, Any]:
        data = await self.repo.stats(**self._cutoffs(datetime.now(UTC)))
        data["by_upload_type"] = {t: data["by_upload_type"].get(t, {"count": 0, "bytes": 0}) for t in UPLOAD_TYPES}
        return data

    # -- marks --------------------------------------------------------------------------------

    @staticmethod
    def _bulk_ids(ids: list[Any] | None, *, field: str) -> list[Any]:
        if not ids:
            raise BadRequest("fileIds array is required")
        if len(ids) > MAX_IDS:
            raise _too_many(field)
        return ids

    async def bulk_mark_used(self, *, ids: list[Any] | None, field: str) -> dict[str, Any]:
        """4.8: per-id results in request order."""
        ids = self._bulk_ids(ids, field=field)
        failed_storage = False
        try:
            done = await self.repo.mark_used([i.lower() for i in ids if is_media_id(i)], now=stamp())
        except Exception:
            log.exception("bulk mark-used failed")
            done, failed_storage = set(), True
        results = []
        for item in ids:
            if not is_media_id(item):
                results.append({"id": item, "success": False, "message": "Invalid UUID format"})
            elif failed_storage:
                results.append({"id": item, "success": False, "message": "Failed to mark as used"})
            elif item.lower() in done:
                results.append({"id": item, "success": True, "message": "Marked as used"})
            else:
                results.append({"id": item, "success": False, "message": "Media not found"})
        ok = sum(1 for r in results if r["success"])
        return {"results": results, "summary": {"total": len(results), "successful": ok, "failed": len(results) - ok}}

    async def mark_one_used(self, *, media_id: str) -> None:
        """4.9 (idempotent)."""
        done = await self.repo.mark_used([canonical_id(media_id)], now=stamp())
        if not done:
            raise NotFound("Media not found or failed to update")

    @staticmethod
    def _strict_ids(ids: list[Any] | None, *, field: str) -> list[str]:
        """4.10/4.11 validation: all or nothing."""
        if ids is None:
            raise BadRequest("Invalid or missing ids array")
        if not ids:
            raise BadRequest("No IDs provided")
        if len(ids) > MAX_IDS:
            raise _too_many(field)
        for item in ids:
            if not is_media_id(item):
                raise BadRequest(f"Invalid UUID format: {item}")
        return ids

    async def mark_many(self, *, ids: list[Any] | None, field: str, used: bool) -> tuple[int, list[str]]:
        """4.10 / 4.11: (distinct existing ids changed, ids as sent)."""
        ids = self._strict_ids(ids, field=field)
        lowered = [i.lower() for i in ids]
        if used:
            count = len(await self.repo.mark_used(lowered, now=stamp()))
        else:
            count = await self.repo.mark_not_used(lowered, now=stamp())
        return count, ids

    # -- delete and cleanup -------------------------------------------------------------------

    async def delete(self, *, media_id: str, caller: Principal) -> None:
        """4.5: the row goes first (serving stops), then the files; unlink failures are logged.
        The service key and admins delete anything; other users only their own uploads."""
        row = await self.get(media_id=media_id)
        role, user_id = uploader_of(caller)
        own = row["uploader_id"] is not None and (row["uploader_role"], row["uploader_id"]) == (role, user_id)
        if role not in ("service", "admin") and not own:
            raise Forbidden("You can only delete your own files")
        gone = await self.repo.delete(row["id"])
        if gone is None:
            raise NotFound("Media not found")
        await self.storage.remove(self.original_path(row=gone), self.thumbnail_path(row=gone))

    def _cutoffs(self, now: datetime) -> dict[str, str]:
        return {
            "temp_cutoff": stamp(now - timedelta(hours=self.settings.MEDIA_TEMP_TTL_HOURS)),
            "unused_cutoff": stamp(now - timedelta(hours=self.settings.MEDIA_UNUSED_TTL_HOURS)),
        }

    async def cleanup(self) -> dict[str, int]:
        """R10: remove unused files past their TTL. Serialized; each row by a conditional delete."""
        async with self._cleanup_lock:
            await self.storage.sweep_tmp()
            cutoffs = self._cutoffs(datetime.now(UTC))
            candidates = await self.repo.cleanup_candidates(**cutoffs)
            deleted = freed = 0
            for candidate in candidates:
                gone = await self.repo.delete_if_eligible(candidate["id"], **cutoffs)
                if gone is None:
                    continue  # marked used (or deleted) since the candidates were read
                await self.storage.remove(self.original_path(row=gone), self.thumbnail_path(row=gone))
                deleted += 1
                freed += gone["file_size"]
            self.metrics.cleanup_deleted.inc(deleted)
            log.info("media cleanup: %d eligible, %d deleted, %d bytes freed", len(candidates), deleted, freed)
            return {"deleted_count": deleted, "total_found": len(candidates), "freed_bytes": freed}

    async def _cleanup_loop(self) -> None:
        await asyncio.sleep(FIRST_CLEANUP_DELAY_SECONDS)
        while True:
            try:
                await self.cleanup()
            except Exception:
                log.exception("media cleanup run failed; retrying at the next interval")
            await asyncio.sleep(self.settings.MEDIA_CLEANUP_INTERVAL_SECONDS)


def canonical_id(media_id: str) -> str:
    """The lower-cased id, or 400 ``Invalid media ID format``."""
    if not is_media_id(media_id):
        raise BadRequest("Invalid media ID format")
    return media_id.lower()
