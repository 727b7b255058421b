"""Data access for the three tables; no business rules. Each write is one SQL statement and
each read one job on the connection's thread (see ``notifications.db``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from notifications.db import Database

Row = dict[str, Any]

TEMPLATE_COLUMNS = ("name", "subject", "body_html", "body_text", "variables", "is_active")
TEMPLATE_ROW = (
    "name", "code", "subject", "body_html", "body_text", "variables", "is_active", "created_at", "updated_at",
)  # fmt: skip
"""The columns a new template row is written with (``id`` is the database's)."""
_HISTORY_LIST_COLUMNS = (
    "id, template_code, recipient_email, recipient_name, subject, status, transport, attempts, next_attempt_at,"
    " variables, missing_variables, sent_at, error_message, created_at, updated_at"
)


class DuplicateCode(Exception):
    """A template with this code exists."""


class DuplicateIdempotencyKey(Exception):
    """A history row with this idempotency key, template and recipient exists."""


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    status: str | None = None
    template_code: str | None = None
    recipient_email: str | None = None


class Repository:
    """The queries of the service, over ``database.conn`` (``/health`` reads ``database.probe``)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        # One job: execute, fetch every row and reset the statement before any other
        # coroutine's statement runs on this connection (no read transaction left open).
        rows = await self.database.conn.execute_fetchall(sql, params)
        return [dict(r) for r in rows]

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, int | None]:
        """Run one statement (it runs to completion in one job); (rows changed, last row id)."""
        async with self.database.conn.execute(sql, params) as cur:
            return cur.rowcount, cur.lastrowid

    # --------------------------------------------------------------------- templates

    async def list_templates(self) -> list[Row]:
        return await self._all("SELECT * FROM notification_templates ORDER BY created_at DESC, id DESC")

    async def get_template(self, *, template_id: int) -> Row | None:
        return await self._one("SELECT * FROM notification_templates WHERE id = ?", (template_id,))

    async def get_active_template(self, *, code: str) -> Row | None:
        return await self._one("SELECT * FROM notification_templates WHERE code = ? AND is_active = 1", (code,))

    async def insert_template(self, *, values: Mapping[str, Any]) -> int:
        columns = TEMPLATE_ROW
        try:
            _, new_id = await self._write(
                f"INSERT INTO notification_templates ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [values[c] for c in columns],
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateCode from exc
        assert new_id is not None
        return new_id

    async def update_template(self, *, template_id: int, changes: Mapping[str, Any]) -> bool:
        columns = [c for c in (*TEMPLATE_COLUMNS, "updated_at") if c in changes]
        changed, _ = await self._write(
            f"UPDATE notification_templates SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
            [*(changes[c] for c in columns), template_id],
        )
        return changed == 1

    async def delete_template(self, *, template_id: int) -> bool:
        changed, _ = await self._write("DELETE FROM notification_templates WHERE id = ?", (template_id,))
        return changed == 1

    # --------------------------------------------------------------------- SMTP settings

    async def get_smtp(self) -> Row | None:
        return await self._one("SELECT * FROM smtp_configs ORDER BY id LIMIT 1")

    async def save_smtp(self, *, values: Mapping[str, Any], keep_password: bool, only_if_empty: bool = False) -> None:
        """Create the single row (id 1) or replace it; ``keep_password`` leaves the stored token.

        ``only_if_empty`` inserts only when no row exists (settings from the environment).
        """
        insert = (
            "INSERT INTO smtp_configs (id, host, port, username, password_encrypted, encryption, from_email,"
            " from_name, is_active, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
        )
        params = [
            values["host"],
            values["port"],
            values["username"],
            values["password_encrypted"],
            values["encryption"],
            values["from_email"],
            values["from_name"],
            values["now"],
            values["now"],
        ]
        if only_if_empty:
            await self._write(insert.replace("INSERT", "INSERT OR IGNORE", 1), params)
            return
        await self._write(
            insert + " ON CONFLICT(id) DO UPDATE SET host = excluded.host, port = excluded.port,"
            " username = excluded.username, encryption = excluded.encryption, from_email = excluded.from_email,"
            " from_name = excluded.from_name, is_active = 1, updated_at = excluded.updated_at,"
            " password_encrypted = CASE WHEN ? THEN smtp_configs.password_encrypted"
            " ELSE excluded.password_encrypted END",
            [*params, 1 if keep_password else 0],
        )

    # --------------------------------------------------------------------- history

    async def insert_history(self, *, values: Mapping[str, Any]) -> int:
        columns = list(values)
        try:
            _, new_id = await self._write(
                f"INSERT INTO email_history ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [values[c] for c in columns],
            )
        except sqlite3.IntegrityError as exc:
            if values.get("idempotency_key") is not None:
                raise DuplicateIdempotencyKey from exc
            raise
        assert new_id is not None
        return new_id

    async def get_history(self, *, history_id: int) -> Row | None:
        return await self._one("SELECT * FROM email_history WHERE id = ?", (history_id,))

    async def find_by_idempotency_key(self, *, key: str, template_code: str, recipient_email: str) -> Row | None:
        return await self._one(
            "SELECT * FROM email_history WHERE idempotency_key = ? AND template_code = ? AND recipient_email = ?",
            (key, template_code, recipient_email),
        )

    async def list_history(self, *, where: HistoryFilter, limit: int, offset: int) -> tuple[list[Row], int]:
        clauses: list[str] = []
        params: list[Any] = []
        if where.status is not None:
            clauses.append("status = ?")
            params.append(where.status)
        if where.template_code is not None:
            clauses.append("template_code = ?")
            params.append(where.template_code)
        if where.recipient_email is not None:
            # instr, not LIKE: '%' and '_' in the filter match literally.
            clauses.append("instr(lower(recipient_email), lower(?)) > 0")
            params.append(where.recipient_email)
        sql_where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        total_row = await self._one(f"SELECT COUNT(*) AS n FROM email_history{sql_where}", params)
        rows = await self._all(
            f"SELECT {_HISTORY_LIST_COLUMNS} FROM email_history{sql_where}"
            " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return rows, int(total_row["n"]) if total_row else 0

    async def health(self) -> tuple[int, bool]:
        """(pending rows, whether SMTP settings exist) in one query, on the health connection."""
        rows = await self.database.probe.execute_fetchall(
            "SELECT (SELECT COUNT(*) FROM email_history WHERE status = 'pending') AS pending,"
            " EXISTS (SELECT 1 FROM smtp_configs) AS has_smtp"
        )
        row = next(iter(rows))
        return int(row["pending"]), bool(row["has_smtp"])

    async def count_pending(self) -> int:
        row = await self._one("SELECT COUNT(*) AS n FROM email_history WHERE status = 'pending'")
        return int(row["n"]) if row else 0

    async def due_ids(self, *, now: str, limit: int) -> list[int]:
        """Pending rows whose retry is due and whose lease is free, oldest due first."""
        rows = await self._all(
            "SELECT id FROM email_history WHERE status = 'pending'"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?) AND (locked_until IS NULL OR locked_until < ?)"
            " ORDER BY COALESCE(next_attempt_at, created_at), id LIMIT ?",
            (now, now, limit),
        )
        return [r["id"] for r in rows]

    async def claim(self, *, history_id: int, now: str, lease_until: str) -> bool:
        """Take the lease on a due pending row; True only for the one caller that changed it."""
        changed, _ = await self._write(
            "UPDATE email_history SET locked_until = ? WHERE id = ? AND status = 'pending'"
            " AND (locked_until IS NULL OR locked_until < ?) AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
            (lease_until, history_id, now, now),
        )
        return changed == 1

    async def record_attempt(self, *, history_id: int, values: Mapping[str, Any]) -> None:
        """Store an attempt's result and release the lease (only while the row is still pending)."""
        columns = list(values)
        await self._write(
            f"UPDATE email_history SET {', '.join(f'{c} = ?' for c in columns)}, locked_until = NULL"
            " WHERE id = ? AND status = 'pending'",
            [*(values[c] for c in columns), history_id],
        )
