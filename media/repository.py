"""The ``media_files`` table in SQLite through aiosqlite; migrations run at start-up.

Data access only: callers pass the clock's ``now`` and the cleanup cutoffs in, so every rule
stays in ``domain.py``. Times are ``YYYY-MM-DDTHH:MM:SSZ`` text, which orders as it compares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

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
        await self._db.execute("PRAGMA journal_mode=WAL")
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
        async with db.execute("SELECT version FROM schema_migrations") as cursor:
            applied = {row[0] for row in await cursor.fetchall()}
        for version, script in _MIGRATIONS:
            if version in applied:
                continue
            # One BEGIN IMMEDIATE transaction per migration, its version tested inside it: of
            # several processes starting on one file, one applies it and the others skip it.
            await db.commit()
            await db.execute("BEGIN IMMEDIATE")
            try:
                async with db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)) as cursor:
                    done = await cursor.fetchone() is not None
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
        async with self._probe.execute("SELECT MAX(version) FROM schema_migrations") as cursor:
            return (await cursor.fetchone())[0] is not None

    async def insert(self, row: MediaRow) -> None:
        names = [c for c in _COLUMNS if c in row]
        await self.db.execute(
            f"INSERT INTO media_files ({','.join(names)}) VALUES ({_marks(names)})", [row[c] for c in names]
        )
        await self.db.commit()

    async def get(self, media_id: str) -> MediaRow | None:
        async with self.db.execute("SELECT * FROM media_files WHERE id = ?", (media_id,)) as cursor:
            row = await cursor.fetchone()
        return dict(row) if row else None

    async def get_many(self, ids: Iterable[str]) -> dict[str, MediaRow]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        async with self.db.execute(f"SELECT * FROM media_files WHERE id IN ({_marks(wanted)})", wanted) as cursor:
            return {row["id"]: dict(row) for row in await cursor.fetchall()}

    async def delete(self, media_id: str) -> MediaRow | None:
        """Delete the row; return it as it was, or None when there was none."""
        async with self.db.execute("DELETE FROM media_files WHERE id = ? RETURNING *", (media_id,)) as cursor:
            row = await cursor.fetchone()
        await self.db.commit()
        return dict(row) if row else None

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
        async with self.db.execute(f"SELECT COUNT(*) FROM media_files {clause}", params) as cursor:
            total = (await cursor.fetchone())[0]
        async with self.db.execute(
            # Newest first also within one second (stamps have second resolution): rowid
            # grows with each insert, so it orders uploads that share a stamp.
            f"SELECT * FROM media_files {clause} ORDER BY uploaded_at DESC, rowid DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ) as cursor:
            rows = [dict(r) for r in await cursor.fetchall()]
        return rows, total

    async def mark_used(self, ids: Sequence[str], *, now: str) -> set[str]:
        """Set ``is_used=1`` on the existing ids; return those that exist."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return set()
        async with self.db.execute(
            f"UPDATE media_files SET is_used = 1, unused_since = NULL, updated_at = ? "
            f"WHERE id IN ({_marks(wanted)}) RETURNING id",
            [now, *wanted],
        ) as cursor:
            done = {row[0] for row in await cursor.fetchall()}
        await self.db.commit()
        return done

    async def mark_not_used(self, ids: Sequence[str], *, now: str) -> int:
        """Release the existing ids; rows that were used start their unused period now."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        async with self.db.execute(
            f"UPDATE media_files SET unused_since = CASE WHEN is_used = 1 THEN ? ELSE unused_since END, "
            f"is_used = 0, updated_at = ? WHERE id IN ({_marks(wanted)}) RETURNING id",
            [now, now, *wanted],
        ) as cursor:
            count = len(await cursor.fetchall())
        await self.db.commit()
        return count

    async def cleanup_candidates(self, *, temp_cutoff: str, unused_cutoff: str) -> list[MediaRow]:
        params = {"temp_cutoff": temp_cutoff, "unused_cutoff": unused_cutoff}
        async with self.db.execute(f"SELECT * FROM media_files WHERE {_ELIGIBLE} ORDER BY unused_since", params) as cur:
            return [dict(r) for r in await cur.fetchall()]

    async def delete_if_eligible(self, media_id: str, *, temp_cutoff: str, unused_cutoff: str) -> MediaRow | None:
        """Delete the row only if it is still eligible (not marked used meanwhile)."""
        params = {"id": media_id, "temp_cutoff": temp_cutoff, "unused_cutoff": unused_cutoff}
        sql = f"DELETE FROM media_files WHERE id = :id AND {_ELIGIBLE} RETURNING *"
        async with self.db.execute(sql, params) as cur:
            row = await cur.fetchone()
        await self.db.commit()
        return dict(row) if row else None

    async def stats(self, *, temp_cutoff: str, unused_cutoff: str) -> dict[str, Any]:
        """Counts and bytes by state, upload type and content type (SQL aggregates only)."""
        params = {"temp_cutoff": temp_cutoff, "unused_cutoff": unused_cutoff}
        async with self.db.execute(
            f"""SELECT COUNT(*), COALESCE(SUM(file_size), 0),
                       COALESCE(SUM(thumb_filename IS NOT NULL), 0),
                       COALESCE(SUM(is_used = 1), 0), COALESCE(SUM(CASE WHEN is_used = 1 THEN file_size END), 0),
                       COALESCE(SUM({_ELIGIBLE}), 0), COALESCE(SUM(CASE WHEN {_ELIGIBLE} THEN file_size END), 0)
                FROM media_files""",
            params,
        ) as cursor:
            total, total_bytes, thumbs, used, used_bytes, eligible, eligible_bytes = await cursor.fetchone()
        groups: dict[str, dict[str, dict[str, int]]] = {}
        for column in ("upload_type", "content_type"):
            async with self.db.execute(
                f"SELECT {column}, COUNT(*), COALESCE(SUM(file_size), 0) FROM media_files GROUP BY {column}"
            ) as cursor:
                groups[column] = {key: {"count": n, "bytes": b} for key, n, b in await cursor.fetchall()}
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
