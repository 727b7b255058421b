"""The cause of the flaky two-worker test: statements of one connection interleaving.

A read left open between two jobs on an aiosqlite connection keeps a read transaction open; a
write queued behind it must upgrade it, which SQLite refuses at once ("database is locked")
when another connection committed meanwhile. Each read now runs as one job."""

from __future__ import annotations

import asyncio

from notifications.db import Database, now_text
from notifications.repository import Repository


async def test_two_connections_with_interleaved_reads_and_writes(tmp_path):
    first, second = Database(tmp_path / "n.db"), Database(tmp_path / "n.db")
    await first.open()
    await second.open()
    try:
        one, two = Repository(first), Repository(second)
        ids = [
            await one.insert_history(
                values={
                    "template_code": "t",
                    "recipient_email": f"a{i}@example.com",
                    "message_id": f"<{i}@x>",
                    "created_at": now_text(),
                    "updated_at": now_text(),
                }
            )
            for i in range(20)
        ]

        async def churn(repo: Repository, rounds: int) -> None:
            for k in range(rounds):
                history_id = ids[k % len(ids)]
                await asyncio.gather(
                    repo.get_history(history_id=history_id),
                    repo.record_attempt(history_id=history_id, values={"attempts": k}),
                    repo.list_templates(),
                    repo.claim(history_id=history_id, now="2100-01-01 00:00:00", lease_until="2000-01-01 00:00:00"),
                    repo.health(),
                )

        await asyncio.gather(churn(one, 300), churn(two, 300))
    finally:
        await first.close()
        await second.close()
