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
* Projections cut top-level fields in SQL (``json_remove``, or ``json_type``/``json_extract``
  per included field), so a field a read leaves out is never parsed into Python objects;
  nested paths are then shaped in Python.
* All writes go through one connection with a thread of its own, each in a ``BEGIN IMMEDIATE``
  transaction that runs there as one plain function (one hand-off per write, not one per
  statement): a conditional update selects, applies the update in Python
  (:func:`~shared.store.query.apply_update`) and writes back atomically. The thread runs one
  transaction at a time, in order. Reads use other connections, which WAL lets run
  alongside the writer.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal, TypeVar

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
_BUSY_TIMEOUT = "PRAGMA busy_timeout = 5000"
_WAL = "PRAGMA journal_mode = WAL"
_SYNCHRONOUS = "PRAGMA synchronous = NORMAL"
# A reader's page cache: 512 KiB instead of SQLite's 2 MiB. In WAL mode a reader drops its
# whole cache whenever another connection has written since its last read, so under writes a
# big one is refilled rather than reused; the OS page cache holds the file either way. (The
# products service in the soak: SQLite at 9.6 MB in use, 18 MB at its peak, with 2 MiB.)
_READER_CACHE = "PRAGMA cache_size = -512"
WAL_SWITCH_SECONDS = 5.0
"""How long opening a database waits for other processes while it switches the file to WAL."""
_T = TypeVar("_T")

Leaf = Callable[[str, str, str | None], str]
"""Builds an SQL test from a value expression, its ``json_type`` expression and the field's
dotted path (None for an array element, whose type is already at hand)."""


def _wal_busy(exc: sqlite3.OperationalError, deadline: float) -> bool:
    return "locked" in str(exc) and time.monotonic() < deadline


def enable_wal(conn: sqlite3.Connection) -> None:
    """Put ``conn``'s database in WAL mode, waiting while other processes hold the file.

    Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is
    locked" at once, without its busy handler, when several processes (uvicorn workers) open
    the file at the same moment: the switch is retried for up to :data:`WAL_SWITCH_SECONDS`.
    """
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            conn.execute(_WAL)
            return
        except sqlite3.OperationalError as exc:
            if not _wal_busy(exc, deadline):
                raise
            time.sleep(0.01)


async def enable_wal_async(conn: aiosqlite.Connection) -> None:
    """:func:`enable_wal` for an aiosqlite connection (the event loop is not held while it waits)."""
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            await conn.execute(_WAL)
            return
        except sqlite3.OperationalError as exc:
            if not _wal_busy(exc, deadline):
                raise
            await asyncio.sleep(0.01)


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


class _Call:
    __slots__ = ("abandoned",)

    def __init__(self) -> None:
        self.abandoned = False


class _Abandoned(Exception):
    """Raised on the writer thread to roll back a transaction whose caller was cancelled."""


class _Writer:
    """The write connection, on a thread of its own.

    :meth:`run` calls a plain function with the ``sqlite3`` connection on that thread, so a
    whole transaction (BEGIN, SELECT, registry rows, UPDATE, COMMIT) costs one hand-off
    instead of one per statement (each ≈ 0.7 ms on a loaded machine). One thread also
    serializes this process's write transactions without an asyncio lock, and keeps them
    queued back to back.
    """

    def __init__(self, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        self._executor = executor
        self._conn = conn
        self._current = _Call()  # the call running on the thread

    @classmethod
    async def open(cls, path: Path) -> _Writer:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, _connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, conn)

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(connection, *args)`` on the writer thread.

        A caller cancelled before the call starts skips it; one cancelled while it runs marks
        it abandoned, so a transaction there rolls back instead of committing (see
        :meth:`abandoned`), as when each statement was awaited. A COMMIT already under way
        completes."""
        call = _Call()

        def on_thread() -> _T:
            self._current = call
            return fn(self._conn, *args)

        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, on_thread)
        except RuntimeError as exc:  # the executor was shut down: the store is closed
            raise StoreUnavailable("the SQLite store is closed") from exc
        try:
            return await future
        except asyncio.CancelledError:
            call.abandoned = True
            raise

    def abandoned(self) -> bool:
        """On the writer thread: whether the caller of the running call has gone (cancelled)."""
        return self._current.abandoned

    async def close(self) -> None:
        try:
            await self.run(sqlite3.Connection.close)
        finally:
            self._executor.shutdown(wait=False)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(_BUSY_TIMEOUT)
        enable_wal(conn)
        conn.execute(_SYNCHRONOUS)
        conn.create_function("regexp_search", 3, _regexp_search, deterministic=True)
    except BaseException:
        conn.close()
        raise
    return conn


def _in_transaction(
    conn: sqlite3.Connection, work: Callable[..., _T], *args: Any, abandoned: Callable[[], bool] | None = None
) -> _T:
    """``work(conn, *args)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``; ROLLBACK when it raises
    or when ``abandoned()`` says so before the COMMIT."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn, *args)
        if abandoned is not None and abandoned():
            raise _Abandoned()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.OperationalError):
                conn.execute("ROLLBACK")
        raise
    return result


