"""The supported query subset: validation, plus MongoDB semantics in pure Python.

Every adapter validates filters, updates, sorts and projections here first, so anything
outside the subset fails with :class:`UnsupportedQuery` the same way everywhere.
:func:`matches`, :func:`apply_update` and :func:`project` are the reference semantics: the
SQLite adapter applies updates and projections with them, and its SQL translation of
filters is tested against :func:`matches`.

Deliberate limits beyond the operator list (each refused with a clear message):

* Filter values are JSON scalars. A dict value (exact-subdocument equality) or a list value
  (whole-array equality) is refused: filter on dotted paths or on an element instead.
* ``$gt``/``$gte``/``$lt``/``$lte`` take a number or a string, and like MongoDB compare only
  within a type: numbers with numbers, strings with strings. Booleans never equal numbers.
* Filter, sort, index and projection paths are dotted segments of ``[A-Za-z0-9_-]``, none
  purely numeric (array positions are not supported there; updates do accept ``items.0.qty``).
* Document keys are strings that neither start with ``$`` nor contain ``.``; ``_id`` is a string.
* Values a client can send but no document can hold raise :class:`StoreValueError` (a 400
  for services): integers outside signed 64 bits (also ``skip``/``limit`` and ``$inc``
  results), non-finite numbers, strings and keys with lone surrogates, keys with ``$``/``.``.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.store.base import (
    FILTER_OPERATORS,
    INT64_MAX,
    INT64_MIN,
    LOGICAL_OPERATORS,
    UPDATE_OPERATORS,
    Document,
    Filter,
    IndexSpec,
    SortSpec,
    StoreValueError,
    UnsupportedQuery,
    Update,
    new_id,
)

__all__ = [
    "MISSING",
    "apply_update",
    "check_collection_name",
    "compile_regex",
    "is_operator_dict",
    "matches",
    "normalize_index",
    "prepare_document",
    "project",
    "upsert_document",
    "validate_filter",
    "validate_projection",
    "validate_sort",
    "validate_update",
    "validate_window",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What a path resolves to where a document has no such field (distinct from JSON null)."""

# Names are matched whole (fullmatch): with ``match``, ``$`` also accepts a trailing newline.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


# --- names, JSON values and documents ---------------------------------------------------


def check_collection_name(name: str) -> str:
    """Return ``name`` when it is a valid collection name (``[A-Za-z_][A-Za-z0-9_]*``, whole)."""
    if not isinstance(name, str) or not _COLLECTION.fullmatch(name) or name.startswith("sqlite_"):
        raise UnsupportedQuery(f"invalid collection name {name!r}")
    if name == "_store_meta":
        raise UnsupportedQuery("_store_meta is reserved")
    return name


