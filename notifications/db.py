"""The service's own SQLite database: connection set-up, time format and schema migrations.

One aiosqlite connection per app in autocommit mode for all the app's work, plus a second one
only for ``/health`` (so the probe never queues behind sends). Every write outside the
migrations is a single statement (upserts and conditional updates), so coroutines sharing the
connection never see each other's half-done transactions, and two processes on one file stay
correct: SQLite serializes writers (WAL, ``busy_timeout``).

Every read runs as one job on the connection's thread (execute, fetch everything, reset), see
``Repository``: a statement left open between two jobs keeps a read transaction open, and a
write queued behind it on the same connection must then upgrade that read to a write, which
SQLite refuses at once ("database is locked", no busy wait) whenever another connection
committed in between.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite

from notifications.defaults import DEFAULT_TEMPLATES
from shared.store.sqlite import enable_wal_async

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
BUSY_TIMEOUT_MS = 10_000


def utcnow() -> datetime:
    return datetime.now(UTC)


def fmt(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) — the contract's stored and answered time form."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def now_text(delta_seconds: float = 0.0) -> str:
    return fmt(utcnow() + timedelta(seconds=delta_seconds))


async def connect(path: Path) -> aiosqlite.Connection:
    """Open (creating the folder and file) with WAL, a busy timeout and row access by name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await enable_wal_async(conn)
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA foreign_keys = ON")
    return conn


_SCHEMA_1 = """
CREATE TABLE notification_templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    code TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    body_html TEXT NULL,
    body_text TEXT NULL,
    variables TEXT NOT NULL DEFAULT '[]',
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE smtp_configs (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    port INTEGER NOT NULL DEFAULT 587,
    username TEXT NOT NULL DEFAULT '',
    password_encrypted TEXT NULL,
    encryption TEXT NOT NULL DEFAULT 'tls',
    from_email TEXT NOT NULL,
    from_name TEXT NOT NULL DEFAULT 'System',
    is_active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE email_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    template_code TEXT NOT NULL,
    recipient_email TEXT NOT NULL,
    recipient_name TEXT NOT NULL DEFAULT '',
    subject TEXT NULL,
    body_html TEXT NULL,
    body_text TEXT NULL,
    variables TEXT NOT NULL DEFAULT '{}',
    missing_variables TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'pending',
    transport TEXT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NULL,
    locked_until TEXT NULL,
    message_id TEXT NOT NULL,
    idempotency_key TEXT NULL,
    sent_at TEXT NULL,
    error_message TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX idx_email_history_status ON email_history (status);
CREATE INDEX idx_email_history_recipient ON email_history (recipient_email);
CREATE INDEX idx_email_history_created ON email_history (created_at);
CREATE INDEX idx_email_history_template ON email_history (template_code);
CREATE INDEX idx_email_history_due ON email_history (status, next_attempt_at);
CREATE UNIQUE INDEX idx_email_history_idempotency
    ON email_history (idempotency_key, template_code, recipient_email)
    WHERE idempotency_key IS NOT NULL;
"""


async def _migration_1(conn: aiosqlite.Connection) -> None:
    """Tables, indexes and the seven default templates (installed once per database)."""
    for statement in _SCHEMA_1.split(";"):
        if statement.strip():
            await conn.execute(statement)
    now = now_text()
    await conn.executemany(
        "INSERT INTO notification_templates (name, code, subject, body_html, body_text, variables, is_active,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
        [
            (t["name"], t["code"], t["subject"], t["body_html"], t["body_text"], json.dumps(t["variables"]), now, now)
            for t in DEFAULT_TEMPLATES
        ],
    )


Migration = Callable[[aiosqlite.Connection], Awaitable[None]]
MIGRATIONS: Sequence[tuple[int, Migration]] = ((1, _migration_1),)
"""Append ``(version, coroutine function)`` pairs; never edit one that has shipped."""


async def migrate(conn: aiosqlite.Connection) -> list[int]:
    """Apply the migrations not yet recorded, each in its own ``BEGIN IMMEDIATE`` transaction
    (so two processes starting together apply each one once). Returns the versions applied."""
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    applied: list[int] = []
    for version, migration in MIGRATIONS:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            async with conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)) as cur:
                done = await cur.fetchone() is not None
            if not done:
                await migration(conn)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, now_text())
                )
                applied.append(version)
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return applied


class Database:
    """The service's database file: ``conn`` for the app's work, ``probe`` for ``/health``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._probe: aiosqlite.Connection | None = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the database is not open")
        return self._conn

    @property
    def probe(self) -> aiosqlite.Connection:
        if self._probe is None:
            raise RuntimeError("the database is not open")
        return self._probe

    async def open(self) -> list[int]:
        """Connect, apply pending migrations, open the health connection; the versions applied."""
        self._conn = await connect(self.path)
        try:
            applied = await migrate(self._conn)
            self._probe = await connect(self.path)
        except BaseException:
            await self.close()
            raise
        return applied

    async def close(self) -> None:
        for conn in (self._probe, self._conn):
            if conn is not None:
                await conn.close()