class SqliteStore(DocumentStore):
    """A document store in one SQLite file (WAL mode). Methods auto-connect on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer: _Writer | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = 0
        self._connect_lock = asyncio.Lock()
        self._shapes: dict[str, _Shapes] = {}
        # The registry is read and extended on the writer thread and on the event loop (reads
        # reloading it): extending it, and iterating its sets, happen under this lock.
        self._registry_lock = threading.Lock()
        self._writer_version: int | None = None  # the writer's PRAGMA data_version at its last registry load
        self._data_versions: dict[int, int] = {}  # id(reader) -> same, for the readers
        self._checked_at: dict[int, float] = {}  # id(reader) -> when data_version was last read
        self._tables: set[str] = set()
        self._grown: dict[str, int] = {}  # rows inserted since the collection's last ANALYZE
        self._analyzed: dict[str, int] = {}  # its row count at that ANALYZE
        self._stats_epoch = 0
        self._stats_changed = False  # an ANALYZE in the open write transaction
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
                writer = await _Writer.open(self.path)
                await writer.run(self._create_registry)
                readers = [await self._open() for _ in range(READERS)]
            except (OSError, sqlite3.Error) as exc:
                if writer is not None:
                    await writer.close()
                raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
            self._writer, self._readers = writer, readers

    @staticmethod
    def _create_registry(conn: sqlite3.Connection) -> None:
        """The registry table; files written before it tracked indexed paths only lose their rows once."""
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_META} (collection TEXT NOT NULL, array_path TEXT NOT NULL, "
            "PRIMARY KEY (collection, array_path)) WITHOUT ROWID"
        )
        marked = f"SELECT 1 FROM {_META} WHERE collection = ?"
        if conn.execute(marked, (_SHAPES_V4,)).fetchall():
            return

        def migrate(conn: sqlite3.Connection) -> None:
            if not conn.execute(marked, (_SHAPES_V4,)).fetchall():  # another process may have been first
                conn.execute(f"DELETE FROM {_META}")
                conn.execute(f"INSERT INTO {_META} VALUES (?, '')", (_SHAPES_V4,))

        _in_transaction(conn, migrate)

    async def _open(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute(_BUSY_TIMEOUT)
        await conn.execute(_READER_CACHE)
        await enable_wal_async(conn)
        await conn.execute(_SYNCHRONOUS)
        await conn.create_function("regexp_search", 3, _regexp_search, deterministic=True)
        return conn

    async def close(self) -> None:
        """Close both connections; a later call reconnects."""
        async with self._connect_lock:
            for conn in self._readers:
                await conn.close()
            if self._writer is not None:
                await self._writer.close()
            self._readers, self._writer = [], None
            self._reader_epochs.clear()
            self._data_versions.clear()
            self._checked_at.clear()
            self._tables.clear()
            self._writer_version = None

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
            table = f'CREATE TABLE IF NOT EXISTS "{name}" (id TEXT PRIMARY KEY, doc TEXT NOT NULL)'
            await self._write(lambda conn: conn.execute(table))
            self._tables.add(name)
        if self._reader_epochs.get(id(reader)) != self._stats_epoch:
            self._reader_epochs[id(reader)] = self._stats_epoch
            await reader.execute("ANALYZE sqlite_schema")  # load the writer's fresh statistics
        return reader

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(conn, *args)`` on the writer thread (see :class:`_Writer`)."""
        writer = self._writer
        if writer is None:
            raise StoreUnavailable("the SQLite store is closed")
        return await writer.run(fn, *args)

    async def _write(self, work: Callable[..., _T], *args: Any) -> _T:
        """``work(conn, *args)`` in one ``BEGIN IMMEDIATE`` transaction, in one call to the writer thread."""
        return await self._run(self._transaction, work, *args)

    def _transaction(self, conn: sqlite3.Connection, work: Callable[..., _T], *args: Any) -> _T:
        writer = self._writer
        try:
            result = _in_transaction(conn, work, *args, abandoned=writer.abandoned if writer else None)
        finally:
            changed, self._stats_changed = self._stats_changed, False
        if changed:  # only once committed, so no reader loads the statistics before they exist
            self._stats_epoch += 1
        return result

    async def _shapes_of(self, conn: aiosqlite.Connection, name: str) -> _Shapes:
        """The collection's shape registry for a read, reloaded when the database changed.

        This process records its own writes in memory as it makes them, so only other
        processes' writes need the ``data_version`` check: at most every
        ``REGISTRY_RECHECK_SECONDS`` on a read connection, where the check would otherwise cost
        a thread round trip per query (writes check on every transaction: :meth:`_writer_shapes`).
        """
        now = time.monotonic()
        if now - self._checked_at.get(id(conn), -REGISTRY_RECHECK_SECONDS) >= REGISTRY_RECHECK_SECONDS:
            self._checked_at[id(conn)] = now
            ((version,),) = await conn.execute_fetchall("PRAGMA data_version")
            if self._data_versions.get(id(conn)) != version:
                self._load_registry(await conn.execute_fetchall(f"SELECT collection, array_path FROM {_META}"))
                self._data_versions[id(conn)] = version
        return self._shapes.setdefault(name, _Shapes())

    def _writer_shapes(self, conn: sqlite3.Connection, name: str) -> _Shapes:
        """On the writer thread, inside the transaction: the registry, reloaded when another
        process changed the database (conditional updates must see every array path, and
        writes must record every path another process started tracking)."""
        ((version,),) = conn.execute("PRAGMA data_version").fetchall()
        if self._writer_version != version:
            self._load_registry(conn.execute(f"SELECT collection, array_path FROM {_META}").fetchall())
            self._writer_version = version
        return self._shapes.setdefault(name, _Shapes())

    def _load_registry(self, rows: Iterable[tuple[str, str]]) -> None:
        grouped: dict[str, list[str]] = {}
        for collection, entry in rows:
            grouped.setdefault(collection, []).append(entry)
        with self._registry_lock:
            for collection, entries in grouped.items():
                self._shapes.setdefault(collection, _Shapes()).add(entries)

    def _note_inserts(self, conn: sqlite3.Connection, name: str, count: int) -> None:
        """Refresh the collection's planner statistics when it has doubled since the last time."""
        grown = self._grown.get(name, 0) + count
        self._grown[name] = grown
        if grown >= max(_ANALYZE_FROM, self._analyzed.get(name, 0)):
            conn.execute(f'ANALYZE "{name}"')
            ((rows,),) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchall()
            self._analyzed[name], self._grown[name] = rows, 0
            self._stats_changed = True

    def _record_shapes(self, conn: sqlite3.Connection, name: str, shapes: _Shapes, docs: Sequence[Document]) -> None:
        """Record, inside the write transaction, the tracked paths' shapes in ``docs``."""
        if not shapes.trie or not docs:
            return
        with self._registry_lock:
            new = set().union(*(_shape_entries(doc, shapes.trie) for doc in docs)) - shapes.entries
        if new:
            conn.executemany(f"INSERT OR IGNORE INTO {_META} VALUES (?, ?)", [(name, p) for p in new])
            with self._registry_lock:
                shapes.add(new)

    def _track(self, conn: sqlite3.Connection, name: str, paths: Sequence[str]) -> set[str]:
        """Inside the write transaction: persist ``paths`` as tracked, with the shapes the
        collection already holds there (one scan per top-level field). Returns the registry
        rows to add in memory once the transaction has committed."""
        shapes = self._writer_shapes(conn, name)
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
            rows = conn.execute(
                f"SELECT {kind_sql}, CASE WHEN {kind_sql} IN ('array', 'object') THEN {_extract(top)} END "
                f'FROM "{name}" WHERE {kind_sql} IS NOT NULL GROUP BY 1, 2'
            ).fetchall()
            for kind, text in rows:
                value = json.loads(text) if text is not None else scalars[kind]
                found |= _shape_entries({top: value}, {top: child})
        entries = found | {f"{_TRACKED}{path}" for path in new}
        conn.executemany(f"INSERT OR IGNORE INTO {_META} VALUES (?, ?)", [(name, e) for e in entries])
        return entries