def _check_text(value: str, where: str) -> None:
    """Refuse a string UTF-8 cannot encode (a lone surrogate such as ``"\\ud800"``, which
    Python's JSON parser accepts): SQLite and BSON would fail on it with a 500."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise StoreValueError(f"{where}: a string holds a lone surrogate", where=where) from None


def _check_int(value: int, where: str) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise StoreValueError(f"{where}: integer {value} does not fit in signed 64 bits", where=where)


def _check_json(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, int):
        _check_int(value, where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise StoreValueError(f"{where}: {value} is not a JSON number", where=where)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnsupportedQuery(f"{where}: field names are strings, not {type(key).__name__}")
            if key.startswith("$") or "." in key:
                raise StoreValueError(f"{where}: invalid field name {key!r} (no leading '$', no '.')", where=where)
            _check_text(key, where)
            _check_json(item, where)
    else:
        raise UnsupportedQuery(
            f"{where}: {type(value).__name__} value {value!r} is not JSON; documents hold JSON values only "
            "(store times as ISO strings, money as integer cents, ids as strings)"
        )


def _json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, immutable scalars), at a fraction of the cost
    of ``copy.deepcopy``; every write pays at least one."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


def prepare_document(doc: Document) -> Document:
    """A copy of ``doc`` ready to insert: JSON-only values checked, a string ``_id`` ensured first."""
    if not isinstance(doc, dict):
        raise UnsupportedQuery(f"a document must be a dict, not {type(doc).__name__}")
    _check_json(doc, "document")
    if "_id" not in doc:
        return {"_id": new_id(), **_json_copy(doc)}
    if not isinstance(doc["_id"], str):
        raise UnsupportedQuery(f"_id must be a string, not {type(doc['_id']).__name__}")
    return _json_copy(doc)


# --- validation ---------------------------------------------------------------------------


def _query_path(path: Any) -> list[str]:
    segments = path.split(".") if isinstance(path, str) else []
    if not segments or not all(_SEGMENT.fullmatch(s) and not s.isdigit() for s in segments):
        raise UnsupportedQuery(
            f"unsupported field path {path!r}: use dotted names of letters, digits, '_' or '-' "
            "(no operators, no empty or purely numeric segments)"
        )
    return segments


def _update_path(path: Any) -> list[str]:
    segments = path.split(".") if isinstance(path, str) else [""]
    if any(not s or s.startswith("$") for s in segments):
        raise UnsupportedQuery(f"unsupported update path {path!r} (empty segments and '$' are not allowed)")
    _check_text(path, f"update path {path!r}")  # paths may carry a client's keys (specifications.<key>)
    return segments


def _check_scalar(path: str, value: Any) -> None:
    if isinstance(value, Mapping):
        raise UnsupportedQuery(f"{path!r}: exact-subdocument equality is not supported; match fields with dotted paths")
    if isinstance(value, list | tuple):
        raise UnsupportedQuery(f"{path!r}: equality against a whole array is not supported; match an element")
    _check_json(value, f"filter on {path!r}")


def is_operator_dict(value: Any) -> bool:
    """True when ``value`` is a mapping of ``$``-operators (an operator condition, not a value)."""
    return isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value)


def validate_filter(filter: Filter | None) -> None:
    """Raise :class:`UnsupportedQuery` unless ``filter`` stays inside the supported subset."""
    if filter is None:
        return
    if not isinstance(filter, Mapping):
        raise UnsupportedQuery(f"a filter must be a mapping, not {type(filter).__name__}")
    for key, cond in filter.items():
        if key in LOGICAL_OPERATORS:
            if not isinstance(cond, list | tuple) or not cond:
                raise UnsupportedQuery(f"{key} takes a non-empty list of filters")
            for sub in cond:
                if not isinstance(sub, Mapping):
                    raise UnsupportedQuery(f"{key} takes a list of filters")
                validate_filter(sub)
        elif isinstance(key, str) and key.startswith("$"):
            raise UnsupportedQuery(f"unsupported filter operator {key}")
        else:
            _query_path(key)
            _validate_condition(key, cond)


def _validate_condition(path: str, cond: Any) -> None:
    if not is_operator_dict(cond):
        _check_scalar(path, cond)
        return
    for op, arg in cond.items():
        if op not in FILTER_OPERATORS:
            raise UnsupportedQuery(f"unsupported operator {op!r} on {path!r}")
        _check_operand(path, op, arg, cond)


def _check_operand(path: str, op: str, arg: Any, cond: Mapping[str, Any]) -> None:
    """One filter operator's argument is of the form the subset allows (the ``$options`` of a
    ``$regex`` is checked with it)."""
    if op in ("$eq", "$ne"):
        _check_scalar(path, arg)
    elif op in ("$in", "$nin"):
        if not isinstance(arg, list | tuple):
            raise UnsupportedQuery(f"{op} on {path!r} takes a list")
        for item in arg:
            _check_scalar(path, item)
    elif op in _COMPARISONS:
        if isinstance(arg, bool) or not isinstance(arg, int | float | str):
            raise UnsupportedQuery(f"{op} on {path!r} takes a number or a string")
        _check_json(arg, f"filter on {path!r}")
    elif op == "$exists" and not isinstance(arg, bool):
        raise UnsupportedQuery(f"$exists on {path!r} takes true or false")
    elif op in ("$regex", "$options"):
        _check_regex(path, op, arg, cond)


def _check_regex(path: str, op: str, arg: Any, cond: Mapping[str, Any]) -> None:
    if op == "$regex":
        if not isinstance(arg, str):
            raise UnsupportedQuery(f"$regex on {path!r} takes a pattern string")
        _check_text(arg, f"$regex on {path!r}")
        compile_regex(arg, cond.get("$options", ""))
        return
    if "$regex" not in cond:
        raise UnsupportedQuery(f"$options on {path!r} needs $regex")
    if not isinstance(arg, str) or set(arg) - {"i"}:
        raise UnsupportedQuery(f"$options on {path!r} may only contain 'i'")


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str, options: str = "") -> re.Pattern[str]:
    """``pattern`` compiled with Python's ``re`` (``re.I`` for option "i"); cached."""
    try:
        return re.compile(pattern, re.IGNORECASE if "i" in options else 0)
    except re.error as exc:
        raise UnsupportedQuery(f"invalid $regex {pattern!r}: {exc}") from None


