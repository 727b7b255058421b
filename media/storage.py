"""Files on disk (contract R5): fan-out folders, temp files, atomic moves, the ``.tmp`` sweep.

Every path derives from the media id alone (``MEDIA_ROOT/ab/cd/<stored name>``); client
input never reaches a path. Partial writes live in ``MEDIA_ROOT/.tmp`` (same filesystem, so
``os.replace`` is atomic). Blocking calls are wrapped with ``anyio.to_thread`` here, so the
callers never touch the disk from the event loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from media.ids import is_media_id

log = logging.getLogger("media.storage")

_WRITE_BUFFER = 256 * 1024
TMP_MAX_AGE_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Served:
    """A stored file opened for serving, and what describes it (headers are picked from it)."""

    handle: BinaryIO
    size: int
    content_type: str
    etag: str
    last_modified: datetime
    download_name: str
    ranges: bool  # originals accept Range; thumbnails do not


def stored_base(media_id: str) -> str:
    """``550e8400-e29b-…`` → ``550e8400_e29b_…`` (the stored name without extension)."""
    return media_id.replace("-", "_")


class MediaStorage:
    """The files under one ``MEDIA_ROOT``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.tmp = self.root / ".tmp"

    def prepare(self) -> None:
        """Create the root and ``.tmp`` (blocking; start-up)."""
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path_for(self, media_id: str, filename: str) -> Path:
        """Where a stored file of ``media_id`` lives. Refuses anything but a canonical id and a
        plain file name, so no caller can build a path outside the fan-out folder."""
        if not is_media_id(media_id) or media_id != media_id.lower():
            raise ValueError(f"not a canonical media id: {media_id!r}")
        if not filename.startswith(stored_base(media_id)) or "/" in filename or "\\" in filename:
            raise ValueError(f"not a stored file name of {media_id}: {filename!r}")
        return self.root / media_id[0:2] / media_id[2:4] / filename

    async def open_upload(self) -> TempUpload:
        """A new temp file under ``.tmp`` for a body being received."""
        return await anyio.to_thread.run_sync(TempUpload.create, self.tmp)

    async def write_temp(self, data: bytes) -> Path:
        """Write small ``data`` (a thumbnail) to a new temp file, flushed; return its path."""
        return await anyio.to_thread.run_sync(self._write_temp, data)

    def _write_temp(self, data: bytes) -> Path:
        path = self.tmp / f"{secrets.token_hex(16)}.part"
        try:
            with path.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    async def install(self, moves: list[tuple[Path, Path]]) -> None:
        """``os.replace`` each temp file onto its final path (creating the fan-out folders)."""
        await anyio.to_thread.run_sync(self._install, moves)

    @staticmethod
    def _install(moves: list[tuple[Path, Path]]) -> None:
        for source, target in moves:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)

    async def remove(self, *paths: Path | None) -> None:
        """Unlink files; a failure is logged, never raised (the row is already gone)."""
        await anyio.to_thread.run_sync(self.remove_now, *paths)

    @staticmethod
    def remove_now(*paths: Path | None) -> None:
        """Blocking :meth:`remove`, for clean-up paths that must not be cancelled half-way."""
        for path in paths:
            if path is None:
                continue
            try:
                path.unlink(missing_ok=True)
            except OSError:
                log.exception("could not remove %s", path)

    async def existing(self, paths: list[Path]) -> list[bool]:
        """Which of ``paths`` exist as regular files (one thread hop for all)."""
        return await anyio.to_thread.run_sync(lambda: [p.is_file() for p in paths])

    async def open_file(self, path: Path) -> tuple[BinaryIO, os.stat_result] | None:
        """Open ``path`` for reading with its stat, or None when it is missing."""

        def _open() -> tuple[BinaryIO, os.stat_result] | None:
            try:
                handle = path.open("rb")
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
            return handle, os.fstat(handle.fileno())

        return await anyio.to_thread.run_sync(_open)

    async def sweep_tmp(self, max_age: float = TMP_MAX_AGE_SECONDS) -> int:
        """Delete ``.tmp`` entries older than ``max_age`` seconds (abandoned partial writes)."""
        return await anyio.to_thread.run_sync(self._sweep_tmp, max_age)

    def _sweep_tmp(self, max_age: float) -> int:
        cutoff = time.time() - max_age
        removed = 0
        try:
            entries = list(os.scandir(self.tmp))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                log.warning("could not sweep %s", entry.path, exc_info=True)
        return removed

    def writable(self) -> bool:
        """True when the root and ``.tmp`` exist and may be written.

        Called on the loop directly: three metadata syscalls on local directories cost less
        than the thread hop that would wrap them (which, on a busy machine, is what made
        ``/health`` slow)."""
        return self.tmp.is_dir() and os.access(self.root, os.W_OK) and os.access(self.tmp, os.W_OK)


class TempUpload:
    """A file being received: buffered writes and the SHA-256, both done in worker threads.

    Bytes are collected up to 256 KiB and then written and hashed off the event loop, so a
    slow disk never stalls other requests and memory stays bounded per upload.
    """

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self._handle = handle
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._installed = False
        self.size = 0

    @classmethod
    def create(cls, folder: Path) -> TempUpload:
        folder.mkdir(parents=True, exist_ok=True)  # recreated if someone removed it
        path = folder / f"{secrets.token_hex(16)}.part"
        return cls(path, path.open("xb"))

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= _WRITE_BUFFER:
            await self._flush_buffer()

    async def _flush_buffer(self) -> None:
        if not self._buffer:
            return
        chunk, self._buffer = self._buffer, bytearray()  # handed over, not copied
        await anyio.to_thread.run_sync(self._write_chunk, chunk)

    def _write_chunk(self, chunk: bytearray) -> None:
        self._handle.write(chunk)
        self._hash.update(chunk)

    async def finish(self) -> str:
        """Write what is buffered, flush to disk, close; return the hex SHA-256."""
        await self._flush_buffer()
        await anyio.to_thread.run_sync(self._close_synced)
        return self._hash.hexdigest()

    def _close_synced(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def installed(self) -> None:
        """The file was moved into place: :meth:`discard` has nothing left to do."""
        self._installed = True

    def discard(self) -> None:
        """Close and delete the temp file (blocking but tiny; used on error paths only)."""
        if self._installed:
            return
        self._buffer = bytearray()
        try:
            self._handle.close()
        finally:
            self.path.unlink(missing_ok=True)