_JSON_SCALAR = {"true": True, "false": False, "null": None}


def _projected_columns(projection: Mapping[str, int] | None) -> tuple[str, Callable[[Sequence[Any]], Document]]:
    """The SELECT columns for a (validated) projection, and how to turn a row into a document.

    The projection's top-level fields are cut in SQL, so what a read leaves out (a product's
    long ``reservations`` array, say) is never parsed into Python objects: that parse, for
    every document of every page, is what made a process's memory grow with its data. Nested
    paths are then shaped by :func:`project` as before (it is idempotent on the cut document).
    """
    fields = {path: bool(flag) for path, flag in (projection or {}).items() if path != "_id"}
    keep_id = bool((projection or {}).get("_id", 1))
    if not projection or not (fields or not keep_id):
        if projection and keep_id:  # {"_id": 1}: ids come from the key, no document read or parse
            return "id", lambda row: {"_id": row[0]}
        return "doc", _parsed
    if not any(fields.values()):
        return _excluding(fields, keep_id)
    return _including(fields, keep_id)


def _parsed(row: Sequence[Any]) -> Document:
    return json.loads(row[0])


def _excluding(fields: Mapping[str, bool], keep_id: bool) -> tuple[str, Callable[[Sequence[Any]], Document]]:
    """An exclusion projection: its top-level fields are dropped in SQL."""
    dropped = [path for path in fields if "." not in path] + ([] if keep_id else ["_id"])
    paths = ", ".join(_json_path(None, [path]) for path in dropped)
    return (f"json_remove(doc, {paths})" if dropped else "doc"), _parsed