def validate_update(update: Update) -> None:
    """Raise :class:`UnsupportedQuery` unless ``update`` is a supported operator update.

    Replacement documents (no ``$``-operator), ``_id`` changes outside ``$setOnInsert``,
    and two operators touching the same path (or a path and its parent) are refused.
    """
    if not isinstance(update, Mapping) or not update:
        raise UnsupportedQuery("an update needs at least one operator such as $set")
    paths: list[str] = []
    for op, fields in update.items():
        if not isinstance(op, str) or not op.startswith("$"):
            raise UnsupportedQuery("replacement updates are not supported; use $set")
        if op not in UPDATE_OPERATORS:
            raise UnsupportedQuery(f"unsupported update operator {op}")
        if not isinstance(fields, Mapping):
            raise UnsupportedQuery(f"{op} takes a mapping of field paths")
        for path, value in fields.items():
            segments = _update_path(path)
            if segments[0] == "_id" and op != "$setOnInsert":
                raise UnsupportedQuery("_id cannot be changed")
            _validate_update_value(op, path, value)
            paths.append(path)
    _refuse_conflicting_paths(paths)


def _refuse_conflicting_paths(paths: list[str]) -> None:
    """Two operators may not touch the same path, nor a path and its parent."""
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            if a == b or b.startswith(a + ".") or a.startswith(b + "."):
                raise UnsupportedQuery(f"update paths {a!r} and {b!r} conflict")


def _validate_update_value(op: str, path: str, value: Any) -> None:
    where = f"{op} on {path!r}"
    if op == "$inc":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UnsupportedQuery(f"{where} takes a number")
        _check_json(value, where)
    elif op == "$push" and is_operator_dict(value):
        if set(value) != {"$each"} or not isinstance(value["$each"], list):
            raise UnsupportedQuery(f"{where}: only {{'$each': [...]}} is supported")
        _check_json(value["$each"], where)
    elif op == "$pull" and isinstance(value, Mapping):
        if is_operator_dict(value):
            _validate_condition(path, value)
        else:
            validate_filter(value)
    elif op != "$unset":
        _check_json(value, where)


def validate_sort(sort: SortSpec | None) -> None:
    """Raise :class:`UnsupportedQuery` unless ``sort`` is a list of ``(path, 1 | -1)``."""
    if sort is None:
        return
    if isinstance(sort, str | Mapping) or not isinstance(sort, Sequence):
        raise UnsupportedQuery("sort takes a list of (field, 1 | -1) pairs")
    for item in sort:
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
            raise UnsupportedQuery("sort takes a list of (field, 1 | -1) pairs")
        _query_path(item[0])
        if isinstance(item[1], bool) or item[1] not in (1, -1):
            raise UnsupportedQuery(f"sort direction for {item[0]!r} must be 1 or -1")


def normalize_index(fields: IndexSpec) -> list[tuple[str, int]]:
    """An index spec (a field name or ``(path, 1 | -1)`` pairs) as a validated list of pairs."""
    spec = [(fields, 1)] if isinstance(fields, str) else list(fields)
    if not spec:
        raise UnsupportedQuery("an index needs at least one field")
    validate_sort(spec)
    return [(path, int(direction)) for path, direction in spec]


