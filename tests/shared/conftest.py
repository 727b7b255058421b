"""The ``store`` fixture: every contract test runs once per document-store adapter."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.store import DocumentStore
from shared.store.mongo import MongoStore
from shared.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "mongo"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    """A connected, empty store: SQLite in ``tmp_path``, or a throwaway MongoDB database."""
    if request.param == "sqlite":
        adapter: DocumentStore = SqliteStore(tmp_path / "data" / "contract.sqlite3")
    else:
        uri = os.environ.get("MONGODB_URI")
        if not uri:
            pytest.skip("MONGODB_URI not set")
        adapter = MongoStore(uri, f"contract_{uuid.uuid4().hex[:12]}")
    await adapter.connect()
    try:
        yield adapter
    finally:
        if isinstance(adapter, MongoStore):
            await adapter.db.client.drop_database(adapter.db.name)
        await adapter.close()
