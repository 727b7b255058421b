"""The ``store`` fixture: every contract test runs once per document-store adapter.

* ``sqlite``: the embedded adapter in ``tmp_path``.
* ``mongo``: a throwaway database on a real server, when ``MONGODB_URI`` is set.
* ``mongomock-semantics``: the MongoDB adapter's own code over ``mongomock`` behind a thin
  async facade (``tests/shared/mongomock_facade.py``). A semantics check, not a server:
  it runs in CI where no MongoDB can be installed. Tests mongomock cannot express are
  skipped on this leg only, each with its reason (:data:`MONGOMOCK_CANNOT`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.store import DocumentStore
from shared.store.mongo import MongoStore
from shared.store.sqlite import SqliteStore
from tests.shared.mongomock_facade import MongomockAsyncClient

MONGOMOCK_LEG = "mongomock-semantics"

# Contract tests (by node-id fragment) whose behaviour mongomock does not reproduce.
_BOOLEANS = "booleans equal the numbers 1/0 (Python's True == 1); in MongoDB they are distinct BSON types"
MONGOMOCK_CANNOT: dict[str, str] = {
    f"test_filter_semantics[{MONGOMOCK_LEG}-{{'flag'": _BOOLEANS,
    f"test_filter_semantics[{MONGOMOCK_LEG}-{{'$or': [{{'n': 0}}, {{'flag': True}}]}}]": _BOOLEANS,
    f"test_long_in_lists[{MONGOMOCK_LEG}]": _BOOLEANS,
    f"test_updates_that_do_not_fit_the_document[{MONGOMOCK_LEG}]": (
        "$inc on a string raises Python's TypeError, not a write error (code 14 TypeMismatch)"
    ),
    f"test_unique_indexes[{MONGOMOCK_LEG}]": "its duplicate-key errors carry no keyPattern, so the index is not named",
    f"test_inc_overflow_is_refused[{MONGOMOCK_LEG}]": "$inc adds Python integers: no int64 overflow error",
}


@pytest.fixture
def mongomock_client(monkeypatch: pytest.MonkeyPatch) -> type[MongomockAsyncClient]:
    """``shared.store.mongo`` with pymongo's ``AsyncMongoClient`` replaced by the facade."""
    monkeypatch.setattr("shared.store.mongo.AsyncMongoClient", MongomockAsyncClient)
    monkeypatch.setattr(MongomockAsyncClient, "down", False)
    return MongomockAsyncClient


@pytest.fixture(params=["sqlite", "mongo", MONGOMOCK_LEG])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    """A connected, empty store: SQLite in ``tmp_path``, a throwaway MongoDB database, or the
    MongoDB adapter over mongomock."""
    if request.param == "sqlite":
        adapter: DocumentStore = SqliteStore(tmp_path / "data" / "contract.sqlite3")
    elif request.param == "mongo":
        uri = os.environ.get("MONGODB_URI")
        if not uri:
            pytest.skip("MONGODB_URI not set")
        adapter = MongoStore(uri, f"contract_{uuid.uuid4().hex[:12]}")
    else:
        for fragment, reason in MONGOMOCK_CANNOT.items():
            if fragment in request.node.nodeid:
                pytest.skip(f"mongomock cannot express this: {reason}")
        request.getfixturevalue("mongomock_client")
        adapter = MongoStore("mongodb://mongomock.invalid", f"contract_{uuid.uuid4().hex[:12]}")
    await adapter.connect()
    try:
        yield adapter
    finally:
        if isinstance(adapter, MongoStore):
            await adapter.db.client.drop_database(adapter.db.name)
        await adapter.close()
