"""SQLite adapter: one table ``(id TEXT PRIMARY KEY, doc TEXT)`` of JSON documents per collection.

* Filters and sorts become SQL over ``json_extract(doc, '$.path')``: the exact expression
  :meth:`SqliteCollection.create_index` indexes, so the planner can use those indexes.
* MongoDB matches equality against an array field on any element, and ``json_extract`` turns
  true/false into 1/0 and returns arrays and objects as text. So a filter on a path that may
  hold an array tests each element through ``json_each``, and every comparison also checks
  ``json_type`` (``{"flag": True}`` never matches the number 1). Both defeat an index.
* The shape registry (``_store_meta``) is what lets indexed queries drop them: it *tracks*
  the fields of the collection's indexes (and their prefixes) only, and for those records
  where an array, a boolean, a number or a subdocument was stored. A tracked path with no
  array recorded is compared plainly; an untracked path is assumed to hold anything, which is
  always correct. So the registry is bounded by the indexes the code declares, never by
  document contents (issue 11: free-form keys such as ``specifications.<key>`` once grew it
  by a row per key and slowed every query), and building a query's translator reads it in
  O(1). ``create_index`` on a new path scans the collection once for that path's shapes;
  every write records the tracked paths' shapes in the same transaction. The registry only
  grows and is reloaded when another connection (or process) changed the database.
* Planner statistics: without them SQLite prefers an equality index over a range index that
  also serves the sort, which can be ten times slower at 100,000 documents. So a collection is
  ``ANALYZE``d each time it has doubled (from 1,000 rows) since its last analysis.
* All writes go through one connection, under an asyncio lock, each in a ``BEGIN IMMEDIATE``
  transaction: a conditional update selects, applies the update in Python
  (:func:`~shared.store.query.apply_update`) and writes back atomically. Reads use a second
  connection, which WAL lets run alongside the writer.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from shared.store.base import (
    Collection,
    Document,
    DocumentStore,
    DuplicateKeyError,
    Filter,
    IndexSpec,
    SortSpec,
    StoreError,
    StoreUnavailable,
    UnsupportedQuery,
    Update,
    UpdateResult,
)
from shared.store.query import (
    apply_update,
    check_collection_name,
    compile_regex,
    is_operator_dict,
    normalize_index,
    prepare_document,
    project,
    upsert_document,
    validate_filter,
    validate_projection,
    validate_sort,
    validate_update,
    validate_window,
)

__all__ = ["SqliteCollection", "SqliteStore"]

_META = "_store_meta"
_ANALYZE_FROM = 1000
_INDEX_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # fullmatch
_SQL_COMPARISON = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_TYPE_TEST = {
    "number": "{t} IN ('integer', 'real')",
    "text": "{t} = 'text'",
    "true": "{t} = 'true'",
    "false": "{t} = 'false'",
}

_BOOL, _NUMBER, _OBJECT, _TRACKED = "#bool ", "#number ", "#object ", "#path "
# Registry row saying only tracked (indexed) paths are recorded. Files without it were
# written by earlier versions, which recorded every path of every document: their rows are
# dropped once, and tracking restarts with the next create_index.
_SHAPES_V4 = "#shapes-v4"
READERS = 3
_LONG_IN = 16
REGISTRY_RECHECK_SECONDS = 1.0

Leaf = Callable[[str, str, str | None], str]
"""Builds an SQL test from a value expression, its ``json_type`` expression and the field's
dotted path (None for an array element, whose type is already at hand)."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "text" if isinstance(value, str) else "number"


def _dumps(doc: Document) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _json_path(base: str | None, segments: Sequence[str]) -> str:
    # Segments are validated ([A-Za-z0-9_-]), so they are safe inside an SQL string literal.
    suffix = "." + ".".join(segments)
    return f"'${suffix}'" if base is None else f"{base}.fullkey || '{suffix}'"


def _extract(path: str) -> str:
    """The SQL for a field's value; indexes and queries must use this exact expression."""
    return "id" if path == "_id" else f"json_extract(doc, {_json_path(None, path.split('.'))})"


def _order_by(sort: SortSpec | None) -> str:
    if not sort:
        return ""
    return " ORDER BY " + ", ".join(f"{_extract(p)} {'DESC' if d < 0 else 'ASC'}" for p, d in sort)


