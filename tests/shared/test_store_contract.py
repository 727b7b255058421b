"""The document-store contract: one suite, run against every adapter (``store`` fixture).

The last section holds SQLite-only checks (index use, the array-path registry, several
store instances on one file).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from shared.store import DocumentStore, DuplicateKeyError, StoreValueError, UnsupportedQuery, is_object_id
from shared.store.query import apply_update, matches, project
from shared.store.sqlite import SqliteStore
from tests.shared.conftest import MONGOMOCK_LEG

# Mixed shapes on purpose: "n" is an array in one document only, "items" is an array of
# subdocuments in some and a subdocument in another, booleans sit next to 0/1 numbers.
CORPUS: list[dict[str, Any]] = [
    {
        "_id": "d1",
        "name": "Alpha",
        "n": 1,
        "price": 10.5,
        "flag": True,
        "tags": ["a", "b"],
        "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 5}],
        "meta": {"color": "red", "size": 3},
    },
    {
        "_id": "d2",
        "name": "beta",
        "n": 2,
        "price": 20,
        "flag": False,
        "tags": ["b", "c"],
        "items": [{"sku": "y", "qty": 2}],
        "meta": {"color": "blue"},
    },
    {"_id": "d3", "name": "Gamma.x", "n": "2", "flag": 1, "tags": "a", "meta": {"color": None}},
    {"_id": "d4", "name": None, "n": 0, "price": -1, "tags": [], "items": [{"sku": "z"}], "meta": {}},
    {"_id": "d5", "n": 3.5, "flag": 0, "tags": ["c", 1, True], "items": {"sku": "x", "qty": 9}},
    {"_id": "d6", "name": "delta", "n": [1, 7], "price": "12"},
]

FILTER_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, {"d1", "d2", "d3", "d4", "d5", "d6"}),
    ({"name": "Alpha"}, {"d1"}),
    ({"n": 2}, {"d2"}),
    ({"n": "2"}, {"d3"}),
    ({"n": 1}, {"d1", "d6"}),
    ({"price": 20.0}, {"d2"}),
    ({"meta.size": {"$gte": 3}}, {"d1"}),
    ({"n": {"$eq": 0}}, {"d4"}),
    # comparisons stay within a type; on an array each operator may match a different element
    ({"n": {"$gt": 1}}, {"d2", "d5", "d6"}),
    ({"n": {"$gte": 2, "$lt": 3}}, {"d2", "d6"}),
    ({"n": {"$lte": 0}}, {"d4"}),
    ({"name": {"$gt": "B"}}, {"d2", "d3", "d6"}),
    ({"price": {"$lt": 15}}, {"d1", "d4"}),
    # booleans never equal numbers
    ({"flag": True}, {"d1"}),
    ({"flag": 1}, {"d3"}),
    ({"flag": 0}, {"d5"}),
    ({"flag": False}, {"d2"}),
    ({"flag": {"$in": [True, 0]}}, {"d1", "d5"}),
    ({"tags": True}, {"d5"}),
    # equality against arrays: any element
    ({"tags": "a"}, {"d1", "d3"}),
    ({"tags": 1}, {"d5"}),
    ({"tags": {"$in": ["c", "zz"]}}, {"d2", "d5"}),
    ({"tags": {"$ne": "b"}}, {"d3", "d4", "d5", "d6"}),
    ({"tags": {"$nin": ["a", "c"]}}, {"d4", "d6"}),
    ({"n": {"$nin": [1, 2]}}, {"d3", "d4", "d5"}),
    ({"items.sku": "y"}, {"d1", "d2"}),
    ({"items.sku": "x"}, {"d1", "d5"}),
    ({"items.qty": {"$gt": 4}}, {"d1", "d5"}),
    ({"items.sku": {"$ne": "y"}}, {"d3", "d4", "d5", "d6"}),
    # null matches null and missing; $exists tells them apart
    ({"items.qty": None}, {"d3", "d4", "d6"}),
    ({"items.qty": {"$exists": True}}, {"d1", "d2", "d5"}),
    ({"items.qty": {"$exists": False}}, {"d3", "d4", "d6"}),
    ({"price": {"$exists": False}}, {"d3", "d5"}),
    ({"tags": {"$exists": True}}, {"d1", "d2", "d3", "d4", "d5"}),
    ({"meta.color": None}, {"d3", "d4", "d5", "d6"}),
    ({"meta.color": {"$ne": None}}, {"d1", "d2"}),
    ({"meta.color": {"$exists": True}}, {"d1", "d2", "d3"}),
    ({"name": {"$in": [None, "beta"]}}, {"d2", "d4", "d5"}),
    # $regex: case-sensitive by default, "i" folds case, re.escape matches literally
    ({"name": {"$regex": "^[ab]"}}, {"d2"}),
    ({"name": {"$regex": "^[ab]", "$options": "i"}}, {"d1", "d2"}),
    ({"name": {"$regex": "."}}, {"d1", "d2", "d3", "d6"}),
    ({"name": {"$regex": re.escape(".")}}, {"d3"}),
    ({"tags": {"$regex": "^c"}}, {"d2", "d5"}),
    # logic
    ({"$or": [{"n": 0}, {"flag": True}]}, {"d1", "d4"}),
    ({"$and": [{"tags": "b"}, {"$or": [{"name": "beta"}, {"n": {"$gt": 5}}]}]}, {"d2"}),
    ({"$or": [{"items.sku": "z"}, {"$and": [{"price": {"$gte": 10}}, {"price": {"$lt": 20}}]}]}, {"d1", "d4"}),
    ({"_id": {"$in": ["d1", "d3", "nope"]}}, {"d1", "d3"}),
    ({"_id": {"$gt": "d4"}}, {"d5", "d6"}),
    ({"_id": {"$ne": "d1"}, "n": {"$exists": True}}, {"d2", "d3", "d4", "d5", "d6"}),
]


def _filter_paths(filter: dict[str, Any]) -> set[str]:
    paths: set[str] = set()
    for key, cond in filter.items():
        if key in ("$and", "$or"):
            for sub in cond:
                paths |= _filter_paths(sub)
        elif key != "_id":
            paths.add(key)
    return paths


INDEXED_PATHS = sorted(set().union(*(_filter_paths(f) for f, _ in FILTER_CASES)))


async def ids(cursor: Any) -> set[str]:
    return {doc["_id"] for doc in await cursor}


# --- reads --------------------------------------------------------------------------------


@pytest.mark.parametrize(("filter", "expected"), FILTER_CASES, ids=[str(f) for f, _ in FILTER_CASES])
async def test_filter_semantics(store: DocumentStore, filter: dict[str, Any], expected: set[str]) -> None:
    things = store.collection("things")
    await things.insert_many(CORPUS)
    assert await ids(things.find(filter)) == expected
    assert await things.count(filter) == len(expected)
    assert {d["_id"] for d in CORPUS if matches(d, filter)} == expected  # the Python reference agrees


@pytest.mark.parametrize("indexed", ["before-insert", "after-insert"])
async def test_filter_semantics_on_indexed_paths(
    store: DocumentStore, indexed: str, request: pytest.FixtureRequest
) -> None:
    """The same cases with every filtered path indexed: the SQLite adapter then tracks the
    paths' shapes and drops its array/type guards where they cannot matter."""
    cases = FILTER_CASES
    if request.node.callspec.params["store"] == MONGOMOCK_LEG:
        # mongomock compares booleans with numbers as Python does (True == 1); see conftest.
        cases = [(f, expected) for f, expected in cases if "flag" not in _filter_paths(f)]
    things = store.collection("things")
    if indexed == "before-insert":
        await things.insert_many(CORPUS)
    for path in INDEXED_PATHS:
        await things.create_index(path)
    if indexed == "after-insert":
        await things.insert_many(CORPUS)
    for filter, expected in cases:
        assert await ids(things.find(filter)) == expected, filter
        assert await things.count(filter) == len(expected), filter


