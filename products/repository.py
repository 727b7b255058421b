"""Data access of the products service through the document-store port.

Every query and update document of the service lives here, behind intention-named
operations (``reserve_line``, ``return_reserved_line``, ``record_stock_change`` …); the
domain modules hold the rules and never spell a store operator.

Collections: ``products``, ``product_history``, ``reservations``, ``seller_status`` (the
contract's) and ``product_search``, the keys behind search (below).

Search keys. A query word matches a product when it starts one of the product's words.
Each non-deleted product has one small document per distinct word in ``product_search``:
``{_id: "<productId> <word>", k: word, p: the product's previous word in sorted order ("" for
its first), v: publicly visible, c: createdAt, pr: priceCents}``, and ``product_words`` holds
every word ever indexed (``_id`` = the word). A query word ``q`` is expanded to the words it
starts (a primary-key range on ``product_words``). The words starting with ``q`` are one run of
the sorted vocabulary, so of a product's keys in that run exactly one has ``p < q`` (its first):
counting ``(k in run, v, p < q)`` on the index ``(k, v, p)`` counts distinct products, and the
page merges, for each word of the run, its first keys read in sort order from
``(k, v, c, _id)`` or ``(k, v, pr, _id)`` with a limit. So a public search page and its total
cost the same at 100,000 products as at 1,000. Keys are rewritten whenever a product's words, status, seller visibility
or price change (a primary-key range per product: ``_id`` starts with its id) and removed
when it is deleted. Only two sort fields are carried: stock and sales figures change with
every order, and rewriting a product's keys at each sale would cost the checkout. (The
SQLite adapter cannot index array elements, so a keywords array on the product would be
scanned.) Stores written before these keys existed get them from
:meth:`ProductRepository.build_search_keys`, run in the background at start-up.

Stock level. ``stockLevel`` is written in the same conditional update that changes
``stock``: the store subset has no update pipeline, so an ``$inc`` of ``delta`` is guarded by
the band of old stock values whose new value has the predicted level (and by the
``lowStockAlert`` read); when the band missed because stock moved meanwhile the product is
read again and the update retried.

Stock history. A stock change and its ``stock_add``/``stock_reduce`` entry are one write: the
entry is pushed onto the product's ``pendingHistory`` in the conditional update that changes
stock (with ``historyPending`` counting them), then copied into ``product_history`` under its
own ``_id`` (a duplicate is ignored) and pulled from the product. A crash between the two
leaves the entry on the product, and :meth:`ProductRepository.flush_pending_history` (start-up
and the cleanup task) finishes it; so neither the change nor its entry exists without the other.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from products.levels import level_bounds, stock_level
from products.text import words
from shared.lease import StoreLease
from shared.store import Document, DocumentStore, DuplicateKeyError, new_id
from shared.store.base import SortSpec
from shared.timeutil import now_iso

PRODUCT_INDEXES: tuple[Sequence[tuple[str, int]], ...] = (
    [("status", 1), ("sellerActive", 1), ("createdAt", -1)],
    [("status", 1), ("sellerActive", 1), ("category", 1), ("subcategory", 1), ("createdAt", -1)],
    [("status", 1), ("sellerActive", 1), ("category", 1), ("priceCents", 1)],
    [("status", 1), ("sellerActive", 1), ("priceCents", 1)],
    [("status", 1), ("sellerActive", 1), ("name", 1)],
    [("status", 1), ("sellerActive", 1), ("totalSold", -1)],
    [("status", 1), ("sellerActive", 1), ("stock", 1)],
    [("sellerId", 1), ("status", 1), ("createdAt", -1)],
    [("sellerId", 1), ("createdAt", -1)],
    [("sellerId", 1), ("status", 1), ("stockLevel", 1)],
    [("status", 1), ("stockLevel", 1)],
    [("historyPending", 1)],
)
LEVEL_ATTEMPTS = 8
"""Banded stock updates tried before falling back to an update plus a level follow-up."""
COUNTERS = ("stock", "totalStock", "reservedStock", "soldStock", "lowStockAlert")
WITHOUT_LINES = {"reservations": 0}
"""The projection of product reads: a product's pending reservation lines (one per pending
order holding it, kept until the order is confirmed, cancelled or expires) are read only by
the inventory endpoint that shows them and by the conditional writes that test them; every
page, detail and stock read, and every write's returned document, leaves them out, so the
service no longer holds a list that grows with the pending orders (in a soak, its memory grew
with it)."""
SEARCH_CONDITION_WORDS = 10
SEARCH_SORTS = {"createdAt": "c", "priceCents": "pr"}
"""Product sort fields the search keys carry (other sorts read the candidates' products)."""
SEARCH_EXPANSION_LIMIT = 50
"""The most indexed words one query word may start and still be paged from the keys."""
SEARCH_MERGE_LIMIT = 8
"""The most indexed words one query word may start and still be paged by merging their keys
(more: their key ids are read and made distinct, work that grows with the matches)."""
SEARCH_KEYS_MIGRATION = "search-keys-v1"
BACKFILL_BATCH = 200
"""Products per backfill transaction (~4,000 keys: the writer is held a fraction of a second)."""
_TOP = "\U0010ffff"


def _key_docs(doc: Mapping[str, Any]) -> list[Document]:
    """The search keys of a product (none when it is deleted)."""
    if doc.get("status") == "deleted":
        return []
    visible = doc.get("status") == "active" and bool(doc.get("sellerActive", True))
    ordered = sorted(set(words(doc.get("searchText") or "")))
    return [
        {"_id": f"{doc['_id']} {word}", "k": word, "p": previous, "v": visible, "c": doc.get("createdAt"),
         "pr": doc.get("priceCents")}
        for previous, word in zip(["", *ordered], ordered, strict=False)
    ]  # fmt: skip


def _product_keys(product_id: str) -> dict[str, Any]:
    """The filter of every search key of one product (a primary-key range)."""
    return {"_id": {"$gt": f"{product_id} ", "$lt": f"{product_id} {_TOP}"}}


def _key_product(key_id: str) -> str:
    return key_id.split(" ", 1)[0]


def _key_fields(doc: Mapping[str, Any]) -> tuple[Any, ...]:
    return doc.get("status"), doc.get("sellerActive", True), doc.get("priceCents"), doc.get("searchText")


@dataclass(frozen=True, slots=True)
class ProductCriteria:
    """Which products a listing or a count selects (None = no condition on that field)."""

    statuses: tuple[str, ...] | None = None
    exclude_status: str | None = None
    seller_active: bool | None = None
    seller_id: str | None = None
    category: str | None = None
    subcategory: str | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    stock_level: str | None = None
    ids: tuple[str, ...] | None = None
    words: tuple[str, ...] = ()
    """Every word must start a word of ``searchText`` (the scan fallback of search)."""
    text: str | None = None
    """A literal substring of ``searchText`` or ``category`` (the admin search)."""


def criteria_filter(criteria: ProductCriteria) -> dict[str, Any]:
    """The store filter of ``criteria``."""
    f: dict[str, Any] = {}
    if criteria.ids is not None:
        f["_id"] = {"$in": list(criteria.ids)}
    if criteria.statuses is not None:
        f["status"] = criteria.statuses[0] if len(criteria.statuses) == 1 else {"$in": list(criteria.statuses)}
    elif criteria.exclude_status is not None:
        f["status"] = {"$ne": criteria.exclude_status}
    if criteria.seller_active is not None:
        f["sellerActive"] = criteria.seller_active
    for field, value in (
        ("sellerId", criteria.seller_id),
        ("category", criteria.category),
        ("subcategory", criteria.subcategory),
        ("stockLevel", criteria.stock_level),
    ):
        if value is not None:
            f[field] = value
    price: dict[str, int] = {}
    if criteria.min_price_cents is not None:
        price["$gte"] = criteria.min_price_cents
    if criteria.max_price_cents is not None:
        price["$lte"] = criteria.max_price_cents
    if price:
        f["priceCents"] = price
    if criteria.words:
        f["$and"] = [
            {"searchText": {"$regex": r"(?<!\w)" + re.escape(word)}} for word in criteria.words[:SEARCH_CONDITION_WORDS]
        ]
    if criteria.text:
        pattern = {"$regex": re.escape(criteria.text), "$options": "i"}
        f["$or"] = [{"searchText": pattern}, {"category": pattern}]
    return f


def _merge_stock_range(condition: Mapping[str, Any], low: int | None, high: int | None) -> Any:
    """``condition``'s own ``stock`` test narrowed to ``low..high`` (None = open)."""
    current = condition.get("stock")
    bounds: dict[str, int] = {}
    if isinstance(current, Mapping):
        bounds.update(current)
    elif current is not None:
        return current  # an exact value already decides the band
    if low is not None:
        bounds["$gte"] = max(low, bounds.get("$gte", low))
    if high is not None:
        bounds["$lte"] = min(high, bounds.get("$lte", high))
    return bounds or None


class ProductRepository:
    """The products service's collections and the operations it runs on them."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store
        self.products = store.collection("products")
        self.history = store.collection("product_history")
        self.reservations = store.collection("reservations")
        self.seller_status = store.collection("seller_status")
        self.search = store.collection("product_search")
        self.words = store.collection("product_words")
        self.old_terms = store.collection("product_terms")  # the word index before search keys
        self.migrations = store.collection("product_migrations")

    def lease(self, name: str, *, seconds: float) -> StoreLease:
        """A lease in this store (one process at a time runs the sweep it guards)."""
        return StoreLease(self._store, name, seconds=seconds)

    async def create_indexes(self) -> None:
        for spec in PRODUCT_INDEXES:
            await self.products.create_index(spec)
        await self.history.create_index([("productId", 1), ("createdAt", -1)])
        await self.history.create_index([("sellerId", 1), ("type", 1), ("createdAt", -1)])
        await self.history.create_index([("orderId", 1), ("productId", 1), ("type", 1)])
        await self.reservations.create_index("orderId", unique=True)
        await self.reservations.create_index([("status", 1), ("expiresAt", 1)])
        await self.seller_status.create_index("sellerId", unique=True)
        for field in SEARCH_SORTS.values():
            await self.search.create_index([("k", 1), ("v", 1), (field, 1), ("_id", 1)])
        await self.search.create_index([("k", 1), ("v", 1), ("p", 1)])

    async def migrate_history_types(self) -> int:
        """Rename legacy ``stock_update`` entries to ``stock_add``/``stock_reduce`` by the sign
        of their change (entries without a negative quantity count as additions)."""
        reduced = await self.history.update_many(
            {"type": "stock_update", "quantity": {"$lt": 0}}, {"$set": {"type": "stock_reduce"}}
        )
        added = await self.history.update_many({"type": "stock_update"}, {"$set": {"type": "stock_add"}})
        return reduced.modified + added.modified

    # products: reading

    async def insert_product(self, doc: Document) -> Document:
        """Insert a new product and its search keys."""
        await self.products.insert_one(doc)
        await self.insert_search_keys([doc])
        return doc

    async def insert_products(self, docs: Sequence[Document]) -> None:
        """Insert many products and their search keys (bulk loading, e.g. the catalogue benchmark)."""
        await self.products.insert_many(list(docs))
        await self.insert_search_keys(docs)

    async def get_product(self, product_id: str, *, with_reservations: bool = False) -> Document | None:
        """The product; its ``reservations`` lines only when asked (see ``WITHOUT_LINES``)."""
        return await self.products.find_one(
            {"_id": product_id}, projection=None if with_reservations else WITHOUT_LINES
        )

    async def get_products(self, ids: Sequence[str]) -> list[Document]:
        """Products by id; the filter is on ``_id`` alone so the primary key serves it."""
        if not ids:
            return []
        return await self.products.find({"_id": {"$in": list(ids)}}, projection=WITHOUT_LINES)

    async def page_products(
        self, criteria: ProductCriteria, *, sort_field: str, direction: int, skip: int, limit: int
    ) -> tuple[list[Document], int]:
        """One page of matching products (ties broken by ``_id``) and the total."""
        query = criteria_filter(criteria)
        sort = [(sort_field, direction), ("_id", direction)]
        # The page and the total are independent reads: run them side by side.
        docs, total = await asyncio.gather(
            self.products.find(query, sort=sort, skip=skip, limit=limit, projection=WITHOUT_LINES),
            self.products.count(query),
        )
        return docs, total

    async def page_only(
        self, criteria: ProductCriteria, *, sort_field: str, direction: int, skip: int, limit: int
    ) -> list[Document]:
        """One page of matching products (ties broken by ``_id``), without counting them."""
        sort = [(sort_field, direction), ("_id", direction)]
        return await self.products.find(
            criteria_filter(criteria), sort=sort, skip=skip, limit=limit, projection=WITHOUT_LINES
        )

    async def page_products_by_ids(
        self, criteria: ProductCriteria, *, sort_field: str, direction: int, skip: int, limit: int
    ) -> tuple[list[Document], int]:
        """The page and the total from one ids-only pass over the matches, then the page's
        documents by key: for a bounded candidate set (search) this reads each match once
        instead of twice (page query + count)."""
        sort = [(sort_field, direction), ("_id", direction)]
        ids = [d["_id"] for d in await self.products.find(criteria_filter(criteria), sort=sort, projection={"_id": 1})]
        page = ids[skip : skip + limit]
        found = {d["_id"]: d for d in await self.get_products(page)}
        return [found[i] for i in page if i in found], len(ids)

    async def product_rows(self, criteria: ProductCriteria, *, fields: Sequence[str]) -> list[Document]:
        """Matching products with only ``fields`` (and ``_id``)."""
        return await self.products.find(criteria_filter(criteria), projection=dict.fromkeys(fields, 1))

    async def count_products(self, criteria: ProductCriteria) -> int:
        return await self.products.count(criteria_filter(criteria))

    # products: writing fields

    async def _update(
        self,
        condition: Mapping[str, Any],
        update: Mapping[str, Any],
        *,
        returning: Literal["before", "after"] = "after",
    ) -> Document | None:
        update = dict(update)
        update["$set"] = {**update.get("$set", {}), "updatedAt": now_iso()}
        return await self.products.find_one_and_update(
            dict(condition), update, return_document=returning, projection=WITHOUT_LINES
        )

    async def update_product_fields(
        self, *, product_id: str, seller_id: str, fields: Mapping[str, Any]
    ) -> Document | None:
        """Set ``fields`` on the seller's non-deleted product; the product before, or None."""
        return await self._set_fields(
            {"_id": product_id, "sellerId": seller_id, "status": {"$ne": "deleted"}}, dict(fields)
        )

    async def _set_fields(self, condition: Mapping[str, Any], fields: Mapping[str, Any]) -> Document | None:
        """``$set`` of plain ``fields`` (no stock counter) on the product matching ``condition``,
        with its search keys rewritten; the product before, or None."""
        before = await self._update(condition, {"$set": dict(fields)}, returning="before")
        if before is not None:
            await self.reindex(before, {**before, **fields})
        return before

    async def hide_for_inactive_seller(self, *, product_id: str) -> Document | None:
        """Mark one product's seller inactive (a deactivation that raced with its creation)."""
        after = await self._update({"_id": product_id}, {"$set": {"sellerActive": False}})
        if after is not None:
            await self._rewrite_keys(after)
        return after

    async def soft_delete(self, *, product_id: str) -> Document | None:
        """``status: deleted`` unless already; the product before, or None."""
        return await self._set_fields({"_id": product_id, "status": {"$ne": "deleted"}}, {"status": "deleted"})

    async def set_status(self, *, product_id: str, status: str) -> Document | None:
        """Any product's status (deleted ones too); the product before, or None."""
        return await self._set_fields({"_id": product_id}, {"status": status})

    async def add_sale_totals(self, *, product_id: str, quantity: int, cents: int) -> Document | None:
        """Legacy sale figures (no stock change)."""
        return await self._update({"_id": product_id}, {"$inc": {"totalSold": quantity, "revenueCents": cents}})

    async def set_seller_active(self, *, seller_id: str, active: bool) -> int:
        """Hide or show a seller's products (and the search keys of its active ones)."""
        result = await self.products.update_many(
            {"sellerId": seller_id, "sellerActive": {"$ne": active}},
            {"$set": {"sellerActive": active, "updatedAt": now_iso()}},
        )
        # Read after the change, so a product created meanwhile is not missed; only active
        # products' keys carry a visibility that depends on the seller.
        shown = await self.products.find({"sellerId": seller_id, "status": "active"}, projection={"sellerActive": 1})
        for doc in shown:
            visible = bool(doc.get("sellerActive", True))
            await self.search.update_many(
                {**_product_keys(doc["_id"]), "v": {"$ne": visible}}, {"$set": {"v": visible}}
            )
        return result.modified

    # products: stock

    async def _banded_stock_update(
        self,
        product_id: str,
        *,
        delta: int,
        condition: Mapping[str, Any],
        update: Mapping[str, Any],
    ) -> Document | None:
        """``update`` (which changes stock by ``delta``) on the product matching ``condition``,
        with ``stockLevel`` set in the same write; None when ``condition`` does not hold."""
        base = {"_id": product_id, **condition}
        for _ in range(LEVEL_ATTEMPTS):
            doc = await self.products.find_one(base, projection={"stock": 1, "lowStockAlert": 1})
            if doc is None:
                return None
            low = int(doc.get("lowStockAlert", 5))
            level = stock_level(int(doc["stock"]) + delta, low)
            low_new, high_new = level_bounds(level, low)
            band = _merge_stock_range(
                condition,
                None if low_new is None else low_new - delta,
                None if high_new is None else high_new - delta,
            )
            guarded = {**base, "lowStockAlert": low} if "lowStockAlert" in doc else dict(base)
            if band is not None:
                guarded["stock"] = band
            changed = dict(update)
            changed["$set"] = {**changed.get("$set", {}), "stockLevel": level}
            after = await self._update(guarded, changed)
            if after is not None:
                return after
        # Stock keeps moving under us: apply the change, then a level write conditioned on
        # the stock just written (a stale one is skipped by the next change's own level).
        after = await self._update(base, update)
        if after is not None:
            level = stock_level(int(after["stock"]), int(after.get("lowStockAlert", 5)))
            await self.products.update_one(
                {"_id": product_id, "stock": after["stock"], "lowStockAlert": after.get("lowStockAlert", 5)},
                {"$set": {"stockLevel": level}},
            )
            after["stockLevel"] = level
        return after

    async def reserve_line(self, *, product_id: str, order_id: str, quantity: int, entry: Document) -> Document | None:
        """Available → reserved for one order line of a purchasable product with enough stock,
        once per order; the product after, or None."""
        return await self._banded_stock_update(
            product_id,
            delta=-quantity,
            condition={
                "status": "active",
                "sellerActive": True,
                "stock": {"$gte": quantity},
                "reservations.orderId": {"$ne": order_id},
            },
            update={
                "$inc": {"stock": -quantity, "reservedStock": quantity},
                "$push": {"reservations": dict(entry)},
            },
        )

    async def return_reserved_line(self, *, product_id: str, order_id: str, quantity: int) -> Document | None:
        """Reserved → available for the order's line if it is still on the product."""
        return await self._banded_stock_update(
            product_id,
            delta=quantity,
            condition={"reservations.orderId": order_id},
            update={
                "$inc": {"stock": quantity, "reservedStock": -quantity},
                "$pull": {"reservations": {"orderId": order_id}},
            },
        )

    async def sell_reserved_line(self, *, product_id: str, order_id: str, quantity: int, cents: int) -> Document | None:
        """Reserved → sold (with sale totals) for the order's line if it is still on the product."""
        return await self._update(
            {"_id": product_id, "reservations.orderId": order_id},
            {
                "$inc": {
                    "reservedStock": -quantity,
                    "soldStock": quantity,
                    "totalSold": quantity,
                    "revenueCents": cents,
                },
                "$pull": {"reservations": {"orderId": order_id}},
            },
        )

    async def unsell(self, *, product_id: str, quantity: int, cents: int) -> Document | None:
        """Sold → available (sale totals reduced) when the counters hold that much."""
        return await self._banded_stock_update(
            product_id,
            delta=quantity,
            condition={
                "soldStock": {"$gte": quantity},
                "totalSold": {"$gte": quantity},
                "revenueCents": {"$gte": cents},
            },
            update={
                "$inc": {"soldStock": -quantity, "stock": quantity, "totalSold": -quantity, "revenueCents": -cents}
            },
        )

    async def record_stock_change(
        self, *, product: Mapping[str, Any], set_counters: Mapping[str, int], entry: Document | None
    ) -> Document | None:
        """Set stock counters on a product whose counters still equal those of ``product``,
        with ``stockLevel`` and (when given) the history ``entry`` in the same write.

        The product after, or None when any counter changed since ``product`` was read.
        """
        condition: dict[str, Any] = {"_id": product["_id"], "status": {"$ne": "deleted"}}
        for name in COUNTERS:
            if name in product:
                condition[name] = product[name]
        new_stock = int(set_counters.get("stock", product["stock"]))
        low = int(set_counters.get("lowStockAlert", product.get("lowStockAlert", 5)))
        update: dict[str, Any] = {"$set": {**set_counters, "stockLevel": stock_level(new_stock, low)}}
        if entry is not None:
            update["$push"] = {"pendingHistory": self._history_doc(entry)}
            update["$inc"] = {"historyPending": 1}
        return await self._update(condition, update)

    async def undo_stock_change(self, *, product_id: str, entry_id: str, change: int) -> Document | None:
        """Take back a change made by :meth:`record_stock_change` whose entry is still pending
        (the change and its entry go together); None when that is no longer possible."""
        condition: dict[str, Any] = {"pendingHistory._id": entry_id}
        if change > 0:
            condition["stock"] = {"$gte": change}
        return await self._banded_stock_update(
            product_id,
            delta=-change,
            condition=condition,
            update={
                "$inc": {"stock": -change, "totalStock": -change, "historyPending": -1},
                "$pull": {"pendingHistory": {"_id": entry_id}},
            },
        )

    async def flush_history(self, *, product_id: str, entries: Iterable[Mapping[str, Any]]) -> None:
        """Copy pending entries of a product into ``product_history``, then drop them from it."""
        for entry in entries:
            try:
                await self.history.insert_one(dict(entry))
            except DuplicateKeyError:
                pass
            await self.products.update_one(
                {"_id": product_id, "pendingHistory._id": entry["_id"]},
                {"$pull": {"pendingHistory": {"_id": entry["_id"]}}, "$inc": {"historyPending": -1}},
            )

    async def flush_pending_history(self, *, limit: int = 100) -> int:
        """Finish every stock change whose history entry was not copied yet (after a crash)."""
        docs = await self.products.find({"historyPending": {"$gt": 0}}, limit=limit, projection={"pendingHistory": 1})
        for doc in docs:
            await self.flush_history(product_id=doc["_id"], entries=doc.get("pendingHistory") or [])
        return len(docs)

    async def set_low_alert(self, *, product: Mapping[str, Any], threshold: int) -> Document | None:
        """``lowStockAlert`` and the level it gives, if stock is still what ``product`` shows."""
        return await self._update(
            {"_id": product["_id"], "stock": product["stock"]},
            {"$set": {"lowStockAlert": threshold, "stockLevel": stock_level(int(product["stock"]), threshold)}},
        )

    # search keys

    async def insert_search_keys(self, docs: Iterable[Mapping[str, Any]]) -> None:
        """Add the search keys of new products (``docs``) and their new words."""
        rows = [row for doc in docs for row in _key_docs(doc)]
        if rows:
            await self._add_words({row["k"] for row in rows})
            await self._insert_new(self.search, rows)  # the start-up backfill may have been first

    async def _add_words(self, found: set[str]) -> None:
        """Record the words not in ``product_words`` yet (another process may add them too)."""
        if not found:
            return
        known = await self.words.find({"_id": {"$in": sorted(found)}}, projection={"_id": 1})
        new = [{"_id": w} for w in sorted(found - {d["_id"] for d in known})]
        await self._insert_new(self.words, new)

    @staticmethod
    async def _insert_new(collection: Any, rows: list[Document]) -> None:
        try:
            if rows:
                await collection.insert_many(rows)
        except DuplicateKeyError:  # someone was first with some: insert the others one by one
            for row in rows:
                try:
                    await collection.insert_one(row)
                except DuplicateKeyError:
                    pass

    async def reindex(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Rewrite a product's search keys after a change of its words, status, seller
        visibility or price (nothing to do when none of those changed)."""
        if _key_fields(before) != _key_fields(after):
            await self._rewrite_keys(after)

    async def _rewrite_keys(self, after: Mapping[str, Any]) -> None:
        await self.search.delete_many(_product_keys(str(after["_id"])))
        rows = _key_docs(after)
        if rows:
            await self._add_words({row["k"] for row in rows})
            await self._insert_new(self.search, rows)

    async def search_keys_ready(self) -> bool:
        """True once every product has its search keys (see :meth:`build_search_keys`)."""
        return await self.migrations.find_one({"_id": SEARCH_KEYS_MIGRATION, "done": True}) is not None

    async def build_search_keys(self, *, batch: int = BACKFILL_BATCH) -> int:
        """Give every product of a store written before search keys existed its keys, in
        batches by ``_id`` from a saved cursor, then mark the store ready and empty the old
        word index. Idempotent and safe in several processes at once (a key another process
        wrote is skipped); returns how many products were indexed."""
        if await self.search_keys_ready():
            return 0
        state = await self.migrations.find_one({"_id": SEARCH_KEYS_MIGRATION}) or {}
        cursor = state.get("cursor", "")
        indexed = 0
        while True:
            docs = await self.products.find(
                {"_id": {"$gt": cursor}},
                sort=[("_id", 1)],
                limit=batch,
                projection={"searchText": 1, "status": 1, "sellerActive": 1, "createdAt": 1, "priceCents": 1},
            )
            if not docs:
                break
            rows = [row for doc in docs for row in _key_docs(doc)]
            await self._add_words({row["k"] for row in rows})
            present = await self.search.find(
                {"_id": {"$gt": f"{docs[0]['_id']} ", "$lt": f"{docs[-1]['_id']} {_TOP}"}}, projection={"_id": 1}
            )
            stored = {d["_id"] for d in present}
            await self._insert_new(self.search, [r for r in rows if r["_id"] not in stored])
            cursor = docs[-1]["_id"]
            indexed += len(docs)
            await self.migrations.update_one({"_id": SEARCH_KEYS_MIGRATION}, {"$set": {"cursor": cursor}}, upsert=True)
        await self.migrations.update_one({"_id": SEARCH_KEYS_MIGRATION}, {"$set": {"done": True}}, upsert=True)
        while old := await self.old_terms.find({}, limit=5000, projection={"_id": 1}):
            await self.old_terms.delete_many({"_id": {"$in": [d["_id"] for d in old]}})
        return indexed

    async def expand(self, token: str) -> list[str] | None:
        """The indexed words that ``token`` starts; None when more than :data:`SEARCH_EXPANSION_LIMIT`."""
        rows = await self.words.find(
            {"_id": {"$gte": token, "$lt": token + _TOP}},
            sort=[("_id", 1)],
            limit=SEARCH_EXPANSION_LIMIT + 1,
            projection={"_id": 1},
        )
        return None if len(rows) > SEARCH_EXPANSION_LIMIT else [row["_id"] for row in rows]

    async def search_page(
        self,
        tokens: Sequence[str],
        expanded: Sequence[Sequence[str]],
        *,
        sort_field: str,
        direction: int,
        skip: int,
        limit: int,
    ) -> tuple[list[str], int]:
        """Ids of one page of the publicly visible products having, for each query word of
        ``tokens``, one of its ``expanded`` words, in ``sort_field`` order (ties by id), and
        their total, from the search keys alone. ``sort_field`` is one of :data:`SEARCH_SORTS`.

        One query word: an indexed read with a limit per word it starts (merged) and an index
        count, see the module's notes. Several query words: the key ids of the rarest query word (by index counts) are
        read in order (ids only, from the index), made distinct per product and checked for
        the other query words by key (``_id`` lookups): work that grows with the rarest query
        word's matches, not with the catalogue."""
        field = SEARCH_SORTS[sort_field]
        sort = [(field, direction), ("_id", direction)]
        if any(not group for group in expanded):
            return [], 0
        if len(expanded) == 1 and len(expanded[0]) == 1:
            query = {"k": expanded[0][0], "v": True}
            rows, total = await asyncio.gather(
                self.search.find(query, sort=sort, skip=skip, limit=limit, projection={"_id": 1}),
                self.search.count(query),
            )
            return [_key_product(row["_id"]) for row in rows], total
        if len(expanded) == 1 and len(expanded[0]) <= SEARCH_MERGE_LIMIT:
            return await self._merged_page(tokens[0], expanded[0], field=field, direction=direction,
                                           skip=skip, limit=limit)  # fmt: skip
        return await self._intersected_page(expanded, sort=sort, skip=skip, limit=limit)

    async def _intersected_page(
        self, expanded: Sequence[Sequence[str]], *, sort: SortSpec, skip: int, limit: int
    ) -> tuple[list[str], int]:
        """Several query words: the rarest one's products in order, kept where every other
        query word has a key too."""
        counts = await asyncio.gather(
            *[self.search.count({"k": {"$in": list(group)}, "v": True}) for group in expanded]
        )
        driver = counts.index(min(counts))
        rows = await self.search.find(
            {"k": {"$in": list(expanded[driver])}, "v": True}, sort=sort, projection={"_id": 1}
        )
        # Keys sort by (field, productId, word): a product's keys are adjacent, keep its first.
        ids = list(dict.fromkeys(_key_product(row["_id"]) for row in rows))
        for index, group in enumerate(expanded):
            if index != driver and ids:
                having = await self._having_word(ids, group)
                ids = [i for i in ids if i in having]
        return ids[skip : skip + limit], len(ids)

    async def _having_word(self, ids: Sequence[str], group: Sequence[str]) -> set[str]:
        """Which of the products ``ids`` have a key for one of the words of ``group``."""
        having: set[str] = set()
        step = max(1, 2000 // len(group))
        for start in range(0, len(ids), step):
            wanted = [f"{i} {w}" for i in ids[start : start + step] for w in group]
            found = await self.search.find({"_id": {"$in": wanted}}, projection={"_id": 1})
            having.update(_key_product(d["_id"]) for d in found)
        return having

    async def _merged_page(
        self, token: str, group: Sequence[str], *, field: str, direction: int, skip: int, limit: int
    ) -> tuple[list[str], int]:
        """The page and total of one query word that starts several indexed words: the first
        ``skip + limit`` keys of each word, read in sort order from ``(k, v, field, _id)``,
        merged and made distinct per product (a product in the page is within the first
        ``skip + limit`` keys of each of its words); the total counts each product's first key
        in the run (``p < token``) on ``(k, v, p)``. (Filtering the page reads on ``p`` too
        would make SQLite pick ``(k, v, p)`` and sort every match.)"""
        sort = [(field, direction), ("_id", direction)]
        *streams, total = await asyncio.gather(
            *[
                self.search.find({"k": word, "v": True}, sort=sort, limit=skip + limit, projection={field: 1})
                for word in group
            ],
            self.search.count({"k": {"$in": list(group)}, "v": True, "p": {"$lt": token}}),
        )
        merged = sorted(
            ((row.get(field), _key_product(row["_id"])) for rows in streams for row in rows),
            key=lambda pair: (pair[0] is not None, pair[0] if pair[0] is not None else 0, pair[1]),
            reverse=direction < 0,
        )
        products = list(dict.fromkeys(product for _, product in merged))
        return products[skip : skip + limit], total

    async def products_with_prefix(self, token: str, *, limit: int) -> set[str] | None:
        """Ids of non-deleted products having a word that starts with ``token``, whatever their
        visibility; None when more than ``limit`` (or the word starts too many indexed words)."""
        group = await self.expand(token)
        if group is None:
            return None
        if not group:
            return set()
        rows = await self.search.find({"k": {"$in": group}}, limit=limit * 2 + 1, projection={"_id": 1})
        ids = {_key_product(row["_id"]) for row in rows}
        return None if len(ids) > limit or len(rows) > limit * 2 else ids

    # history

    @staticmethod
    def _history_doc(entry: Mapping[str, Any]) -> Document:
        return {"_id": entry.get("_id") or new_id(), **{k: v for k, v in entry.items() if k != "_id"},
                "createdAt": entry.get("createdAt") or now_iso()}  # fmt: skip

    async def add_history(self, entry: Mapping[str, Any]) -> Document:
        doc = self._history_doc(entry)
        await self.history.insert_one(doc)
        return doc

    async def add_history_once(self, entry: Mapping[str, Any]) -> bool:
        """Insert an entry with a deterministic ``_id``; False when it already exists."""
        try:
            await self.add_history(entry)
        except DuplicateKeyError:
            return False
        return True

    async def list_history(
        self, *, product_id: str, types: Sequence[str] | None, skip: int, limit: int
    ) -> tuple[list[Document], int]:
        """A product's entries of ``types`` (None = all), newest first, and their total."""
        query: dict[str, Any] = {"productId": product_id}
        if types is not None:
            query["type"] = types[0] if len(types) == 1 else {"$in": list(types)}
        items = await self.history.find(query, sort=[("createdAt", -1), ("_id", -1)], skip=skip, limit=limit)
        return items, await self.history.count(query)

    async def sales_since(self, *, seller_id: str, since: str) -> list[Document]:
        """A seller's sale entries since ``since`` that were not returned, newest first."""
        return await self.history.find(
            {"sellerId": seller_id, "type": "sale", "createdAt": {"$gte": since}, "returned": {"$ne": True}},
            sort=[("createdAt", -1), ("_id", -1)],
        )

    async def set_history_stock(self, *, entry_id: str, previous: int, new: int) -> None:
        """Fill in the stock figures of an entry written before the change it describes."""
        await self.history.update_one(
            {"_id": entry_id},
            {"$set": {"previousStock": previous, "newStock": new, "previousValue": previous, "newValue": new}},
        )

    async def mark_sale_returned(self, *, entry_id: str) -> None:
        await self.history.update_one({"_id": entry_id}, {"$set": {"returned": True}})

    # reservations

    async def insert_reservation(self, doc: Document) -> Document:
        """Insert the order's reservation; raises DuplicateKeyError when the order has one."""
        now = now_iso()
        doc = {"_id": new_id(), **doc, "createdAt": now, "updatedAt": now}
        await self.reservations.insert_one(doc)
        return doc

    async def get_reservation(self, order_id: str) -> Document | None:
        return await self.reservations.find_one({"orderId": order_id})

    async def move_reservation(
        self, *, order_id: str, status: str, fields: Mapping[str, Any], **expect: Any
    ) -> Document | None:
        """Set ``fields`` on the order's reservation if it is in ``status`` (and has the values
        of ``expect``); the document after, or None when that no longer holds."""
        return await self.reservations.find_one_and_update(
            {"orderId": order_id, "status": status, **expect}, {"$set": {**fields, "updatedAt": now_iso()}}
        )

    async def expire_reservation(self, *, order_id: str, now: str, fields: Mapping[str, Any]) -> Document | None:
        """Active → expired for a reservation whose ``expiresAt`` has passed."""
        return await self.reservations.find_one_and_update(
            {"orderId": order_id, "status": "active", "expiresAt": {"$lt": now}},
            {"$set": {**fields, "updatedAt": now_iso()}},
        )

    async def reservations_due(self, *, now: str, limit: int = 100) -> list[Document]:
        """Active (or stale pending) reservations whose ``expiresAt`` has passed."""
        return await self.reservations.find(
            {"status": {"$in": ["active", "pending"]}, "expiresAt": {"$lt": now}},
            sort=[("expiresAt", 1)],
            limit=limit,
        )

    async def reservations_unsettled(self, *, limit: int = 100) -> list[Document]:
        """Finished reservations whose product lines were not all processed (an interrupted run)."""
        return await self.reservations.find(
            {"status": {"$in": ["confirmed", "cancelled", "expired", "failed"]}, "settled": False}, limit=limit
        )

    # seller status

    async def get_seller_status(self, seller_id: str) -> Document | None:
        return await self.seller_status.find_one({"sellerId": seller_id})

    async def record_seller_status(self, *, seller_id: str, active: bool, token_version: int | None) -> None:
        """Upsert the seller's active flag; raise its token version (a smaller one never lowers it)."""
        await self.seller_status.update_one(
            {"sellerId": seller_id},
            {"$set": {"isActive": active, "updatedAt": now_iso()}, "$setOnInsert": {"_id": new_id()}},
            upsert=True,
        )
        if token_version is not None:
            await self.seller_status.update_one(
                {
                    "sellerId": seller_id,
                    "$or": [{"tokenVersion": {"$lt": token_version}}, {"tokenVersion": {"$exists": False}}],
                },
                {"$set": {"tokenVersion": token_version}},
            )