def _json_value(kind: str, value: Any) -> Any:
    """A top-level field's Python value from its ``json_type`` and ``json_extract``."""
    if kind in _JSON_SCALAR:
        return _JSON_SCALAR[kind]
    return json.loads(value) if kind in ("object", "array") else value


def _including(fields: Mapping[str, bool], keep_id: bool) -> tuple[str, Callable[[Sequence[Any]], Document]]:
    """An inclusion projection: each top-level field's JSON type and value (``json_extract``
    alone turns true into 1 and cannot tell a missing field from null)."""
    tops = list(dict.fromkeys(path.split(".")[0] for path in fields))
    columns = ["id"]
    for top in tops:
        path = _json_path(None, [top])
        columns += [f"json_type(doc, {path})", f"json_extract(doc, {path})"]

    def read(row: Sequence[Any]) -> Document:
        doc: Document = {"_id": row[0]} if keep_id else {}
        for k, top in enumerate(tops):
            kind = row[1 + 2 * k]
            if kind is not None:  # None: the field is missing
                doc[top] = _json_value(kind, row[2 + 2 * k])
        return doc

    return ", ".join(columns), read


def _duplicate_key(conn: sqlite3.Connection, exc: sqlite3.IntegrityError) -> Exception:
    """The :class:`DuplicateKeyError` for a UNIQUE failure, naming the index's field(s)."""
    message = str(exc)
    if "UNIQUE" not in message:
        return StoreError(message)
    index = re.search(r"index '(.+)'", message)
    if index is None:
        return DuplicateKeyError(message, key="_id")
    rows = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index[1],)).fetchall()
    fields = re.findall(r"'\$\.([A-Za-z0-9_.-]+)'", rows[0][0]) if rows else []
    return DuplicateKeyError(message, key=",".join(fields) or None)


