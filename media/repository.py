"""The ``media_files`` table in SQLite through aiosqlite; migrations run at start-up.

Data access only: callers pass the clock's ``now`` and the cleanup cutoffs in, so every rule
stays in ``domain.py``. Times are ``YYYY-MM-DDTHH:MM:SSZ`` text, which orders as it compares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from shared.store.sqlite import enable_wal_async

MediaRow = dict[str, Any]
BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for another connection's (or process's) write lock."""

_MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE media_files (
            id                TEXT PRIMARY KEY,
            original_filename TEXT NOT NULL,
            stored_filename   TEXT NOT NULL,
            file_size         INTEGER NOT NULL,
            file_extension    TEXT NOT NULL,
            content_type      TEXT NOT NULL,
            upload_type       TEXT NOT NULL DEFAULT 'temp' CHECK (upload_type IN ('profile', 'service', 'temp')),
            access_url        TEXT NOT NULL,
            thumbnail_url     TEXT NULL,
            thumb_filename    TEXT NULL,
            sha256            TEXT NOT NULL,
            is_used           INTEGER NOT NULL DEFAULT 0 CHECK (is_used IN (0, 1)),
            unused_since      TEXT NULL,
            uploader_role     TEXT NULL,
            uploader_id       TEXT NULL,
            uploaded_at       TEXT NOT NULL,
            updated_at        TEXT NOT NULL
        );
        CREATE INDEX ix_media_is_used ON media_files (is_used);
        CREATE INDEX ix_media_uploaded_at ON media_files (uploaded_at);
        CREATE INDEX ix_media_upload_type ON media_files (upload_type);
        CREATE INDEX ix_media_unused ON media_files (is_used, unused_since);
        CREATE INDEX ix_media_uploader ON media_files (uploader_role, uploader_id);
        """,
    ),
)

_COLUMNS = (
    "id",
    "original_filename",
    "stored_filename",
    "file_size",
    "file_extension",
    "content_type",
    "upload_type",
    "access_url",
    "thumbnail_url",
    "thumb_filename",
    "sha256",
    "is_used",
    "unused_since",
    "uploader_role",
    "uploader_id",
    "uploaded_at",
    "updated_at",
)

# A row is eligible for cleanup when unused and released before its type's cutoff.
_ELIGIBLE = (
    "is_used = 0 AND unused_since IS NOT NULL AND unused_since < "
    "CASE WHEN upload_type = 'temp' THEN :temp_cutoff ELSE :unused_cutoff END"
)


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class MediaRepository:
    """One aiosqlite connection for the data (its own thread; SQLite serializes the writes),
    and a second one only for the health probe, so ``/health`` never waits in the queue
    behind upload inserts (WAL lets it read while they write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._probe: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("media repository is not open")
        return self._db

    async def open(self) -> None:
        """Connect (creating the file), switch to WAL and apply pending migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        self._db.row_factory = aiosqlite.Row
        # The busy timeout first: switching to WAL takes a lock another process may hold.
        await self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await enable_wal_async(self._db)
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._migrate()
        self._probe = await aiosqlite.connect(self.path)
        await self._probe.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    async def close(self) -> None:
        for connection in (self._probe, self._db):
            if connection is not None:
                await connection.close()
        self._db = self._probe = None

    async def _migrate(self) -> None:
        db = self.db
        await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        applied = {row[0] for row in await db.execute_fetchall("SELECT version FROM schema_migrations")}
        for version, script in _MIGRATIONS:
            if version in applied:
                continue
            # One BEGIN IMMEDIATE transaction per migration, its version tested inside it: of
            # several processes starting on one file, one applies it and the others skip it.
            await db.commit()
            await db.execute("BEGIN IMMEDIATE")
            try:
                done = bool(await db.execute_fetchall("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)))
                if not done:
                    for statement in script.split(";"):
                        if statement.strip():
                            await db.execute(statement)
                    await db.execute(
                        "INSERT INTO schema_migrations (version, applied_at) "
                        "VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
                        (version,),
                    )
                await db.commit()
            except BaseException:
                await db.rollback()
                raise

    async def ping(self) -> bool:
        """True when the database file answers a query (read through the probe connection)."""
        if self._probe is None:
            return False
        rows = await self._probe.execute_fetchall("SELECT MAX(version) FROM schema_migrations")
        return next(iter(rows))[0] is not None

    async def insert(self, row: MediaRow) -> None:
        names = [c for c in _COLUMNS if c in row]
        await self._change(
            f"INSERT INTO media_files ({','.join(names)}) VALUES ({_marks(names)})", [row[c] for c in names]
        )

    async def _all(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[aiosqlite.Row]:
        # One job on the connection's thread: execute, fetch every row, reset. A statement left
        # open between jobs holds a read snapshot; a write queued behind it must then upgrade
        # that snapshot, which SQLite refuses at once ("database is locked", no busy wait) when
        # another process committed in between.
        return list(await self.db.execute_fetchall(sql, params))

    async def _change(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[aiosqlite.Row]:
        """Run one writing statement (its ``RETURNING`` rows fetched in the same job) and commit."""
        rows = await self._all(sql, params)
        await self.db.commit()
        return rows

    async def get(self, media_id: str) -> MediaRow | None:
        rows = await self._all("SELECT * FROM media_files WHERE id = ?", (media_id,))
        return dict(rows[0]) if rows else None

    async def get_many(self, ids: Iterable[str]) -> dict[str, MediaRow]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        rows = await self._all(f"SELECT * FROM media_files WHERE id IN ({_marks(wanted)})", wanted)
        return {row["id"]: dict(row) for row in rows}

    async def delete(self, media_id: str) -> MediaRow | None:
        """Delete the row; return it as it was, or None when there was none."""
        rows = await self._change("DELETE FROM media_files WHERE id = ? RETURNING *", (media_id,))
        return dict(rows[0]) if rows else None

    async def page(
        self, *, offset: int, limit: int, upload_type: str | None, is_used: int | None
    ) -> tuple[list[MediaRow], int]:
        where, params = [], []
        if upload_type is not None:
            where.append("upload_type = ?")
            params.append(upload_type)
        if is_used is not None:
            where.append("is_used = ?")
            params.append(is_used)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = (await self._all(f"SELECT COUNT(*) FROM media_files {clause}", params))[0][0]
        found = await self._all(
            # Newest first also within one second (stamps have second resolution): rowid
            # grows with each insert, so it orders uploads that share a stamp.
            f"SELECT * FROM media_files {clause} ORDER BY uploaded_at DESC, rowid DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [dict(r) for r in found], total

    async def mark_used(self, ids: Sequence[str], *, now: str) -> set[str]:
        """Set ``is_used=1`` on the existing ids; return those that exist."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return set()
        rows = await self._change(
            f"UPDATE media_files SET is_used = 1, unused_since = NULL, updated_at = ? "
            f"WHERE id IN ({_marks(wanted)}) RETURNING id",
            [now, *wanted],
        )
        return {row[0] for row in rows}

    async def mark_not_used(self, ids: Sequence[str], *, now: str) -> int:
        """Release the existing ids; rows that were used start their unused period now."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        rows = await self._change(
            f"UPDATE media_files SET unused_since = CASE WHEN is_used = 1 THEN ? ELSE unused_since END, "
            f"is_used = 0, updated_at = ? WHERE id IN ({_marks(wanted)}) RETURNING id",
            [now, now, *wanted],
        )
        return len(rows)

    async def cleanup_candidates(self, *, temp_cutoff: str, unused_cutoff: str) -> list[MediaRow]:
        params = {"temp_cutoff": temp_cutoff, "unused_cutoff": unused_cutoff}
        rows = await self._all(f"SELECT * FROM media_files WHERE {_ELIGIBLE} ORDER BY unused_since", params)
        return [dict(r) for r in rows]

    async def delete_if_eligible(self, media_id: str, *, temp_cutoff: str, unused_cutoff: str) -> MediaRow | None:
        """Delete the row only if it is still eligible (not marked used meanwhile)."""
        params = {"id": media_id, "temp_cutoff": temp_cutoff, "unused_cutoff": unused_cutoff}
        sql = f"DELETE FROM media_files WHERE id = :id AND {_ELIGIBLE} RETURNING *"
        rows = await self._change(sql, params)
        return dict(rows[0]) if rows else None

    async def stats(self, *, temp_cutoff: str, unused_cutoff: str) -> dict[str, Any]:
        """Counts and bytes by state, upload type and content type (SQL aggregates only)."""
        params = {"temp_cutoff": temp_cutoff, "unused_cutoff": unused_cutoff}
        (totals,) = await self._all(
            f"""SELECT COUNT(*), COALESCE(SUM(file_size), 0),
                       COALESCE(SUM(thumb_filename IS NOT NULL), 0),
                       COALESCE(SUM(is_used = 1), 0), COALESCE(SUM(CASE WHEN is_used = 1 THEN file_size END), 0),
                       COALESCE(SUM({_ELIGIBLE}), 0), COALESCE(SUM(CASE WHEN {_ELIGIBLE} THEN file_size END), 0)
                FROM media_files""",
            params,
        )
        total, total_bytes, thumbs, used, used_bytes, eligible, eligible_bytes = totals
        groups: dict[str, dict[str, dict[str, int]]] = {}
        for column in ("upload_type", "content_type"):
            rows = await self._all(
                f"SELECT {column}, COUNT(*), COALESCE(SUM(file_size), 0) FROM media_files GROUP BY {column}"
            )
            groups[column] = {key: {"count": n, "bytes": b} for key, n, b in rows}
        return {
            "total_files": total,
            "total_bytes": total_bytes,
            "thumbnail_count": thumbs,
            "used": {"count": used, "bytes": used_bytes},
            "unused": {"count": total - used, "bytes": total_bytes - used_bytes},
            "cleanup_eligible": {"count": eligible, "bytes": eligible_bytes},
            "by_upload_type": groups["upload_type"],
            "by_content_type": groups["content_type"],
        }
