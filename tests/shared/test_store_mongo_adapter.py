"""MongoDB adapter paths the contract suite cannot reach through a healthy server: an
unreachable server, and the translation of server errors. Runs over the mongomock facade
(a semantics check, not a server; see ``tests/shared/mongomock_facade.py``)."""

from __future__ import annotations

import pytest
from pymongo import errors

from shared.store import DuplicateKeyError, StoreError, StoreUnavailable, StoreValueError, UnsupportedQuery
from shared.store.mongo import MongoStore, _translate
from tests.shared.mongomock_facade import MongomockAsyncClient


async def test_unreachable_server(mongomock_client: type[MongomockAsyncClient]) -> None:
    store = MongoStore("mongodb://mongomock.invalid/?serverSelectionTimeoutMS=100", "down_db")
    await store.connect()
    try:
        assert await store.ping()
        assert store.db.client.options == {}  # the URI's own timeout is kept
        mongomock_client.down = True
        assert not await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.collection("things").find({})
        with pytest.raises(StoreUnavailable):
            await store.collection("things").insert_one({"a": 1})
    finally:
        mongomock_client.down = False
        await store.db.client.drop_database("down_db")
        await store.close()


async def test_default_server_selection_timeout(mongomock_client: type[MongomockAsyncClient]) -> None:
    store = MongoStore("mongodb://mongomock.invalid", "timeout_db")
    try:
        assert store.db.client.options == {"serverSelectionTimeoutMS": 5000}
    finally:
        await store.close()


def test_server_errors_become_store_errors() -> None:
    overflow = errors.WriteError(
        "Failed to apply $inc operations to current value ((NumberLong)9223372036854775807)", 2, {}
    )
    assert isinstance(_translate(overflow), StoreValueError)
    assert isinstance(
        _translate(errors.WriteError("Cannot apply $inc to a value of non-numeric type", 14, {})), UnsupportedQuery
    )
    other = _translate(errors.OperationFailure("something else", 8000))
    assert type(other) is StoreError
    duplicate = _translate(errors.DuplicateKeyError("E11000", 11000, {"keyPattern": {"email": 1}}))
    assert isinstance(duplicate, DuplicateKeyError) and duplicate.key == "email"
    bulk = _translate(
        errors.BulkWriteError({"writeErrors": [{"code": 11000, "errmsg": "E11000", "keyPattern": {"a": 1, "b": 1}}]})
    )
    assert isinstance(bulk, DuplicateKeyError) and bulk.key == "a,b"
    assert type(_translate(errors.BulkWriteError({"writeErrors": [{"code": 2}]}))) is StoreError
    assert isinstance(_translate(errors.AutoReconnect("gone")), StoreUnavailable)