def _prefixes(path: str) -> list[str]:
    """``a.b.c`` → ``["a", "a.b", "a.b.c"]``."""
    segments = path.split(".")
    return [".".join(segments[:k]) for k in range(1, len(segments) + 1)]


Trie = dict[str, "Trie"]


def _shape_entries(value: Any, node: Trie, prefix: str = "") -> set[str]:
    """Registry entries for ``value`` along the tracked paths of ``node`` only: the dotted
    path (array positions left out) where an array is stored, and ``#bool <path>`` /
    ``#number <path>`` / ``#object <path>`` where a boolean, a number or a subdocument is.
    Cost and result are bounded by the tracked paths, whatever keys ``value`` holds."""
    found: set[str] = set()
    if isinstance(value, dict):
        if prefix:
            found.add(f"{_OBJECT}{prefix}")
        for key, child in node.items():
            if key in value:
                found |= _shape_entries(value[key], child, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        found.add(prefix)
        for item in value:
            found |= _shape_entries(item, node, prefix)
    elif isinstance(value, bool) and prefix:
        found.add(f"{_BOOL}{prefix}")
    elif isinstance(value, int | float) and prefix:
        found.add(f"{_NUMBER}{prefix}")
    return found


class _Shapes:
    """One collection's registry in memory: the tracked paths and, for those, what was stored.

    Entries are only ever added. A reader must never see a path tracked before its shapes
    are known, so :meth:`add` takes shapes first and callers add tracked paths last.
    """

    __slots__ = ("arrays", "bools", "entries", "numbers", "objects", "tracked", "trie")

    def __init__(self) -> None:
        self.entries: set[str] = set()
        self.tracked: set[str] = set()
        self.arrays: set[str] = set()
        self.bools: set[str] = set()
        self.numbers: set[str] = set()
        self.objects: set[str] = set()
        self.trie: Trie = {}

    def add(self, entries: Iterable[str]) -> None:
        """Record registry rows (shapes before tracked paths, whatever the input order)."""
        tracked = []
        for entry in entries:
            if entry in self.entries:
                continue
            if entry.startswith(_TRACKED):
                tracked.append(entry)
                continue
            self.entries.add(entry)
            if entry.startswith(_BOOL):
                self.bools.add(entry.removeprefix(_BOOL))
            elif entry.startswith(_NUMBER):
                self.numbers.add(entry.removeprefix(_NUMBER))
            elif entry.startswith(_OBJECT):
                self.objects.add(entry.removeprefix(_OBJECT))
            elif not entry.startswith("#"):
                self.arrays.add(entry)
        for entry in tracked:
            self.entries.add(entry)
            path = entry.removeprefix(_TRACKED)
            self.tracked.add(path)
            node = self.trie
            for segment in path.split("."):
                node = node.setdefault(segment, {})

    def maybe_array(self, path: str) -> bool:
        return path not in self.tracked or path in self.arrays

    def maybe_bool(self, path: str) -> bool:
        return path not in self.tracked or path in self.bools

    def maybe_number(self, path: str) -> bool:
        return path not in self.tracked or path in self.numbers

    def maybe_object(self, path: str) -> bool:
        return path not in self.tracked or path in self.objects


def _regexp_search(pattern: str, options: str, value: Any) -> bool:
    return isinstance(value, str) and compile_regex(pattern, options).search(value) is not None


class _FilterSql:
    """Translates one validated filter into a WHERE clause with named parameters."""

    def __init__(self, shapes: _Shapes) -> None:
        self.shapes = shapes
        self.params: dict[str, Any] = {}
        self._aliases = 0

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def where(self, filter: Filter) -> str:
        parts: list[str] = []
        for key, cond in filter.items():
            if key in ("$and", "$or"):
                joiner = " AND " if key == "$and" else " OR "
                parts.append("(" + joiner.join(f"({self.where(sub)})" for sub in cond) + ")")
            else:
                parts.extend(self._condition(key, cond))
        return " AND ".join(parts) or "1"

    def _condition(self, path: str, cond: Any) -> list[str]:
        ops = cond if is_operator_dict(cond) else {"$eq": cond}
        parts = []
        for op, arg in ops.items():
            if op in ("$eq", "$ne", "$in", "$nin"):
                sql = self._any(path, self._equals(arg if op in ("$in", "$nin") else [arg]))
                # A missing field makes the test NULL; it must count as false before negating.
                parts.append(f"NOT IFNULL({sql}, 0)" if op in ("$ne", "$nin") else sql)
            elif op == "$exists":
                sql = self._any(path, lambda v, t, _: f"{t} IS NOT NULL", expand_leaf=False)
                parts.append(sql if arg else f"NOT {sql}")
            elif op == "$regex":
                parts.append(self._any(path, self._regex(arg, ops.get("$options", ""))))
            elif op in _SQL_COMPARISON:
                parts.append(self._any(path, self._compare(_SQL_COMPARISON[op], arg)))
        return parts

    def _equals(self, values: Sequence[Any]) -> Leaf:
        null = any(v is None for v in values)
        groups: dict[str, list[Any]] = {}
        for v in values:
            if v is not None:
                groups.setdefault(_kind(v), []).append(int(v) if isinstance(v, bool) else v)
        # A long list travels as one JSON parameter (json_each yields SQL-typed values), not
        # one bound parameter per value; SQLite still probes the index for each.
        members = {
            kind: f"(SELECT value FROM json_each({self.bind(json.dumps(vs))}))"
            if len(vs) > _LONG_IN
            else "(" + ", ".join(self.bind(v) for v in vs) + ")"
            for kind, vs in groups.items()
        }

        def leaf(v: str, t: str, path: str | None) -> str:
            tests = [f"({t} IS NULL OR {t} = 'null')"] if null else []
            for kind, values in members.items():
                test = f"{v} IN {values}"
                if not self._exact(kind, groups[kind], path):
                    test += f" AND {_TYPE_TEST[kind].format(t=t)}"
                tests.append(f"({test})")
            return "(" + " OR ".join(tests) + ")" if tests else "0"

        return leaf

    def _exact(self, kind: str, values: Sequence[Any], path: str | None) -> bool:
        """True when ``json_extract = value`` alone cannot match another JSON type, so the
        ``json_type`` guard (which forces a row read, defeating index-only scans) can go.

        Subdocuments and arrays come out as JSON text starting with ``{``/``[``; booleans
        come out as 1/0, so booleans and numbers collide only where the registry saw both
        (or does not track the path)."""
        if path is None:
            return False
        if kind == "text":
            return not any(v[:1] in ("{", "[") for v in values)
        if kind == "number":
            return not self.shapes.maybe_bool(path) or not any(v in (0, 1) for v in values)
        return not self.shapes.maybe_number(path)  # a boolean: only a stored 1/0 number could collide

    def _regex(self, pattern: str, options: str) -> Leaf:
        pattern, options = self.bind(pattern), self.bind(options)
        return lambda v, t, _: f"({t} = 'text' AND regexp_search({pattern}, {options}, {v}))"

    def _compare(self, sql_op: str, value: Any) -> Leaf:
        param, kind = self.bind(value), _kind(value)
        type_test = _TYPE_TEST[kind]

        def leaf(v: str, t: str, path: str | None) -> str:
            # SQLite orders NULL < numbers < text, so a bound on the same expression keeps
            # the type (and the index range) where no boolean / subdocument was ever stored.
            if path is not None and kind == "number" and not self.shapes.maybe_bool(path):
                return f"({v} {sql_op} {param} AND {v} < '')"
            if path is not None and kind == "text" and not self.shapes.maybe_object(path):
                return f"({v} {sql_op} {param} AND {v} >= '')"
            return f"({v} {sql_op} {param} AND {type_test.format(t=t)})"

        return leaf

    def _any(self, path: str, leaf: Leaf, *, expand_leaf: bool = True) -> str:
        """SQL true when some value at ``path`` (array elements included) satisfies ``leaf``."""
        if path == "_id":
            return leaf("id", "'text'", "_id")
        return self._walk(None, path.split("."), [], leaf, expand_leaf, 1)

    def _walk(
        self, base: str | None, segments: list[str], done: list[str], leaf: Leaf, expand_leaf: bool, start: int
    ) -> str:
        # The first prefix that may hold arrays splits the test: documents holding an array
        # there test each element (recursively for the rest of the path), others go on as usual.
        last = len(segments) if expand_leaf else len(segments) - 1
        for k in range(start, last + 1):
            if not self.shapes.maybe_array(".".join(done + segments[:k])):
                continue
            array = _json_path(base, segments[:k])
            self._aliases += 1
            alias = f"j{self._aliases}"
            rest = segments[k:]
            inner = (
                self._walk(alias, rest, done + segments[:k], leaf, expand_leaf, 1)
                if rest
                else leaf(f"{alias}.value", f"{alias}.type", None)
            )
            other = self._walk(base, segments, done, leaf, expand_leaf, k + 1)
            return (
                f"(CASE WHEN json_type(doc, {array}) = 'array' THEN EXISTS "
                f"(SELECT 1 FROM json_each(doc, {array}) AS {alias} WHERE {inner}) ELSE {other} END)"
            )
        path = _json_path(base, segments)
        plain = ".".join(done + segments) if base is None else None
        return leaf(f"json_extract(doc, {path})", f"json_type(doc, {path})", plain)


class SqliteStore(DocumentStore):
    """A document store in one SQLite file (WAL mode). Methods auto-connect on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = 0
        self._write_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._shapes: dict[str, _Shapes] = {}
        self._data_versions: dict[int, int] = {}
        self._checked_at: dict[int, float] = {}  # id(connection) -> when data_version was last read
        self._tables: set[str] = set()
        self._grown: dict[str, int] = {}  # rows inserted since the collection's last ANALYZE
        self._analyzed: dict[str, int] = {}  # its row count at that ANALYZE
        self._stats_epoch = 0
        self._reader_epochs: dict[int, int] = {}  # id(reader) -> statistics epoch it has loaded

    def collection(self, name: str) -> SqliteCollection:
        """The collection called ``name``; its table is created on first use."""
        return SqliteCollection(self, check_collection_name(name))

    async def connect(self) -> None:
        """Open the write and read connections (creating the file and its directory)."""
        async with self._connect_lock:
            if self._writer is not None:
                return
            writer = None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                writer = await self._open()
                await writer.execute(
                    f"CREATE TABLE IF NOT EXISTS {_META} (collection TEXT NOT NULL, array_path TEXT NOT NULL, "
                    "PRIMARY KEY (collection, array_path)) WITHOUT ROWID"
                )
                await self._migrate_shapes(writer)
                readers = [await self._open() for _ in range(READERS)]
            except (OSError, sqlite3.Error) as exc:
                if writer is not None:
                    await writer.close()
                raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
            self._writer, self._readers = writer, readers

    async def _migrate_shapes(self, writer: aiosqlite.Connection) -> None:
        """Files written before the registry tracked indexed paths only: drop their rows once."""
        marked = f"SELECT 1 FROM {_META} WHERE collection = ?"
        if await writer.execute_fetchall(marked, (_SHAPES_V4,)):
            return
        await writer.execute("BEGIN IMMEDIATE")
        if not await writer.execute_fetchall(marked, (_SHAPES_V4,)):  # another process may have been first
            await writer.execute(f"DELETE FROM {_META}")
            await writer.execute(f"INSERT INTO {_META} VALUES (?, '')", (_SHAPES_V4,))
        await writer.execute("COMMIT")

    async def _open(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute("PRAGMA busy_timeout = 5000")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.create_function("regexp_search", 3, _regexp_search, deterministic=True)
        return conn

    async def close(self) -> None:
        """Close both connections; a later call reconnects."""
        async with self._connect_lock:
            for conn in [*self._readers, self._writer]:
                if conn is not None:
                    await conn.close()
            self._readers, self._writer = [], None
            self._reader_epochs.clear()
            self._data_versions.clear()
            self._checked_at.clear()
            self._tables.clear()

    async def ping(self) -> bool:
        """True when ``SELECT 1`` answers."""
        try:
            conn = await self._read_conn()
            await conn.execute_fetchall("SELECT 1")
        except (StoreError, sqlite3.Error):
            return False
        return True

    async def _read_conn(self) -> aiosqlite.Connection:
        if not self._readers:
            await self.connect()
        # Round robin: each connection has its own thread, and SQLite releases the GIL while
        # it works, so concurrent reads run side by side instead of queuing on one thread.
        self._next_reader = (self._next_reader + 1) % len(self._readers)
        return self._readers[self._next_reader]

    async def _ready(self, name: str) -> aiosqlite.Connection:
        """The read connection, once ``name``'s table exists."""
        reader = await self._read_conn()
        if name not in self._tables:
            async with self._transaction() as conn:
                await conn.execute(f'CREATE TABLE IF NOT EXISTS "{name}" (id TEXT PRIMARY KEY, doc TEXT NOT NULL)')
            self._tables.add(name)
        if self._reader_epochs.get(id(reader)) != self._stats_epoch:
            self._reader_epochs[id(reader)] = self._stats_epoch
            await reader.execute("ANALYZE sqlite_schema")  # load the writer's fresh statistics
        return reader

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The write connection inside ``BEGIN IMMEDIATE``, holding the write lock."""
        async with self._write_lock:
            conn = self._writer
            if conn is None:
                raise StoreUnavailable("the SQLite store is closed")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                await conn.execute("COMMIT")
            except BaseException:
                # A cancelled COMMIT may still complete on aiosqlite's thread; then there is nothing to undo.
                if conn.in_transaction:
                    with suppress(sqlite3.OperationalError):
                        await conn.execute("ROLLBACK")
                raise

    async def _shapes_of(self, conn: aiosqlite.Connection, name: str) -> _Shapes:
        """The collection's shape registry, reloaded when another process changed the database.

        This process records its own writes in memory as it makes them, so only other
        processes' writes need the ``data_version`` check: always on the write connection
        (conditional updates must see every array path, and writes must record every path
        another process started tracking), at most every ``REGISTRY_RECHECK_SECONDS`` on a
        read connection, where the check would otherwise cost a thread round trip per query.
        """
        now = time.monotonic()
        if conn is self._writer or now - self._checked_at.get(id(conn), -REGISTRY_RECHECK_SECONDS) >= (
            REGISTRY_RECHECK_SECONDS
        ):
            self._checked_at[id(conn)] = now
            ((version,),) = await conn.execute_fetchall("PRAGMA data_version")
            if self._data_versions.get(id(conn)) != version:
                rows: dict[str, list[str]] = {}
                for collection, entry in await conn.execute_fetchall(f"SELECT collection, array_path FROM {_META}"):
                    rows.setdefault(collection, []).append(entry)
                for collection, entries in rows.items():
                    self._shapes.setdefault(collection, _Shapes()).add(entries)
                self._data_versions[id(conn)] = version
        return self._shapes.setdefault(name, _Shapes())

    async def _note_inserts(self, conn: aiosqlite.Connection, name: str, count: int) -> None:
        """Refresh the collection's planner statistics when it has doubled since the last time."""
        grown = self._grown.get(name, 0) + count
        self._grown[name] = grown
        if grown >= max(_ANALYZE_FROM, self._analyzed.get(name, 0)):
            await conn.execute(f'ANALYZE "{name}"')
            ((rows,),) = await conn.execute_fetchall(f'SELECT count(*) FROM "{name}"')
            self._analyzed[name], self._grown[name] = rows, 0
            self._stats_epoch += 1

    async def _record_shapes(
        self, conn: aiosqlite.Connection, name: str, shapes: _Shapes, docs: Sequence[Document]
    ) -> None:
        """Record, inside the write transaction, the tracked paths' shapes in ``docs``."""
        if not shapes.trie or not docs:
            return
        new = set().union(*(_shape_entries(doc, shapes.trie) for doc in docs)) - shapes.entries
        if new:
            await conn.executemany(f"INSERT OR IGNORE INTO {_META} VALUES (?, ?)", [(name, p) for p in new])
            shapes.add(new)

    async def _track(self, conn: aiosqlite.Connection, name: str, paths: Sequence[str]) -> set[str]:
        """Inside the write transaction: persist ``paths`` as tracked, with the shapes the
        collection already holds there (one scan per top-level field). Returns the registry
        rows to add in memory once the transaction has committed."""
        shapes = await self._shapes_of(conn, name)
        new = sorted({prefix for path in paths for prefix in _prefixes(path)} - shapes.tracked)
        if not new:
            return set()
        trie: Trie = {}
        for path in new:
            node = trie
            for segment in path.split("."):
                node = node.setdefault(segment, {})
        found: set[str] = set()
        scalars = {"true": True, "false": False, "integer": 0, "real": 0.0, "text": "", "null": None}
        for top, child in trie.items():
            kind_sql = f"json_type(doc, {_json_path(None, [top])})"
            rows = await conn.execute_fetchall(
                f"SELECT {kind_sql}, CASE WHEN {kind_sql} IN ('array', 'object') THEN {_extract(top)} END "
                f'FROM "{name}" WHERE {kind_sql} IS NOT NULL GROUP BY 1, 2'
            )
            for kind, text in rows:
                value = json.loads(text) if text is not None else scalars[kind]
                found |= _shape_entries({top: value}, {top: child})
        entries = found | {f"{_TRACKED}{path}" for path in new}
        await conn.executemany(f"INSERT OR IGNORE INTO {_META} VALUES (?, ?)", [(name, e) for e in entries])
        return entries


async def _duplicate_key(conn: aiosqlite.Connection, exc: sqlite3.IntegrityError) -> Exception:
    """The :class:`DuplicateKeyError` for a UNIQUE failure, naming the index's field(s)."""
    message = str(exc)
    if "UNIQUE" not in message:
        return StoreError(message)
    index = re.search(r"index '(.+)'", message)
    if index is None:
        return DuplicateKeyError(message, key="_id")
    rows = await conn.execute_fetchall("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index[1],))
    fields = re.findall(r"'\$\.([A-Za-z0-9_.-]+)'", rows[0][0]) if rows else []
    return DuplicateKeyError(message, key=",".join(fields) or None)


class SqliteCollection(Collection):
    """A collection stored as one SQLite table."""

    def __init__(self, store: SqliteStore, name: str) -> None:
        self._store = store
        self.name = name
        self._table = f'"{name}"'

    async def _where(
        self, conn: aiosqlite.Connection, filter: Filter, shapes: _Shapes | None = None
    ) -> tuple[str, dict[str, Any]]:
        sql = _FilterSql(shapes or await self._store._shapes_of(conn, self.name))
        return sql.where(filter), sql.params

    async def _write(self, conn: aiosqlite.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise await _duplicate_key(conn, exc) from exc

    async def insert_one(self, doc: Document) -> str:
        """Insert ``doc`` (an ``_id`` is generated when absent) and return its ``_id``."""
        (doc_id,) = await self.insert_many([doc])
        return doc_id

    async def insert_many(self, docs: Sequence[Document]) -> list[str]:
        """Insert all ``docs`` in one transaction (all or none) and return their ids."""
        prepared = [prepare_document(doc) for doc in docs]
        if not prepared:
            return []
        await self._store._ready(self.name)
        async with self._store._transaction() as conn:
            shapes = await self._store._shapes_of(conn, self.name)
            await self._store._record_shapes(conn, self.name, shapes, prepared)
            rows = [(doc["_id"], _dumps(doc)) for doc in prepared]
            await self._write(conn, f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)", rows)
            await self._store._note_inserts(conn, self.name, len(rows))
        return [doc["_id"] for doc in prepared]

    async def find(
        self,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int = 0,
        projection: Mapping[str, int] | None = None,
    ) -> list[Document]:
        """Matching documents; ``limit=0`` means no limit."""
        filter = filter or {}
        validate_filter(filter)
        validate_sort(sort)
        validate_window(skip, limit)
        validate_projection(projection)
        conn = await self._store._ready(self.name)
        where, params = await self._where(conn, filter)
        ids_only = projection is not None and dict(projection) == {"_id": 1}
        column = "id" if ids_only else "doc"  # ids alone come from the key: no document read or parse
        sql = f"SELECT {column} FROM {self._table} WHERE {where}{_order_by(sort)} LIMIT :limit OFFSET :skip"
        rows = await conn.execute_fetchall(sql, {**params, "limit": limit or -1, "skip": skip})
        if ids_only:
            return [{"_id": value} for (value,) in rows]
        return [project(json.loads(text), projection) for (text,) in rows]

    async def count(self, filter: Filter | None = None) -> int:
        """How many documents match."""
        filter = filter or {}
        validate_filter(filter)
        conn = await self._store._ready(self.name)
        where, params = await self._where(conn, filter)
        ((n,),) = await conn.execute_fetchall(f"SELECT count(*) FROM {self._table} WHERE {where}", params)
        return n

    async def _update(
        self, filter: Filter, update: Update, *, upsert: bool, many: bool, sort: SortSpec | None = None
    ) -> tuple[list[tuple[Document, Document]], int, Document | None]:
        """Apply ``update`` atomically: (before, after) pairs, how many changed, the upserted doc."""
        validate_filter(filter)
        validate_update(update)
        validate_sort(sort)
        await self._store._ready(self.name)
        async with self._store._transaction() as conn:
            shapes = await self._store._shapes_of(conn, self.name)
            where, params = await self._where(conn, filter, shapes)
            limit = "" if many else " LIMIT 1"
            rows = await conn.execute_fetchall(
                f"SELECT doc FROM {self._table} WHERE {where}{_order_by(sort)}{limit}", params
            )
            if not rows and upsert:
                doc = upsert_document(filter, update)
                await self._store._record_shapes(conn, self.name, shapes, [doc])
                await self._write(
                    conn, f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)", [(doc["_id"], _dumps(doc))]
                )
                await self._store._note_inserts(conn, self.name, 1)
                return [], 0, doc
            pairs, changed = [], []
            for (text,) in rows:
                before = json.loads(text)
                after = apply_update(before, update, is_insert=False)
                pairs.append((before, after))
                new_text = _dumps(after)
                if new_text != text:
                    changed.append((after, new_text))
            await self._store._record_shapes(conn, self.name, shapes, [doc for doc, _ in changed])
            rows = [(new_text, doc["_id"]) for doc, new_text in changed]
            await self._write(conn, f"UPDATE {self._table} SET doc = ? WHERE id = ?", rows)
        return pairs, len(changed), None

    async def update_one(self, filter: Filter, update: Update, *, upsert: bool = False) -> UpdateResult:
        """Apply ``update`` to the first match (atomically), inserting when ``upsert`` and none."""
        pairs, modified, upserted = await self._update(filter, update, upsert=upsert, many=False)
        return UpdateResult(len(pairs), modified, upserted["_id"] if upserted else None)

    async def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        """Apply ``update`` to every match, in one transaction."""
        pairs, modified, _ = await self._update(filter, update, upsert=False, many=True)
        return UpdateResult(len(pairs), modified)

    async def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        *,
        return_document: Literal["before", "after"] = "after",
        upsert: bool = False,
        sort: SortSpec | None = None,
        projection: Mapping[str, int] | None = None,
    ) -> Document | None:
        """Atomically update the first match and return it as it was ``before`` or is ``after``."""
        if return_document not in ("before", "after"):
            raise UnsupportedQuery("return_document is 'before' or 'after'")
        validate_projection(projection)
        pairs, _, upserted = await self._update(filter, update, upsert=upsert, many=False, sort=sort)
        if upserted is not None:
            return project(upserted, projection) if return_document == "after" else None
        if not pairs:
            return None
        before, after = pairs[0]
        return project(after if return_document == "after" else before, projection)

    async def delete_one(self, filter: Filter) -> int:
        """Delete the first match; return 1 or 0."""
        return await self._delete(filter, " LIMIT 1")

    async def delete_many(self, filter: Filter) -> int:
        """Delete every match; return how many."""
        return await self._delete(filter, "")

    async def _delete(self, filter: Filter, limit: str) -> int:
        validate_filter(filter)
        await self._store._ready(self.name)
        async with self._store._transaction() as conn:
            where, params = await self._where(conn, filter)
            cursor = await conn.execute(
                f"DELETE FROM {self._table} WHERE id IN (SELECT id FROM {self._table} WHERE {where}{limit})", params
            )
            return cursor.rowcount

    async def create_index(self, fields: IndexSpec, *, unique: bool = False, name: str | None = None) -> None:
        """Create an expression index (idempotent); a UNIQUE one ignores documents missing a field.

        Index names are per database in SQLite, so they are prefixed with the collection name.
        """
        spec = normalize_index(fields)
        if [path for path, _ in spec] == ["_id"]:
            return  # the primary key
        name = name or "_".join(f"{path}_{direction}" for path, direction in spec)
        if not _INDEX_NAME.fullmatch(name):
            raise UnsupportedQuery(f"invalid index name {name!r}")
        columns = ", ".join(f"{_extract(path)} {'DESC' if d < 0 else 'ASC'}" for path, d in spec)
        await self._store._ready(self.name)
        async with self._store._transaction() as conn:
            try:
                await conn.execute(
                    f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{self.name}.{name}" '
                    f"ON {self._table} ({columns})"
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateKeyError(str(exc), key=",".join(path for path, _ in spec)) from exc
            await conn.execute(f'ANALYZE "{self.name}.{name}"')
            self._store._stats_epoch += 1
            tracked = await self._store._track(conn, self.name, [path for path, _ in spec])
        # Only once committed, and before any other write of this process can run (no await
        # since the commit): shapes first, then the tracked paths (see _Shapes.add).
        self._store._shapes.setdefault(self.name, _Shapes()).add(tracked)