def validate_window(skip: int, limit: int) -> None:
    """Raise :class:`UnsupportedQuery` unless ``skip`` and ``limit`` are non-negative integers
    (:class:`StoreValueError` beyond 64 bits: a page number a client chose can get there)."""
    for name, value in (("skip", skip), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UnsupportedQuery(f"{name} must be a non-negative integer")
        _check_int(value, name)


def validate_projection(projection: Mapping[str, int] | None) -> None:
    """Raise :class:`UnsupportedQuery` unless ``projection`` is all-inclusion or all-exclusion.

    ``_id`` is included unless ``_id: 0``, which combines with either kind.
    """
    if not projection:
        return
    if not isinstance(projection, Mapping):
        raise UnsupportedQuery("projection takes a mapping of field paths to 1 or 0")
    for path, flag in projection.items():
        _query_path(path)
        if flag not in (0, 1):
            raise UnsupportedQuery(f"projection of {path!r} must be 1 or 0")
    if len({bool(flag) for path, flag in projection.items() if path != "_id"}) > 1:
        raise UnsupportedQuery("a projection either includes or excludes fields, not both")
    paths = list(projection)
    for i, a in enumerate(paths):
        for b in paths[i + 1 :]:
            if b.startswith(a + ".") or a.startswith(b + "."):
                raise UnsupportedQuery(f"projection paths {a!r} and {b!r} collide")


# --- matching -----------------------------------------------------------------------------


def _resolve(node: Any, segments: Sequence[str]) -> list[Any]:
    """The values at a path, traversing arrays of subdocuments like MongoDB (MISSING where absent).

    An array met on the way is traversed one level: each subdocument element contributes its
    own value, any other element contributes MISSING.
    """
    if not segments:
        return [node]
    if isinstance(node, dict):
        return _resolve(node.get(segments[0], MISSING), segments[1:])
    if isinstance(node, list):
        return [v for el in node for v in (_resolve(el, segments) if isinstance(el, dict) else [MISSING])]
    return [MISSING]


def _same(a: Any, b: Any) -> bool:
    """JSON equality: booleans equal only booleans, 1 == 1.0, dict key order matters (as in BSON)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _equals(value: Any, target: Any) -> bool:
    return (value is MISSING and target is None) or _same(value, target)


def _comparable(value: Any, target: Any) -> bool:
    if isinstance(value, bool) or isinstance(target, bool):
        return False
    number = (int, float)
    return (isinstance(value, number) and isinstance(target, number)) or (
        isinstance(value, str) and isinstance(target, str)
    )


def _some(values: list[Any], test: Callable[[Any], bool]) -> bool:
    """True when ``test`` holds for a value, or for an element of an array value."""
    return any(test(item) for v in values for item in (v if isinstance(v, list) else [v]))


def _condition_matches(values: list[Any], cond: Any) -> bool:
    ops = cond if is_operator_dict(cond) else {"$eq": cond}
    for op, arg in ops.items():
        if op == "$exists":
            ok = any(v is not MISSING for v in values) == arg
        elif op in ("$eq", "$in", "$ne", "$nin"):
            targets = arg if op in ("$in", "$nin") else [arg]
            found = _some(values, lambda v, targets=targets: any(_equals(v, t) for t in targets))
            ok = found if op in ("$eq", "$in") else not found
        elif op == "$regex":
            rx = compile_regex(arg, ops.get("$options", ""))
            ok = _some(values, lambda v, rx=rx: isinstance(v, str) and rx.search(v) is not None)
        elif op in _COMPARISONS:
            compare = _COMPARISONS[op]
            ok = _some(values, lambda v, c=compare, t=arg: _comparable(v, t) and c(v, t))
        else:  # $options, consumed by $regex
            ok = True
        if not ok:
            return False
    return True


def matches(doc: Document, filter: Filter) -> bool:
    """True when ``doc`` matches the (validated) ``filter`` under MongoDB semantics.

    Equality against an array matches any element; dotted paths traverse arrays of
    subdocuments; ``$ne``/``$nin`` mean no value equals; ``None`` equals null or missing.
    """
    for key, cond in filter.items():
        if key == "$and":
            ok = all(matches(doc, sub) for sub in cond)
        elif key == "$or":
            ok = any(matches(doc, sub) for sub in cond)
        else:
            ok = _condition_matches(_resolve(doc, key.split(".")), cond)
        if not ok:
            return False
    return True


# --- updates ------------------------------------------------------------------------------


def _get(node: Any, key: str) -> Any:
    if isinstance(node, dict):
        return node.get(key, MISSING)
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    return MISSING


def _put(node: dict[str, Any] | list[Any], key: str, value: Any) -> None:
    if isinstance(node, dict):
        node[key] = value
    elif key.isdigit():
        node.extend([None] * (int(key) + 1 - len(node)))
        node[int(key)] = value
    else:
        raise UnsupportedQuery(f"cannot create field {key!r} inside an array")


def _own(node: dict[str, Any] | list[Any], key: str, child: Any, owned: set[int]) -> Any:
    """``child`` (``node[key]``) as a container of the new document's own: copied, one level
    deep, the first time an update goes through it. The rest stays shared with the old
    document, which nothing changes (see :func:`apply_update`)."""
    if id(child) in owned or not isinstance(child, dict | list):
        return child
    child = dict(child) if isinstance(child, dict) else list(child)
    owned.add(id(child))
    _put(node, key, child)
    return child


def _parent(
    doc: Document, segments: list[str], owned: set[int], *, create: bool
) -> dict[str, Any] | list[Any] | None:
    """The container holding the path's last segment (created when ``create``), else None;
    every container on the way is the new document's own."""
    node: Any = doc
    for key in segments[:-1]:
        child = _get(node, key)
        if child is MISSING and create:
            child = {}
            owned.add(id(child))
            _put(node, key, child)
        if not isinstance(child, dict | list):
            if create:
                raise UnsupportedQuery(f"cannot create {'.'.join(segments)!r}: {key!r} holds {child!r}")
            return None
        node = _own(node, key, child, owned)
    return node


def _set(doc: Document, segments: list[str], value: Any, owned: set[int]) -> None:
    parent = _parent(doc, segments, owned, create=True)
    assert parent is not None
    _put(parent, segments[-1], _json_copy(value))


def _unset(doc: Document, segments: list[str], _: Any, owned: set[int]) -> None:
    parent = _parent(doc, segments, owned, create=False)
    if isinstance(parent, dict):
        parent.pop(segments[-1], None)
    elif parent is not None and _get(parent, segments[-1]) is not MISSING:
        parent[int(segments[-1])] = None  # MongoDB nulls an unset array element rather than shifting


def _inc(doc: Document, segments: list[str], amount: int | float, owned: set[int]) -> None:
    parent = _parent(doc, segments, owned, create=True)
    assert parent is not None
    current = _get(parent, segments[-1])
    if current is MISSING:
        current = 0
    elif isinstance(current, bool) or not isinstance(current, int | float):
        raise UnsupportedQuery(f"cannot $inc {'.'.join(segments)!r}: it holds {current!r}")
    # MongoDB refuses an int64 overflow too ("Failed to apply $inc operations"); a float
    # result must stay finite to remain JSON.
    _check_json(current + amount, f"$inc on {'.'.join(segments)!r}")
    _put(parent, segments[-1], current + amount)


def _push(doc: Document, segments: list[str], value: Any, owned: set[int]) -> None:
    items = value["$each"] if is_operator_dict(value) else [value]
    parent = _parent(doc, segments, owned, create=True)
    assert parent is not None
    current = _get(parent, segments[-1])
    if current is MISSING:
        _put(parent, segments[-1], _json_copy(items))
    elif isinstance(current, list):
        _put(parent, segments[-1], [*current, *_json_copy(items)])
    else:
        raise UnsupportedQuery(f"cannot $push to {'.'.join(segments)!r}: it is not an array")


def _pulls(element: Any, cond: Any) -> bool:
    if is_operator_dict(cond):
        return _condition_matches([element], cond)
    if isinstance(cond, Mapping):
        return isinstance(element, dict) and matches(element, cond)
    return _same(element, cond)


def _pull(doc: Document, segments: list[str], cond: Any, owned: set[int]) -> None:
    parent = _parent(doc, segments, owned, create=False)
    current = MISSING if parent is None else _get(parent, segments[-1])
    if current is MISSING:
        return
    if not isinstance(current, list):
        raise UnsupportedQuery(f"cannot $pull from {'.'.join(segments)!r}: it is not an array")
    assert parent is not None
    _put(parent, segments[-1], [el for el in current if not _pulls(el, cond)])


_APPLY: dict[str, Callable[[Document, list[str], Any, set[int]], None]] = {
    "$set": _set,
    "$setOnInsert": _set,
    "$unset": _unset,
    "$inc": _inc,
    "$push": _push,
    "$pull": _pull,
}


def apply_update(doc: Document, update: Update, *, is_insert: bool) -> Document:
    """A new document: ``doc`` with the (validated) ``update`` applied; ``doc`` is untouched.

    ``$setOnInsert`` applies only when ``is_insert``. Type errors (``$inc`` on a string,
    ``$push`` to a non-array, a path through a scalar) raise :class:`UnsupportedQuery`.

    Copy on write: only the containers on an updated path are copied (one level each), and
    the new document shares everything else with ``doc``. A product holding a few hundred
    reservation lines then costs one list of references per reserve, not a copy of every
    line (the old whole-document copy was most of a stock write's allocations).
    """
    new = dict(doc)
    owned = {id(new)}
    for op, fields in update.items():
        if op == "$setOnInsert" and not is_insert:
            continue
        for path, value in fields.items():
            _APPLY[op](new, path.split("."), value, owned)
    return new


def upsert_document(filter: Filter, update: Update) -> Document:
    """The document an upsert inserts when nothing matched, as MongoDB builds it.

    The filter's equality fields (plain values and ``$eq``, also inside ``$and``) seed it,
    then the update applies as an insert (``$setOnInsert`` included); ``_id`` is generated
    when neither provides one.
    """
    seed: Document = {}
    owned = {id(seed)}

    def take(sub: Filter) -> None:
        for key, cond in sub.items():
            if key == "$and":
                for part in cond:
                    take(part)
            elif not key.startswith("$") and (not is_operator_dict(cond) or "$eq" in cond):
                _set(seed, key.split("."), cond["$eq"] if is_operator_dict(cond) else cond, owned)

    take(filter)
    return prepare_document(apply_update(seed, update, is_insert=True))


# --- projection ---------------------------------------------------------------------------


def _tree(paths: list[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = True
    return tree


def _pick(node: Any, tree: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_pick(el, tree) for el in node if isinstance(el, dict | list)]
    out = {}
    for key, value in node.items():
        sub = tree.get(key)
        if sub is True:
            out[key] = value
        elif sub and isinstance(value, dict | list):
            out[key] = _pick(value, sub)
    return out


def _drop(node: Any, tree: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_drop(el, tree) if isinstance(el, dict | list) else el for el in node]
    out = {}
    for key, value in node.items():
        sub = tree.get(key)
        if sub is not True:
            out[key] = _drop(value, sub) if sub and isinstance(value, dict | list) else value
    return out


def project(doc: Document, projection: Mapping[str, int] | None) -> Document:
    """``doc`` shaped by a (validated) inclusion or exclusion projection, as MongoDB does."""
    if not projection:
        return doc
    fields = {path: bool(flag) for path, flag in projection.items() if path != "_id"}
    keep_id = bool(projection.get("_id", 1))
    if any(fields.values()) or (not fields and "_id" in projection and keep_id):
        return _pick(doc, _tree([*fields, *(["_id"] if keep_id else [])]))
    return _drop(doc, _tree([*fields, *([] if keep_id else ["_id"])]))