async def test_insert_and_find_one(store: DocumentStore) -> None:
    things = store.collection("things")
    doc = {"name": "a", "nested": {"x": [1, {"y": "é"}]}, "f": 1.5, "none": None}
    new_id = await things.insert_one(doc)
    assert is_object_id(new_id) and "_id" not in doc
    assert await things.find_one({"_id": new_id}) == {"_id": new_id, **doc}
    assert await things.insert_one({"_id": "custom-1", "name": "b"}) == "custom-1"
    assert await things.find_one({"name": "b"}) == {"_id": "custom-1", "name": "b"}
    assert await things.find_one({"name": "zz"}) is None
    assert await store.collection("empty").find({}) == []
    assert await store.collection("empty").count() == 0


async def test_sort_skip_limit(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert_many(
        [
            {"_id": "a", "cat": "y", "rank": 1, "meta": {"w": 3}},
            {"_id": "b", "cat": "x", "rank": 2, "meta": {"w": 1}},
            {"_id": "c", "cat": "y", "rank": 3, "meta": {"w": 2}},
            {"_id": "d", "cat": "x", "rank": 1},
        ]
    )

    async def order(**kwargs: Any) -> list[str]:
        return [doc["_id"] for doc in await things.find({}, **kwargs)]

    assert await order(sort=[("cat", 1), ("rank", -1)]) == ["b", "d", "c", "a"]
    assert await order(sort=[("cat", -1), ("rank", 1)]) == ["a", "c", "d", "b"]
    assert await order(sort=[("meta.w", 1)]) == ["d", "b", "c", "a"]  # missing sorts first
    assert await order(sort=[("meta.w", -1)]) == ["a", "c", "b", "d"]
    assert await order(sort=[("_id", -1)], skip=1, limit=2) == ["c", "b"]
    assert await order(sort=[("_id", 1)], skip=3) == ["d"]
    assert await order(sort=[("_id", 1)], limit=1) == ["a"]
    first = await things.find_one({"cat": "y"}, sort=[("rank", -1)])
    assert first is not None and first["_id"] == "c"


async def test_projection(store: DocumentStore) -> None:
    things = store.collection("things")
    doc = {"_id": "p1", "a": 1, "b": {"c": 2, "d": 3}, "items": [{"x": 1, "y": 2}, {"x": 3}]}
    await things.insert_one(doc)
    cases: list[tuple[dict[str, int], dict[str, Any]]] = [
        ({"a": 1}, {"_id": "p1", "a": 1}),
        ({"a": 1, "_id": 0}, {"a": 1}),
        ({"b.c": 1}, {"_id": "p1", "b": {"c": 2}}),
        ({"items.x": 1, "_id": 0}, {"items": [{"x": 1}, {"x": 3}]}),
        ({"b": 0, "items": 0}, {"_id": "p1", "a": 1}),
        ({"b.d": 0, "_id": 0}, {"a": 1, "b": {"c": 2}, "items": doc["items"]}),
        ({"_id": 0}, {k: v for k, v in doc.items() if k != "_id"}),
    ]
    for projection, expected in cases:
        assert await things.find_one({"_id": "p1"}, projection=projection) == expected, projection
        assert project(doc, projection) == expected
    assert await things.find({}, projection={"a": 1}) == [{"_id": "p1", "a": 1}]
    assert await things.find({"a": 1}, projection={"_id": 1}) == [{"_id": "p1"}]


async def test_projection_keeps_every_json_type(store: DocumentStore) -> None:
    """A projection returns each field as stored: booleans stay booleans, null stays null and
    a missing field stays missing (the SQLite adapter cuts top-level fields in SQL)."""
    things = store.collection("things")
    doc = {
        "_id": "t1", "yes": True, "no": False, "none": None, "n": 3, "x": 2.5, "s": "ünï \"q\"",
        "num_text": "12", "obj": {"k": [1, True]}, "arr": [{"v": None}], "big": list(range(50)),
    }  # fmt: skip
    await things.insert_one(doc)
    include = {key: 1 for key in ("yes", "no", "none", "n", "x", "s", "num_text", "obj", "arr", "absent")}
    assert await things.find_one({"_id": "t1"}, projection=include) == {k: v for k, v in doc.items() if k != "big"}
    assert await things.find_one({"_id": "t1"}, projection={"big": 0, "absent": 0, "obj.k": 0}) == {
        **{k: v for k, v in doc.items() if k != "big"},
        "obj": {},
    }
    assert await things.find({"yes": True}, projection={"no": 1, "_id": 0}) == [{"no": False}]
    assert await things.find({}, projection={"absent": 1, "_id": 0}) == [{}]


# --- writes -------------------------------------------------------------------------------


async def test_update_operators(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert_one(
        {
            "_id": "u1",
            "n": 1,
            "label": "x",
            "tags": ["a", "b", "a"],
            "nums": [1, 5, 2, 8],
            "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 2}],
            "meta": {"a": 1, "keep": True},
        }
    )

    async def update(change: dict[str, Any]) -> dict[str, Any]:
        result = await things.update_one({"_id": "u1"}, change)
        assert (result.matched, result.modified, result.upserted_id) == (1, 1, None), change
        doc = await things.find_one({"_id": "u1"})
        assert doc is not None
        return doc

    doc = await update({"$set": {"meta.b.c": 5, "name": "x"}, "$unset": {"meta.a": ""}})
    assert doc["meta"] == {"keep": True, "b": {"c": 5}} and doc["name"] == "x"
    doc = await update({"$inc": {"n": 2, "fresh": 1.5}, "$setOnInsert": {"ignored": 1}})
    assert doc["n"] == 3 and doc["fresh"] == 1.5 and "ignored" not in doc
    doc = await update({"$inc": {"n": -3}})
    assert doc["n"] == 0
    doc = await update({"$push": {"tags": "c", "made": "v"}})
    assert doc["tags"] == ["a", "b", "a", "c"] and doc["made"] == ["v"]
    doc = await update({"$push": {"tags": {"$each": ["d", "e"]}}})
    assert doc["tags"] == ["a", "b", "a", "c", "d", "e"]
    doc = await update({"$pull": {"tags": "a", "items": {"sku": "x"}, "nums": {"$gte": 5}}})
    assert doc["tags"] == ["b", "c", "d", "e"]
    assert doc["items"] == [{"sku": "y", "qty": 2}] and doc["nums"] == [1, 2]
    doc = await update({"$set": {"items.0.qty": 7}})
    assert doc["items"] == [{"sku": "y", "qty": 7}]

    # paths that start holding arrays through an update are found by element
    await update({"$set": {"label": ["p", "q"]}})
    assert await ids(things.find({"label": "q"})) == {"u1"}
    assert await ids(things.find({"made": "v"})) == {"u1"}

    unchanged = await things.update_one({"_id": "u1"}, {"$set": {"n": 0}})
    assert (unchanged.matched, unchanged.modified) == (1, 0)
    missing = await things.update_one({"_id": "nope"}, {"$set": {"n": 1}})
    assert (missing.matched, missing.modified, missing.upserted_id) == (0, 0, None)


async def test_updates_that_do_not_fit_the_document(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert_one({"_id": "u1", "name": "x"})
    with pytest.raises(UnsupportedQuery):
        await things.update_one({"_id": "u1"}, {"$inc": {"name": 1}})
    with pytest.raises(UnsupportedQuery):
        await things.update_one({"_id": "u1"}, {"$push": {"name": "y"}})
    assert await things.find_one({"_id": "u1"}) == {"_id": "u1", "name": "x"}


def test_apply_update_leaves_input_alone() -> None:
    doc = {"_id": "a", "tags": ["x"], "m": {"k": 1}}
    new = apply_update(doc, {"$push": {"tags": "y"}, "$set": {"m.k": 2}}, is_insert=False)
    assert doc == {"_id": "a", "tags": ["x"], "m": {"k": 1}}
    assert new == {"_id": "a", "tags": ["x", "y"], "m": {"k": 2}}


async def test_update_many_and_deletes(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert_many([{"_id": str(i), "group": "even" if i % 2 == 0 else "odd", "v": i} for i in range(6)])
    result = await things.update_many({"group": "even"}, {"$set": {"seen": True}})
    assert (result.matched, result.modified) == (3, 3)
    assert await ids(things.find({"seen": True})) == {"0", "2", "4"}
    result = await things.update_many({"v": {"$gte": 4}}, {"$set": {"seen": True}})
    assert (result.matched, result.modified) == (2, 1)
    assert await things.delete_one({"group": "odd"}) == 1
    assert await things.count({"group": "odd"}) == 2
    assert await things.delete_one({"group": "nope"}) == 0
    assert await things.delete_many({"group": "even"}) == 3
    assert await things.count() == 2
    assert await things.delete_many({}) == 2


async def test_find_one_and_update(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert_many([{"_id": "a", "n": 1, "tag": "t"}, {"_id": "b", "n": 2, "tag": "t"}])
    after = await things.find_one_and_update({"tag": "t"}, {"$inc": {"n": 10}}, sort=[("n", -1)])
    assert after == {"_id": "b", "n": 12, "tag": "t"}
    before = await things.find_one_and_update(
        {"_id": "a"}, {"$set": {"n": 5}}, return_document="before", projection={"n": 1, "_id": 0}
    )
    assert before == {"n": 1}
    assert await things.find_one_and_update({"_id": "zz"}, {"$set": {"n": 1}}) is None


async def test_upserts(store: DocumentStore) -> None:
    carts = store.collection("carts")
    filter = {"userId": "u9", "meta.kind": {"$eq": "cart"}, "n": {"$gt": 0}}
    change = {"$set": {"items": []}, "$setOnInsert": {"created": "t0"}, "$inc": {"version": 1}}
    created = await carts.find_one_and_update(filter, change, upsert=True)
    assert created is not None and is_object_id(created["_id"])
    assert {k: v for k, v in created.items() if k != "_id"} == {
        "userId": "u9",
        "meta": {"kind": "cart"},
        "items": [],
        "created": "t0",
        "version": 1,
    }
    await carts.update_one({"_id": created["_id"]}, {"$set": {"n": 1}})
    again = await carts.find_one_and_update(filter, {**change, "$setOnInsert": {"created": "t1"}}, upsert=True)
    assert again is not None and again["_id"] == created["_id"]
    assert again["created"] == "t0" and again["version"] == 2
    assert await carts.find_one_and_update({"userId": "u8"}, change, upsert=True, return_document="before") is None
    assert await carts.count({"userId": "u8"}) == 1

    result = await carts.update_one({"_id": "cart-x"}, {"$set": {"v": 1}}, upsert=True)
    assert (result.matched, result.modified, result.upserted_id) == (0, 0, "cart-x")
    result = await carts.update_one({"userId": "u7"}, {"$set": {"v": 1}}, upsert=True)
    assert isinstance(result.upserted_id, str) and is_object_id(result.upserted_id)
    assert await carts.find_one({"_id": result.upserted_id}) == {"_id": result.upserted_id, "userId": "u7", "v": 1}


async def test_unique_indexes(store: DocumentStore) -> None:
    users = store.collection("users")
    await users.create_index("email", unique=True)
    await users.create_index("email", unique=True)  # idempotent
    await users.create_index([("shop", 1), ("sku", -1)], unique=True)
    await users.insert_many([{"_id": "a", "email": "a@x"}, {"_id": "b", "email": "b@x"}])
    await users.insert_many([{"_id": "c"}, {"_id": "d"}])  # missing fields never collide

    with pytest.raises(DuplicateKeyError) as caught:
        await users.insert_one({"email": "a@x"})
    assert caught.value.key == "email"
    with pytest.raises(DuplicateKeyError) as caught:
        await users.insert_one({"_id": "a"})
    assert caught.value.key == "_id"
    with pytest.raises(DuplicateKeyError) as caught:
        await users.update_one({"_id": "b"}, {"$set": {"email": "a@x"}})
    assert caught.value.key == "email"
    with pytest.raises(DuplicateKeyError):
        await users.find_one_and_update({"_id": "c"}, {"$set": {"email": "b@x"}})
    assert await users.find_one({"_id": "b"}) == {"_id": "b", "email": "b@x"}
    assert await users.find_one({"_id": "c"}) == {"_id": "c"}

    await users.insert_one({"shop": "s1", "sku": "k"})
    await users.insert_one({"shop": "s2", "sku": "k"})
    with pytest.raises(DuplicateKeyError) as caught:
        await users.insert_one({"shop": "s1", "sku": "k"})
    assert caught.value.key == "shop,sku"


async def test_insert_many_is_all_or_nothing(store: DocumentStore) -> None:
    users = store.collection("users")
    await users.create_index("email", unique=True)
    await users.insert_one({"_id": "a", "email": "a@x"})
    with pytest.raises(DuplicateKeyError):
        await users.insert_many([{"_id": "b", "email": "b@x"}, {"_id": "c", "email": "a@x"}, {"_id": "d"}])
    assert await ids(users.find({})) == {"a"}
    assert await users.insert_many([]) == []


async def test_concurrent_conditional_decrements(store: DocumentStore) -> None:
    counters = store.collection("counters")
    await counters.insert_one({"_id": "stock", "n": 50})
    results = await asyncio.gather(
        *(counters.find_one_and_update({"_id": "stock", "n": {"$gt": 0}}, {"$inc": {"n": -1}}) for _ in range(200))
    )
    assert sum(r is not None for r in results) == 50
    assert sorted(r["n"] for r in results if r is not None) == list(range(50))
    assert await counters.find_one({"_id": "stock"}) == {"_id": "stock", "n": 0}


# --- refusals -----------------------------------------------------------------------------

BAD_FILTERS: list[Any] = [
    {"$where": "this.a == 1"},
    {"$nor": [{"a": 1}]},
    {"a": {"$elemMatch": {"b": 1}}},
    {"a": {"$size": 1}},
    {"a": {"b": 1}},
    {"a": [1, 2]},
    {"a": {"$in": [[1]]}},
    {"a": {"$in": "x"}},
    {"a": datetime.now(UTC)},
    {"a": {"$in": [datetime.now(UTC)]}},
    {"a": ObjectId()},
    {"a": Decimal("1.5")},
    {"a": {"$gt": None}},
    {"a": {"$gt": True}},
    {"a": {"$exists": 1}},
    {"a": {"$regex": "x", "$options": "m"}},
    {"a": {"$options": "i"}},
    {"a": {"$regex": "("}},
    {"a": {"$eq": 1, "b": 2}},
    {"a..b": 1},
    {"a.0": 1},
    {"$and": []},
    {"$or": [1]},
]
BAD_UPDATES: list[Any] = [
    {"a": 1},
    {},
    {"$rename": {"a": "b"}},
    {"$set": {"a": 1}, "b": 2},
    {"$set": {"_id": "x"}},
    {"$set": {"$a": 1}},
    {"$set": {"a..b": 1}},
    {"$set": {"items.$.qty": 1}},
    {"$set": {"a": {"$b": 1}}},
    {"$set": {"a": datetime.now(UTC)}},
    {"$set": {"a": 1}, "$inc": {"a.b": 1}},
    {"$inc": {"a": "1"}},
    {"$inc": {"a": True}},
    {"$push": {"a": {"$each": [1], "$slice": 2}}},
    {"$pull": {"a": {"$where": "1"}}},
]
BAD_DOCS: list[Any] = [
    {"when": datetime.now(UTC)},
    {"price": Decimal("1.10")},
    {"ref": ObjectId()},
    {"_id": 5},
    {"a": {"$x": 1}},
    {"a.b": 1},
    {"v": float("nan")},
    {"t": (1, 2)},
]


@pytest.mark.parametrize("filter", BAD_FILTERS, ids=repr)
async def test_unsupported_filters(store: DocumentStore, filter: Any) -> None:
    things = store.collection("things")
    with pytest.raises(UnsupportedQuery):
        await things.find(filter)
    with pytest.raises(UnsupportedQuery):
        await things.update_one(filter, {"$set": {"x": 1}})


@pytest.mark.parametrize("update", BAD_UPDATES, ids=repr)
async def test_unsupported_updates(store: DocumentStore, update: Any) -> None:
    things = store.collection("things")
    await things.insert_one({"_id": "a", "a": 1})
    with pytest.raises(UnsupportedQuery):
        await things.update_one({"_id": "a"}, update)
    with pytest.raises(UnsupportedQuery):
        await things.find_one_and_update({"_id": "a"}, update)


@pytest.mark.parametrize("doc", BAD_DOCS, ids=repr)
async def test_documents_hold_json_only(store: DocumentStore, doc: Any) -> None:
    with pytest.raises(UnsupportedQuery):
        await store.collection("things").insert_one(doc)


async def test_bad_sort_projection_and_names(store: DocumentStore) -> None:
    things = store.collection("things")
    for kwargs in ({"sort": [("a", 2)]}, {"sort": "a"}, {"projection": {"a": 1, "b": 0}}, {"skip": -1}):
        with pytest.raises(UnsupportedQuery):
            await things.find({}, **kwargs)
    with pytest.raises(UnsupportedQuery):
        store.collection("bad-name")


async def test_odd_but_valid_calls(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.create_index("_id")  # the primary key: nothing to do
    await things.create_index([("_id", 1)], unique=True)
    with pytest.raises(UnsupportedQuery):
        await things.find_one_and_update({"_id": "a"}, {"$set": {"n": 1}}, return_document="sideways")  # type: ignore[arg-type]
    doc = await things.find_one_and_update({"_id": {"$eq": "pinned"}}, {"$set": {"n": 1}}, upsert=True)
    assert doc == {"_id": "pinned", "n": 1}
    result = await things.update_one({"_id": {"$eq": "pinned2"}}, {"$inc": {"n": 2}}, upsert=True)
    assert result.upserted_id == "pinned2"
    with pytest.raises(DuplicateKeyError):
        await things.insert_one({"_id": "pinned"})


async def test_ping_and_reconnect(store: DocumentStore) -> None:
    assert await store.ping()
    await store.collection("things").insert_one({"_id": "a"})
    await store.close()
    await store.connect()
    assert await store.collection("things").count() == 1


# --- hostile values (issue 10): refused with StoreValueError, nothing written ----------------

HOSTILE_VALUES: list[Any] = [
    2**63,
    -(2**63) - 1,
    10**20,
    float("inf"),
    float("nan"),
    "\ud800",
    "ok\udfffok",
    ["a", "\ud83d"],
    {"nested": 2**64},
    {"\ud800": 1},
    {"$where": 1},
    {"a.b": 1},
]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=repr)
async def test_hostile_values_are_refused(store: DocumentStore, value: Any) -> None:
    things = store.collection("things")
    await things.insert_one({"_id": "a", "n": 1})
    with pytest.raises(StoreValueError):
        await things.insert_one({"_id": "b", "v": value})
    with pytest.raises(StoreValueError):
        await things.insert_many([{"_id": "c"}, {"_id": "d", "v": {"deep": [value]}}])
    with pytest.raises(StoreValueError):
        await things.update_one({"_id": "a"}, {"$set": {"v": value}})
    with pytest.raises(StoreValueError):
        await things.update_one({"_id": "new"}, {"$setOnInsert": {"v": value}}, upsert=True)
    with pytest.raises(StoreValueError):
        await things.find_one_and_update({"_id": "a"}, {"$push": {"list": {"$each": [value]}}})
    if not isinstance(value, dict | list):  # filters take scalars only (UnsupportedQuery otherwise)
        with pytest.raises(StoreValueError):
            await things.find({"v": value})
        with pytest.raises(StoreValueError):
            await things.count({"v": {"$in": ["x", value]}})
        with pytest.raises(StoreValueError):
            await things.delete_many({"$or": [{"n": 1}, {"v": {"$ne": value}}]})
    assert await things.find({}) == [{"_id": "a", "n": 1}]


async def test_hostile_numbers_in_windows_paths_and_increments(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert_one({"_id": "a", "n": 2**63 - 1, "m": -(2**63), "f": 1.5e308})
    assert await things.find_one({"n": 2**63 - 1, "m": {"$lte": -(2**63)}}) is not None  # the bounds fit
    for window in ({"skip": 2**63}, {"limit": 2**64}):
        with pytest.raises(StoreValueError):
            await things.find({}, **window)
    with pytest.raises(StoreValueError):
        await things.update_one({"_id": "a"}, {"$inc": {"x": 2**63}})
    with pytest.raises(StoreValueError):
        await things.update_one({"_id": "a"}, {"$set": {"spec.\ud800": 1}})
    with pytest.raises(StoreValueError):
        await things.find({"name": {"$regex": "\ud800"}})
    assert await things.find_one({"_id": "a"}) == {"_id": "a", "n": 2**63 - 1, "m": -(2**63), "f": 1.5e308}


async def test_inc_overflow_is_refused(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert_one({"_id": "a", "n": 2**63 - 1, "m": -(2**63)})
    with pytest.raises(StoreValueError):  # MongoDB: "Failed to apply $inc operations" (int64 overflow)
        await things.update_one({"_id": "a"}, {"$inc": {"n": 1}})
    with pytest.raises(StoreValueError):
        await things.find_one_and_update({"_id": "a"}, {"$inc": {"m": -1}})
    assert await things.find_one({"_id": "a"}) == {"_id": "a", "n": 2**63 - 1, "m": -(2**63)}


@pytest.mark.parametrize("name", ["things\n", "things\r\n", "a b", ""])
async def test_names_and_paths_are_matched_whole(store: DocumentStore, name: str) -> None:
    """``$`` with ``re.match`` accepts a trailing newline; names and paths use fullmatch."""
    with pytest.raises(UnsupportedQuery):
        store.collection(name)
    things = store.collection("things")
    for path in (f"{name}", f"a.{name}"):
        with pytest.raises(UnsupportedQuery):
            await things.find({path: 1})
        with pytest.raises(UnsupportedQuery):
            await things.find({}, sort=[(path, 1)])
    assert not is_object_id("0123456789abcdef01234567\n")
    assert is_object_id("0123456789abcdef01234567")


# --- SQLite specifics ---------------------------------------------------------------------


async def test_sqlite_uses_expression_indexes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "shop.sqlite3")
    products = store.collection("products")
    await products.create_index([("category", 1), ("price", 1)])
    for start in (0, 600):  # 1,200 rows: enough for the adapter to ANALYZE the table
        await products.insert_many(
            [{"category": f"c{i % 5}", "price": i, "tags": ["t"]} for i in range(start, start + 600)]
        )
    statements: list[str] = []
    for reader in store._readers:
        await reader.set_trace_callback(statements.append)
    found = await products.find({"category": "c3", "price": {"$gte": 10}}, sort=[("price", 1)], limit=5)
    assert [doc["price"] for doc in found] == [13, 18, 23, 28, 33]
    assert await products.count({"category": "c3", "price": {"$gte": 10, "$lt": 100}}) == 18
    await store.close()

    (query,) = [s for s in statements if s.startswith("SELECT doc")]
    (count,) = [s for s in statements if s.startswith("SELECT count")]
    with sqlite3.connect(tmp_path / "shop.sqlite3") as conn:
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}"))
        count_plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {count}"))
        assert conn.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'products'").fetchone()[0] > 0
    assert "USING INDEX products.category_1_price_1" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
    # No json_type guard on fields that never held booleans or subdocuments: every term is
    # an index constraint, so the count never reads a document.
    assert "json_type" not in count and "(<expr>=? AND <expr>>? AND <expr><?)" in count_plan, count_plan


async def test_sqlite_registry_of_old_files_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    first = SqliteStore(path)
    await first.collection("things").insert_many([{"_id": "a", "flag": True}, {"_id": "b", "flag": 1}])
    await first.close()
    with sqlite3.connect(path) as conn:  # as a file written before booleans were registered
        conn.execute("DELETE FROM _store_meta")
    again = SqliteStore(path)
    assert await ids(again.collection("things").find({"flag": 1})) == {"b"}
    await again.close()


async def test_sqlite_array_registry_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    first = SqliteStore(path)
    await first.collection("posts").insert_one({"_id": "p", "tags": ["x", "y"], "items": [{"sku": "k"}]})
    await first.close()
    again = SqliteStore(path)
    posts = again.collection("posts")
    assert await ids(posts.find({"tags": "y"})) == {"p"}
    assert await ids(posts.find({"items.sku": "k"})) == {"p"}
    await again.close()


async def test_sqlite_store_instances_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    one, two = SqliteStore(path), SqliteStore(path)
    await one.connect()
    await two.connect()
    try:
        assert await two.collection("posts").count() == 0  # two has loaded its (empty) array registry
        await one.collection("posts").insert_one({"_id": "p", "tags": ["x", "y"]})
        assert await ids(two.collection("posts").find({"tags": "y"})) == {"p"}

        await one.collection("counters").insert_one({"_id": "c", "n": 30})
        decrement = ({"_id": "c", "n": {"$gt": 0}}, {"$inc": {"n": -1}})
        results = await asyncio.gather(
            *(s.collection("counters").find_one_and_update(*decrement) for s in [one, two] * 40)
        )
        assert sum(r is not None for r in results) == 30
        assert await two.collection("counters").find_one({"_id": "c"}) == {"_id": "c", "n": 0}
    finally:
        await one.close()
        await two.close()


async def test_long_in_lists(store: DocumentStore) -> None:
    things = store.collection("things")
    await things.insert_many([{"_id": f"t{i:03d}", "n": i, "s": f"v{i}", "tags": [f"g{i % 7}"]} for i in range(100)])
    wanted = [f"t{i:03d}" for i in range(0, 100, 3)] + ["missing"] * 5
    assert await ids(things.find({"_id": {"$in": wanted}})) == {f"t{i:03d}" for i in range(0, 100, 3)}
    numbers = list(range(50, 150)) + ["50", True]
    assert await things.count({"n": {"$in": numbers}}) == 50
    assert await things.count({"n": {"$nin": numbers}}) == 50
    assert await things.count({"s": {"$in": [f"v{i}" for i in range(20)] + [7]}}) == 20
    assert await things.count({"tags": {"$in": [f"g{i}" for i in range(3)] + [f"x{i}" for i in range(30)]}}) == 44


def _registry_rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT collection, array_path FROM _store_meta"))


async def test_sqlite_registry_ignores_free_form_keys(tmp_path: Path) -> None:
    """Issue 11: numbers, booleans, arrays and subdocuments under ever new keys (a product's
    ``specifications``) must not grow the shape registry, which every query reads."""
    path = tmp_path / "shop.sqlite3"
    store = SqliteStore(path)
    try:
        await _flood_with_free_form_keys(store, path)
    finally:
        await store.close()


async def _flood_with_free_form_keys(store: SqliteStore, path: Path) -> None:
    products = store.collection("products")
    await products.create_index([("status", 1), ("sellerActive", 1), ("priceCents", 1)])

    def product(n: int) -> dict[str, Any]:
        specs: dict[str, Any] = {f"n{n}_{k}": k for k in range(50)}
        specs |= {f"b{n}": n % 2 == 0, f"a{n}": [n, str(n)], f"o{n}": {"deep": n}}
        return {"_id": f"p{n:04d}", "status": "active", "sellerActive": True, "priceCents": n, "specifications": specs}

    await products.insert_one(product(0))
    rows, entries = _registry_rows(path), len(store._shapes["products"].entries)
    await products.insert_many([product(n) for n in range(1, 300)])
    for n in range(300, 400):  # updates that bring new keys, as PUT /products/:id can
        await products.update_one(
            {"_id": f"p{n % 300:04d}"}, {"$set": {"specifications": product(n)["specifications"]}}
        )
    assert _registry_rows(path) == rows
    assert len(store._shapes["products"].entries) == entries
    assert ("products", "#path specifications") not in rows and len(rows) <= 8, rows

    # Untracked paths are still matched with MongoDB's semantics.
    assert await ids(products.find({"specifications.n150_3": 3})) == {"p0150"}
    assert await ids(products.find({"specifications.n307_3": 3})) == {"p0007"}  # updated
    assert await ids(products.find({"specifications.b152": True})) == {"p0152"}
    assert await products.count({"specifications.b152": 1}) == 0
    assert await ids(products.find({"specifications.a153": "153"})) == {"p0153"}
    assert await ids(products.find({"specifications.o154.deep": {"$gte": 154, "$lt": 155}})) == {"p0154"}


async def test_sqlite_registry_of_older_versions_is_dropped(tmp_path: Path) -> None:
    """A file whose registry recorded every path is cleaned once on opening; indexes then
    track their paths again from what the collection holds."""
    path = tmp_path / "old.sqlite3"
    first = SqliteStore(path)
    await first.collection("things").insert_many(
        [{"_id": "a", "tags": ["x", "y"], "flag": True}, {"_id": "b", "flag": 1}]
    )
    await first.close()
    with sqlite3.connect(path) as conn:  # as an earlier version left it
        conn.execute("DELETE FROM _store_meta")
        conn.execute("INSERT INTO _store_meta VALUES ('#shapes-v3', '')")
        conn.executemany("INSERT INTO _store_meta VALUES ('things', ?)", [(f"#number spec.k{i}",) for i in range(500)])
    again = SqliteStore(path)
    things = again.collection("things")
    assert await ids(things.find({"flag": 1})) == {"b"}
    assert _registry_rows(path) == [("#shapes-v4", "")]
    await things.create_index("tags")
    await things.create_index("flag")
    assert await ids(things.find({"tags": "y"})) == {"a"}
    assert await ids(things.find({"flag": 1})) == {"b"}
    assert await ids(things.find({"flag": True})) == {"a"}
    await again.close()
    assert _registry_rows(path) == [
        ("#shapes-v4", ""),
        ("things", "#bool flag"),
        ("things", "#number flag"),
        ("things", "#path flag"),
        ("things", "#path tags"),
        ("things", "tags"),
    ]


async def test_sqlite_paths_tracked_by_one_instance_are_recorded_by_another(tmp_path: Path) -> None:
    path = tmp_path / "shop.sqlite3"
    one, two = SqliteStore(path), SqliteStore(path)
    try:
        await two.collection("posts").insert_one({"_id": "p1", "tags": "x"})  # two's registry is loaded
        await one.collection("posts").create_index("tags")  # one tracks "tags": no array there yet
        await two.collection("posts").insert_one({"_id": "p2", "tags": ["x", "y"]})
        assert await ids(one.collection("posts").find({"tags": "y"})) == {"p2"}
        assert await ids(one.collection("posts").find({"tags": "x"})) == {"p1", "p2"}
    finally:
        await one.close()
        await two.close()