def _write_rows(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    try:
        if len(rows) == 1:
            conn.execute(sql, rows[0])
        else:
            conn.executemany(sql, rows)
    except sqlite3.IntegrityError as exc:
        raise _duplicate_key(conn, exc) from exc


class SqliteCollection(Collection):
    """A collection stored as one SQLite table.

    Each write runs as one plain function on the writer thread (``_*_sync`` below: the whole
    transaction, registry bookkeeping included); reads go through the read connections.
    """

    def __init__(self, store: SqliteStore, name: str) -> None:
        self._store = store
        self.name = name
        self._table = f'"{name}"'

    async def _where(
        self, conn: aiosqlite.Connection, filter: Filter, shapes: _Shapes | None = None
    ) -> tuple[str, dict[str, Any]]:
        sql = _FilterSql(shapes or await self._store._shapes_of(conn, self.name))
        return sql.where(filter), sql.params

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
        await self._store._write(self._insert_sync, prepared)
        return [doc["_id"] for doc in prepared]

    def _insert_sync(self, conn: sqlite3.Connection, docs: Sequence[Document]) -> None:
        store = self._store
        shapes = store._writer_shapes(conn, self.name)
        store._record_shapes(conn, self.name, shapes, docs)
        rows = [(doc["_id"], _dumps(doc)) for doc in docs]
        _write_rows(conn, f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)", rows)
        store._note_inserts(conn, self.name, len(rows))

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
        columns, read = _projected_columns(projection)
        sql = f"SELECT {columns} FROM {self._table} WHERE {where}{_order_by(sort)} LIMIT :limit OFFSET :skip"
        rows = await conn.execute_fetchall(sql, {**params, "limit": limit or -1, "skip": skip})
        return [project(read(row), projection) for row in rows]

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
        return await self._store._write(self._update_sync, filter, update, upsert, many, sort)

    def _update_sync(
        self,
        conn: sqlite3.Connection,
        filter: Filter,
        update: Update,
        upsert: bool,
        many: bool,
        sort: SortSpec | None,
    ) -> tuple[list[tuple[Document, Document]], int, Document | None]:
        """Select, apply the update in Python and write back, inside the transaction."""
        store = self._store
        shapes = store._writer_shapes(conn, self.name)
        sql = _FilterSql(shapes)
        where = sql.where(filter)
        limit = "" if many else " LIMIT 1"
        select = f"SELECT doc FROM {self._table} WHERE {where}{_order_by(sort)}{limit}"
        rows = conn.execute(select, sql.params).fetchall()
        if not rows and upsert:
            doc = upsert_document(filter, update)
            store._record_shapes(conn, self.name, shapes, [doc])
            _write_rows(conn, f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)", [(doc["_id"], _dumps(doc))])
            store._note_inserts(conn, self.name, 1)
            return [], 0, doc
        pairs, changed = [], []
        for (text,) in rows:
            before = json.loads(text)
            after = apply_update(before, update, is_insert=False)
            pairs.append((before, after))
            new_text = _dumps(after)
            if new_text != text:
                changed.append((after, new_text))
        if changed:
            store._record_shapes(conn, self.name, shapes, [doc for doc, _ in changed])
            rows = [(new_text, doc["_id"]) for doc, new_text in changed]
            _write_rows(conn, f"UPDATE {self._table} SET doc = ? WHERE id = ?", rows)
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
        return await self._store._write(self._delete_sync, filter, limit)

    def _delete_sync(self, conn: sqlite3.Connection, filter: Filter, limit: str) -> int:
        sql = _FilterSql(self._store._writer_shapes(conn, self.name))
        where = sql.where(filter)
        cursor = conn.execute(
            f"DELETE FROM {self._table} WHERE id IN (SELECT id FROM {self._table} WHERE {where}{limit})", sql.params
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
        await self._store._ready(self.name)
        await self._store._run(self._create_index_sync, spec, unique, name)

    def _create_index_sync(
        self, conn: sqlite3.Connection, spec: list[tuple[str, int]], unique: bool, name: str
    ) -> None:
        store = self._store
        columns = ", ".join(f"{_extract(path)} {'DESC' if d < 0 else 'ASC'}" for path, d in spec)

        def create(conn: sqlite3.Connection) -> set[str]:
            try:
                conn.execute(
                    f'CREATE {"UNIQUE " if unique else ""}INDEX IF NOT EXISTS "{self.name}.{name}" '
                    f"ON {self._table} ({columns})"
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateKeyError(str(exc), key=",".join(path for path, _ in spec)) from exc
            conn.execute(f'ANALYZE "{self.name}.{name}"')
            store._stats_changed = True
            return store._track(conn, self.name, [path for path, _ in spec])

        tracked = store._transaction(conn, create)
        # Only once committed, and before the next write runs on this thread: shapes first,
        # then the tracked paths (see _Shapes.add).
        with store._registry_lock:
            store._shapes.setdefault(self.name, _Shapes()).add(tracked)
