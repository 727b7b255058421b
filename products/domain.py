"""The rules of the catalogue: products, visibility, search, history, analytics, admin, service.

No HTTP types, no messages for success and no store operators here: the domain decides,
:mod:`products.repository` reads and writes, routes pick the message. Errors are the shared
``AppError`` subclasses with the contract's messages. Stock counters are changed only in
``products.inventory``. Callers are :class:`shared.auth.Principal` values, or None for
anonymous public callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from products.levels import DEFAULT_LOW_STOCK_ALERT, stock_level
from products.repository import SEARCH_SORTS, ProductCriteria, ProductRepository
from products.schemas import ImageIn, ListQuery, ProductCreateIn, ProductFields, ProductUpdateIn
from products.settings import ProductsSettings
from products.text import has_words, search_fields, search_words
from products.views import bulk_view, history_view, inventory_row_view, product_view
from shared.auth import Principal
from shared.clients import ServiceClients, UpstreamStatus
from shared.responses import BadRequest, Forbidden, NotFound, ServiceUnavailable, Unauthorized, UpstreamError
from shared.store import Document, new_id
from shared.timeutil import now_iso
from shared.validation import from_cents, pagination

PRODUCT_NOT_FOUND = "Product not found"
NOT_OWNER = "You can only modify your own products"
SELLER_DEACTIVATED = "Seller account is deactivated"
INACTIVE_NOT_ALLOWED = "Not allowed to view inactive products"
MEDIA_UNAVAILABLE = "Media service unavailable"
LIVE_STATUSES = ("active", "inactive", "draft")
STOCK_TYPES = ("stock_add", "stock_reduce", "stock_update")
"""The stock history types (``stock_update`` is the legacy name, migrated at start-up)."""
HISTORY_FILTERS: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "price_change": ("price_change",),
    "status_change": ("status_change",),
    "sale": ("sale",),
    "stock_add": ("stock_add",),
    "stock_reduce": ("stock_reduce",),
    "stock_update": STOCK_TYPES,
    "movements": (*STOCK_TYPES, "sale"),
}
"""What each ``type`` filter of the history endpoints selects."""
HISTORY_TYPES = tuple(k for k in HISTORY_FILTERS if k not in ("all", "movements"))
INVENTORY_FILTERS = ("all", "active", "low", "out")
PUBLIC_LISTING = ProductCriteria(statuses=("active",), seller_active=True)
"""The criteria of an unfiltered public listing: the only search the search keys page alone."""
SEARCH_READY_RECHECK_SECONDS = 2.0


def sale_entry_id(order_id: str, product_id: str) -> str:
    """The deterministic id of the sale entry of one order line (makes recording idempotent)."""
    return hashlib.sha1(f"sale|{order_id}|{product_id}".encode()).hexdigest()[:24]


def is_public(doc: Mapping[str, Any]) -> bool:
    return doc.get("status") == "active" and bool(doc.get("sellerActive", True))


def is_service(principal: Principal | None) -> bool:
    """Service key or admin token: sees everything, deleted products included."""
    return principal is not None and (principal.is_service or principal.role == "admin")


def is_seller(principal: Principal | None, seller_id: str | None = None) -> bool:
    return (
        principal is not None and principal.role == "seller" and (seller_id is None or principal.user_id == seller_id)
    )


def _statuses(status: str | None) -> tuple[str, ...] | None:
    return LIVE_STATUSES if status == "all" else ((status,) if status else None)


def _listing_criteria(query: ListQuery, **fields: Any) -> ProductCriteria:
    """The criteria of a listing: ``fields`` plus the query's own filters."""
    return ProductCriteria(
        category=query.category,
        subcategory=query.subcategory,
        min_price_cents=query.min_price,
        max_price_cents=query.max_price,
        **fields,
    )


class Catalogue:
    """The catalogue use cases. Built once per app; public methods are keyword-only."""

    def __init__(self, *, repo: ProductRepository, clients: ServiceClients, settings: ProductsSettings) -> None:
        self.repo = repo
        self.clients = clients
        self.settings = settings
        self._seller_cache: dict[str, tuple[float, Document | None]] = {}
        self._search_ready = False
        self._search_checked = -SEARCH_READY_RECHECK_SECONDS
        self._keys_task: asyncio.Task[None] | None = None

    # search keys

    async def start(self) -> None:
        """Start building an older store's search keys in the background (start-up is not
        delayed; search reads products instead until they are there)."""
        self._keys_task = asyncio.create_task(self._build_search_keys())

    async def stop(self) -> None:
        if self._keys_task is not None:
            self._keys_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keys_task
            self._keys_task = None

    async def _build_search_keys(self) -> None:
        try:
            await self.repo.build_search_keys()
        except Exception:  # search keeps reading products; the next start tries again
            logging.getLogger(__name__).exception("building the search keys failed")
            return
        self._search_ready = True

    async def _search_keys_ready(self) -> bool:
        """Whether the search keys are complete (another process may finish them: re-read
        every few seconds until they are)."""
        now = time.monotonic()
        if not self._search_ready and now - self._search_checked >= SEARCH_READY_RECHECK_SECONDS:
            self._search_checked = now
            self._search_ready = await self.repo.search_keys_ready()
        return self._search_ready

    # sellers

    async def _seller_status(self, seller_id: str, *, fresh: bool = False) -> Document | None:
        """The seller's ``seller_status``: from a small cache for at most
        ``SELLER_STATUS_CACHE_SECONDS`` (other processes' writes show within that), read
        afresh when ``fresh`` and whenever this process writes it."""
        now = time.monotonic()
        cached = self._seller_cache.get(seller_id)
        if not fresh and cached is not None and now - cached[0] < self.settings.SELLER_STATUS_CACHE_SECONDS:
            return cached[1]
        status = await self.repo.get_seller_status(seller_id)
        if len(self._seller_cache) >= 10_000:
            self._seller_cache.clear()
        self._seller_cache[seller_id] = (now, status)
        return status

    async def check_token_version(self, *, seller_id: str, version: Any) -> None:
        """401 ``Invalid token`` for a seller token older than the recorded token version."""
        status = await self._seller_status(seller_id)
        recorded = int((status or {}).get("tokenVersion") or 0)
        given = version if isinstance(version, int) and not isinstance(version, bool) else 0
        if given < recorded:
            raise Unauthorized("Invalid token")

    async def ensure_seller_active(self, *, seller_id: str) -> None:
        """403 when the sellers service told us this seller is deactivated (always read afresh)."""
        status = await self._seller_status(seller_id, fresh=True)
        if status is not None and not status.get("isActive", True):
            raise Forbidden(SELLER_DEACTIVATED)

    # reading single products

    async def get_product(self, *, product_id: str, principal: Principal | None) -> Document:
        """A product as ``principal`` may see it: deleted only for svc/admin, hidden ones for the owner too."""
        doc = await self.repo.get_product(product_id)
        if doc is None or not self.can_see(doc=doc, principal=principal):
            raise NotFound(PRODUCT_NOT_FOUND)
        return doc

    @staticmethod
    def can_see(*, doc: Mapping[str, Any], principal: Principal | None) -> bool:
        if is_service(principal):
            return True
        if doc.get("status") == "deleted":
            return False
        return is_public(doc) or is_seller(principal, doc.get("sellerId"))

    async def owned_product(
        self, *, product_id: str, principal: Principal, message: str = NOT_OWNER, with_reservations: bool = False
    ) -> Document:
        """A non-deleted product the service or its owning seller acts on (403 for other sellers);
        its ``reservations`` lines only when asked."""
        doc = await self.repo.get_product(product_id, with_reservations=with_reservations)
        if doc is None or doc.get("status") == "deleted":
            raise NotFound(PRODUCT_NOT_FOUND)
        if not is_service(principal) and not is_seller(principal, doc["sellerId"]):
            raise Forbidden(message)
        return doc

    async def writable_product(self, *, product_id: str, principal: Principal) -> Document:
        """An owned product whose seller may still write (403 when deactivated)."""
        product = await self.owned_product(product_id=product_id, principal=principal)
        if not is_service(principal):
            await self.ensure_seller_active(seller_id=product["sellerId"])
        return product

    # listing

    async def list_public(self, *, query: ListQuery, principal: Principal | None) -> dict[str, Any]:
        """Endpoint 1: the catalogue; non-active statuses for svc or the seller itself."""
        seller_id = query.seller_id
        if query.status != "active":
            if is_seller(principal) and not is_service(principal):
                seller_id = seller_id or principal.user_id  # type: ignore[union-attr]
                if seller_id != principal.user_id:  # type: ignore[union-attr]
                    raise Forbidden(INACTIVE_NOT_ALLOWED)
            elif not is_service(principal):
                raise Forbidden(INACTIVE_NOT_ALLOWED)
        owner_view = is_service(principal) or (seller_id is not None and is_seller(principal, seller_id))
        criteria = _listing_criteria(
            query, statuses=_statuses(query.status), seller_active=None if owner_view else True, seller_id=seller_id
        )
        return await self._page(criteria, query)

    async def list_seller(self, *, seller_id: str, query: ListQuery, principal: Principal | None) -> dict[str, Any]:
        """Endpoint 6: a seller's products with a summary (all statuses for owner/svc)."""
        privileged = is_service(principal) or is_seller(principal, seller_id)
        status = query.status or ("all" if privileged else "active")
        if status != "active" and not privileged:
            raise Forbidden(INACTIVE_NOT_ALLOWED)
        criteria = _listing_criteria(
            query, statuses=_statuses(status), seller_active=None if privileged else True, seller_id=seller_id
        )
        filtered = query.search or query.category or query.subcategory or _has_price_window(query)
        if privileged and not filtered:
            # The page's total is one of the summary's counts: do not count it twice.
            docs, (summary, by_status) = await asyncio.gather(
                self.repo.page_only(
                    criteria, sort_field=query.sort_field, direction=query.sort_direction,
                    skip=(query.page - 1) * query.limit, limit=query.limit,
                ),
                self._seller_counts(seller_id),
            )  # fmt: skip
            total = summary["total"] if status == "all" else by_status[status]
            page = {
                "products": [product_view(d) for d in docs],
                "pagination": pagination(query.page, query.limit, total),
            }
        else:
            page, summary = await asyncio.gather(self._page(criteria, query), self.seller_summary(seller_id=seller_id))
        return {"products": page["products"], "pagination": page["pagination"], "summary": summary}

    async def seller_summary(self, *, seller_id: str) -> dict[str, int]:
        """Counts of a seller's non-deleted products, each served by the (sellerId, status, stockLevel) index."""
        summary, _ = await self._seller_counts(seller_id)
        return summary

    async def _seller_counts(self, seller_id: str) -> tuple[dict[str, int], dict[str, int]]:
        """The seller summary and its products' count per live status."""
        count = self.repo.count_products
        # Independent counts: run them side by side (the store reads on several connections).
        *statuses, low, out = await asyncio.gather(
            *[count(ProductCriteria(seller_id=seller_id, statuses=(s,))) for s in LIVE_STATUSES],
            count(ProductCriteria(seller_id=seller_id, statuses=("active",), stock_level="low")),
            count(ProductCriteria(seller_id=seller_id, statuses=("active",), stock_level="out")),
        )
        by_status = dict(zip(LIVE_STATUSES, statuses, strict=True))
        return {
            "total": sum(by_status.values()),
            "active": by_status["active"],
            "inactive": by_status["inactive"],
            "lowStock": low,
            "outOfStock": out,
        }, by_status

    async def seller_inventory(self, *, seller_id: str, status: str, page: int, limit: int) -> dict[str, Any]:
        """Endpoint 12: a page of a seller's inventory rows and totals over its live products."""
        live = ProductCriteria(seller_id=seller_id, statuses=LIVE_STATUSES)
        selected = {
            "all": live,
            "active": ProductCriteria(seller_id=seller_id, statuses=("active",)),
            "low": ProductCriteria(seller_id=seller_id, statuses=("active",), stock_level="low"),
            "out": ProductCriteria(seller_id=seller_id, statuses=("active",), stock_level="out"),
        }[status]
        docs, total = await self.repo.page_products(
            selected, sort_field="createdAt", direction=-1, skip=(page - 1) * limit, limit=limit
        )
        rows = await self.repo.product_rows(
            live, fields=("status", "totalStock", "reservedStock", "soldStock", "stock", "stockLevel")
        )
        summary = {
            "totalProducts": len(rows),
            "totalStock": sum(int(r.get("totalStock", 0)) for r in rows),
            "totalReserved": sum(int(r.get("reservedStock", 0)) for r in rows),
            "totalSold": sum(int(r.get("soldStock", 0)) for r in rows),
            "totalAvailable": sum(int(r.get("stock", 0)) for r in rows),
            "lowStockCount": sum(r["status"] == "active" and r.get("stockLevel") == "low" for r in rows),
            "outOfStockCount": sum(r["status"] == "active" and r.get("stockLevel") == "out" for r in rows),
        }
        return {
            "inventories": [inventory_row_view(d) for d in docs],
            "pagination": pagination(page, limit, total),
            "summary": summary,
        }

    async def admin_list(self, *, query: ListQuery) -> dict[str, Any]:
        """Endpoint 13: every product, deleted included; ``search`` also matches the category."""
        criteria = _listing_criteria(
            query,
            statuses=None if query.status == "all" else (query.status or "all",),
            seller_id=query.seller_id,
            text=query.search,
        )
        docs, total = await self.repo.page_products(
            criteria, sort_field=query.sort_field, direction=query.sort_direction,
            skip=(query.page - 1) * query.limit, limit=query.limit,
        )  # fmt: skip
        return {"products": [product_view(d) for d in docs], "pagination": pagination(query.page, query.limit, total)}

    async def _page(self, criteria: ProductCriteria, query: ListQuery) -> dict[str, Any]:
        """A page of ``criteria``, narrowed by the query's search words through the keyword
        index; a search without any word character (``!!!``) matches nothing, at no cost."""
        window = {
            "sort_field": query.sort_field, "direction": query.sort_direction,
            "skip": (query.page - 1) * query.limit, "limit": query.limit,
        }  # fmt: skip
        tokens = search_words(query.search) if query.search else ()
        if query.search and not tokens:  # no word to look up: nothing matches (and nothing is scanned)
            docs, total = [], 0
        elif not tokens:
            docs, total = await self.repo.page_products(criteria, **window)
        elif not await self._search_keys_ready():  # an older store still getting its keys
            docs, total = await self.repo.page_products(
                ProductCriteria(**{**_fields(criteria), "words": tokens}), **window
            )
        else:
            keyed = await self._keyed_page(criteria, query, tokens, window)
            docs, total = keyed if keyed is not None else await self._page_candidates(criteria, tokens, window)
        return {"products": [product_view(d) for d in docs], "pagination": pagination(query.page, query.limit, total)}

    async def _keyed_page(
        self, criteria: ProductCriteria, query: ListQuery, tokens: tuple[str, ...], window: dict[str, Any]
    ) -> tuple[list[Document], int] | None:
        """A public search page sorted by date or price, read from the search keys alone; None
        when the keys cannot serve it (other criteria or sorts, a word starting too many words)."""
        if criteria != PUBLIC_LISTING or query.sort_field not in SEARCH_SORTS:
            return None
        expanded = await asyncio.gather(*[self.repo.expand(token) for token in tokens])
        if any(group is None for group in expanded):
            return None
        ids, total = await self.repo.search_page(tokens, expanded, **window)  # type: ignore[arg-type]
        found = {d["_id"]: d for d in await self.repo.get_products(ids)}
        # Keys are written after their product: one whose keys lag a change is left out.
        docs = [
            d for i in ids if (d := found.get(i)) and is_public(d) and has_words(d.get("searchText", ""), tokens)
        ]
        return docs, total

    async def _page_candidates(
        self, criteria: ProductCriteria, tokens: tuple[str, ...], window: dict[str, Any]
    ) -> tuple[list[Document], int]:
        """A search that the keys do not page (owner views, other filters or sorts, a very short
        word): the rarest word's products are filtered, sorted and counted by the products query."""
        candidates = await self._candidates(tokens)
        if candidates is None:  # a word too common for the keys: scan searchText
            return await self.repo.page_products(ProductCriteria(**{**_fields(criteria), "words": tokens}), **window)
        if not candidates:
            return [], 0
        narrowed = ProductCriteria(**{**_fields(criteria), "ids": tuple(sorted(candidates)), "words": tokens})
        return await self.repo.page_products_by_ids(narrowed, **window)

    async def _candidates(self, tokens: tuple[str, ...]) -> set[str] | None:
        """Ids of products having a word starting with the rarest token (the query checks the
        others); None when even that one matches more than ``SEARCH_CANDIDATE_LIMIT``."""
        for token in sorted(tokens, key=len, reverse=True):
            ids = await self.repo.products_with_prefix(token, limit=self.settings.SEARCH_CANDIDATE_LIMIT)
            if ids is not None:
                return ids
        return None

    # writing products

    async def create(self, *, seller_id: str, data: ProductCreateIn) -> dict[str, Any]:
        """Endpoint 3: validate and mark the images at the media service, then insert."""
        if data.sellerId is not None and data.sellerId != seller_id:
            raise Forbidden("Cannot create products for another seller")
        await self.ensure_seller_active(seller_id=seller_id)
        images = normalize_images(data.images or [])
        await self.use_media(media_ids=[i["media_id"] for i in images if i.get("media_id")])
        seller = await self._seller_status(seller_id, fresh=True)
        doc, _ = build_product(
            data,
            seller_id=seller_id,
            images=images,
            seller_active=bool(seller.get("isActive", True)) if seller else True,
        )
        await self.repo.insert_product(doc)
        # A deactivation that raced with this insert has already swept the seller's products.
        latest = await self._seller_status(seller_id, fresh=True)
        if latest is not None and not latest.get("isActive", True) and doc["sellerActive"]:
            doc = await self.repo.hide_for_inactive_seller(product_id=doc["_id"]) or doc
        return product_view(doc)

    async def update(self, *, product: Document, seller_id: str, data: ProductUpdateIn) -> dict[str, Any]:
        """Endpoint 4: partial update with history (``stock`` goes through endpoint 9's rule,
        ``lowStockAlert`` through :meth:`products.inventory.Inventory.set_low_alert`)."""
        sent = data.model_fields_set
        if not sent - {"sellerId"}:
            return product_view(product)
        await self.ensure_seller_active(seller_id=seller_id)
        fields = _changed_fields(data, sent)
        if "images" in sent:
            fields["images"] = normalize_images(data.images or [])
            await self.use_media(media_ids=[i["media_id"] for i in fields["images"] if i.get("media_id")])
        status = data.requested_status()
        if status is not None:
            fields["status"] = status
        content = {k: fields.get(k, product.get(k)) for k in ("name", "description", "tags")}
        if any(k in fields for k in content):
            fields["searchText"], _ = search_fields(content["name"], content["description"], content["tags"])
        before = product
        if fields:
            before = await self.repo.update_product_fields(
                product_id=product["_id"], seller_id=seller_id, fields=fields
            )
            if before is None:
                raise NotFound(PRODUCT_NOT_FOUND)
            await self._write_change_history(before, fields)
        return product_view(await self.repo.get_product(product["_id"]) or before)

    async def _write_change_history(self, before: Document, fields: Mapping[str, Any]) -> None:
        if "priceCents" in fields and fields["priceCents"] != before.get("priceCents"):
            old, new = from_cents(before.get("priceCents", 0)), from_cents(fields["priceCents"])
            await self.repo.add_history(
                {
                    "productId": before["_id"],
                    "sellerId": before["sellerId"],
                    "type": "price_change",
                    "previousValue": old,
                    "newValue": new,
                    "previousPrice": old,
                    "newPrice": new,
                    "notes": None,
                }  # fmt: skip
            )
        if "status" in fields and fields["status"] != before.get("status"):
            await self.status_history(before=before, status=fields["status"])

    async def status_history(self, *, before: Mapping[str, Any], status: str, notes: str | None = None) -> None:
        old = before.get("status")
        await self.repo.add_history(
            {
                "productId": before["_id"],
                "sellerId": before["sellerId"],
                "type": "status_change",
                "previousValue": old,
                "newValue": status,
                "previousStatus": old,
                "newStatus": status,
                "notes": notes,
            }  # fmt: skip
        )

    async def delete(self, *, product_id: str, principal: Principal) -> None:
        """Endpoint 5: soft delete (owner or service)."""
        await self.writable_product(product_id=product_id, principal=principal)
        before = await self.repo.soft_delete(product_id=product_id)
        if before is None:
            raise NotFound(PRODUCT_NOT_FOUND)
        await self.status_history(before=before, status="deleted")

    async def admin_set_status(self, *, product_id: str, status: str) -> dict[str, Any]:
        """Endpoint 14: any product (deleted ones are restored)."""
        before = await self.repo.set_status(product_id=product_id, status=status)
        if before is None:
            raise NotFound(PRODUCT_NOT_FOUND)
        if before.get("status") != status:
            await self.status_history(before=before, status=status, notes="Set by admin")
        return product_view(await self.repo.get_product(product_id) or before)

    async def use_media(self, *, media_ids: list[str]) -> None:
        """Validate then mark used at the media service; 400 for invalid ids, 503 when it is down."""
        ids = list(dict.fromkeys(media_ids))
        if not ids:
            return
        media = self.clients.get("media")
        timeout = self.settings.MEDIA_TIMEOUT_SECONDS
        try:
            checked = await media.call("POST", "/api/v1/media/validate", json={"fileIds": ids}, timeout=timeout)
            files = checked.get("files") if isinstance(checked, dict) else None
            if not isinstance(files, list):
                raise ServiceUnavailable(MEDIA_UNAVAILABLE)
            _raise_invalid([i for i in ids if i not in _ids_where(files, "valid")])
            marked = await media.call("POST", "/api/v1/media/bulk-mark-used", json={"fileIds": ids}, timeout=timeout)
        except (UpstreamError, UpstreamStatus):
            raise ServiceUnavailable(MEDIA_UNAVAILABLE) from None
        results = marked.get("results") if isinstance(marked, dict) else None
        if not isinstance(results, list):
            raise ServiceUnavailable(MEDIA_UNAVAILABLE)
        _raise_invalid([i for i in ids if i not in _ids_where(results, "success")])

    # history and analytics

    async def history(
        self, *, product_id: str, principal: Principal, kind: str, page: int, limit: int
    ) -> dict[str, Any]:
        """Endpoints 8 and 28: newest first; ``kind`` is a key of :data:`HISTORY_FILTERS`."""
        product = await self.repo.get_product(product_id)
        if product is None or not (is_service(principal) or product.get("status") != "deleted"):
            raise NotFound(PRODUCT_NOT_FOUND)
        if not is_service(principal) and not is_seller(principal, product["sellerId"]):
            raise Forbidden("Access denied")
        entries, total = await self.repo.list_history(
            product_id=product_id, types=HISTORY_FILTERS[kind], skip=(page - 1) * limit, limit=limit
        )
        return {"history": [history_view(e) for e in entries], "pagination": pagination(page, limit, total)}

    async def analytics(self, *, seller_id: str, period: int) -> dict[str, Any]:
        """Endpoint 7: period figures from sale history, current figures from the products."""
        sales = await self.repo.sales_since(seller_id=seller_id, since=now_iso(-timedelta(days=period)))
        products = await self.repo.product_rows(
            ProductCriteria(seller_id=seller_id, statuses=LIVE_STATUSES),
            fields=("name", "status", "stock", "lowStockAlert", "stockLevel"),
        )
        return sales_analytics(period=period, sales=sales, products=products)

    # service endpoints

    async def bulk(self, *, product_ids: list[str]) -> list[dict[str, Any]]:
        """Endpoint 15: purchasable products in request order (unknown/malformed omitted)."""
        ids = [i.lower() for i in dict.fromkeys(product_ids) if re.fullmatch(r"[0-9a-fA-F]{24}", i)]
        found = {d["_id"]: d for d in await self.repo.get_products(ids) if is_public(d)}
        return [bulk_view(found[i]) for i in ids if i in found]

    async def validate_seller(self, *, product_id: str, seller_id: str) -> dict[str, Any]:
        product = await self.repo.get_product(product_id)
        if product is None:
            raise NotFound(PRODUCT_NOT_FOUND)
        return {
            "productId": product_id,
            "sellerId": seller_id,
            "isValid": product["sellerId"] == seller_id,
            "actualSellerId": product["sellerId"],
        }

    async def record_sale(self, *, order_id: str, customer_id: str | None, items: list[Any]) -> list[dict[str, Any]]:
        """Endpoint 17: sale figures without stock; an (order, product) already recorded is skipped."""
        results = []
        for line in items:
            product = await self.repo.get_product(line.productId)
            if product is None:
                results.append({"productId": line.productId, "success": False, "message": PRODUCT_NOT_FOUND})
                continue
            unit = line.unitPrice if line.unitPrice is not None else int(product.get("priceCents", 0))
            total = line.totalPrice if line.totalPrice is not None else unit * line.quantity
            recorded = await self.record_sale_entry(
                product=product, order_id=order_id, customer_id=customer_id, quantity=line.quantity,
                unit_cents=unit, total_cents=total,
            )  # fmt: skip
            result: dict[str, Any] = {
                "productId": line.productId, "success": True, "quantity": line.quantity, "totalPrice": from_cents(total)
            }  # fmt: skip
            if recorded:
                await self.repo.add_sale_totals(product_id=line.productId, quantity=line.quantity, cents=total)
            else:
                result.update(skipped=True, message="Sale already recorded")
            results.append(result)
        return results

    async def record_sale_entry(
        self,
        *,
        product: Mapping[str, Any],
        order_id: str,
        customer_id: str | None,
        quantity: int,
        unit_cents: int,
        total_cents: int,
    ) -> bool:
        """Write the ``sale`` entry of one order line once; False when it already exists."""
        return await self.repo.add_history_once(
            {
                "_id": sale_entry_id(order_id, product["_id"]),
                "productId": product["_id"],
                "sellerId": product["sellerId"],
                "type": "sale",
                "previousValue": None,
                "newValue": None,
                "quantity": quantity,
                "orderId": order_id,
                "customerId": customer_id,
                "notes": None,
                "amountCents": total_cents,
                "metadata": {
                    "unitPrice": from_cents(unit_cents),
                    "totalPrice": from_cents(total_cents),
                    "productName": product.get("name"),
                    "category": product.get("category"),
                },
            }
        )

    async def set_seller_status(self, *, seller_id: str, active: bool, token_version: int | None) -> dict[str, Any]:
        """Endpoint 25: remember the seller's state (and token version); hide or show its products."""
        await self.repo.record_seller_status(seller_id=seller_id, active=active, token_version=token_version)
        self._seller_cache.pop(seller_id, None)
        modified = await self.repo.set_seller_active(seller_id=seller_id, active=active)
        return {"sellerId": seller_id, "isActive": active, "modifiedCount": modified}

    async def stats(self) -> dict[str, int]:
        count = self.repo.count_products
        total, active, out, low = await asyncio.gather(
            count(ProductCriteria(statuses=LIVE_STATUSES)),
            count(ProductCriteria(statuses=("active",))),
            count(ProductCriteria(statuses=("active",), stock_level="out")),
            count(ProductCriteria(statuses=("active",), stock_level="low")),
        )
        return {"total": total, "active": active, "outOfStock": out, "lowStock": low}


def _has_price_window(query: ListQuery) -> bool:
    return query.min_price is not None or query.max_price is not None


def _fields(criteria: ProductCriteria) -> dict[str, Any]:
    return {name: getattr(criteria, name) for name in criteria.__slots__}  # type: ignore[attr-defined]


def _ids_where(rows: list[Any], flag: str) -> set[str]:
    """Lower-cased ``id`` of the media answer rows whose ``flag`` is true."""
    return {
        r["id"].lower() for r in rows if isinstance(r, dict) and isinstance(r.get("id"), str) and r.get(flag) is True
    }


def _sales_totals(sales: list[Document]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Units and cents of the sales by product, by day (with their orders) and by category."""
    by_product: dict[str, dict[str, Any]] = {}
    by_day: dict[str, dict[str, Any]] = defaultdict(lambda: {"units": 0, "cents": 0, "orders": set()})
    by_category: dict[str, dict[str, Any]] = defaultdict(lambda: {"units": 0, "cents": 0})
    for sale in sales:
        units, cents = int(sale.get("quantity") or 0), int(sale.get("amountCents") or 0)
        meta = sale.get("metadata") or {}
        row = by_product.setdefault(
            sale["productId"], {"productId": sale["productId"], "name": meta.get("productName"), "units": 0, "cents": 0}
        )
        day = by_day[sale["createdAt"][:10]]
        category = by_category[meta.get("category") or "uncategorized"]
        for bucket in (row, day, category):
            bucket["units"] += units
            bucket["cents"] += cents
        day["orders"].add(sale.get("orderId"))
    return by_product, by_day, by_category


def sales_analytics(*, period: int, sales: list[Document], products: list[Document]) -> dict[str, Any]:
    """Endpoint 7's figures from the period's sale entries and the seller's live products."""
    by_product, by_day, by_category = _sales_totals(sales)
    top = sorted(by_product.values(), key=lambda r: (-r["units"], -r["cents"]))[:5]
    active = [p for p in products if p["status"] == "active"]
    low = sorted(
        (p for p in active if p.get("stockLevel") in ("low", "out")), key=lambda p: (p.get("stock", 0), p["_id"])
    )
    return {
        "period": period,
        "summary": {
            "totalProducts": len(products),
            "activeProducts": len(active),
            "totalSold": sum(r["units"] for r in by_product.values()),
            "totalRevenue": _money_sum(r["cents"] for r in by_product.values()),
            "orderCount": len({s.get("orderId") for s in sales}),
            "lowStockProducts": sum(p.get("stockLevel") == "low" for p in active),
            "outOfStockProducts": sum(p.get("stockLevel") == "out" for p in active),
        },
        "topProducts": [
            {"productId": r["productId"], "name": r["name"], "unitsSold": r["units"], "revenue": from_cents(r["cents"])}
            for r in top
        ],
        "lowStockProducts": [
            {
                "productId": p["_id"],
                "name": p.get("name"),
                "stock": p.get("stock", 0),
                "lowStockAlert": p.get("lowStockAlert", DEFAULT_LOW_STOCK_ALERT),
            }  # fmt: skip
            for p in low[:20]
        ],
        "recentSales": [history_view(s) for s in sales[:10]],
        "salesAnalytics": [
            {
                "date": date,
                "totalSales": d["units"],
                "totalRevenue": from_cents(d["cents"]),
                "orderCount": len(d["orders"]),
            }  # fmt: skip
            for date, d in sorted(by_day.items())
        ],
        "salesByCategory": [
            {"id": name, "totalSales": c["units"], "totalRevenue": from_cents(c["cents"])}
            for name, c in sorted(by_category.items(), key=lambda item: -item[1]["cents"])
        ],
    }


def build_product(
    data: ProductCreateIn, *, seller_id: str, images: list[dict[str, Any]], seller_active: bool
) -> tuple[Document, list[str]]:
    """A new product document from validated input, with the words its search terms index."""
    name, description, tags = data.name, data.description or "", data.tags or []
    text, terms = search_fields(name, description, tags)
    stock = data.stock or 0
    low = DEFAULT_LOW_STOCK_ALERT if data.lowStockAlert is None else data.lowStockAlert
    now = now_iso()
    doc: Document = {
        "_id": new_id(),
        "name": name,
        "description": description,
        "priceCents": data.price,
        "comparePriceCents": data.comparePrice,
        "category": data.category or "uncategorized",
        "subcategory": data.subcategory,
        "sellerId": seller_id,
        "images": images,
        "specifications": data.specifications or {},
        "tags": tags,
        "status": data.requested_status() or "active",
        "sellerActive": seller_active,
        "totalStock": stock,
        "reservedStock": 0,
        "soldStock": 0,
        "stock": stock,
        "lowStockAlert": low,
        "stockLevel": stock_level(stock, low),
        "totalSold": 0,
        "revenueCents": 0,
        "searchText": text,
        "reservations": [],
        "createdAt": now,
        "updatedAt": now,
    }
    return doc, terms


def normalize_images(images: list[ImageIn]) -> list[dict[str, Any]]:
    """Stored images: exactly one primary (the first marked, else the first)."""
    primary = next((i for i, image in enumerate(images) if image.isPrimary), 0)
    stored = []
    for index, image in enumerate(images):
        item: dict[str, Any] = {}
        if image.media_id:
            item["media_id"] = image.media_id
        if image.url:
            item["url"] = image.url
        item["isPrimary"] = index == primary
        if image.altText:
            item["altText"] = image.altText
        stored.append(item)
    return stored


def _raise_invalid(ids: list[str]) -> None:
    if ids:
        raise BadRequest(f"Invalid media files: {', '.join(ids)}")


def _money_sum(cents: Iterable[int]) -> float:
    return float(sum((Decimal(c) for c in cents), Decimal(0)) / 100)


def _changed_fields(data: ProductFields, sent: set[str]) -> dict[str, Any]:
    """The stored fields an update sets (status, images and stock are handled apart)."""
    mapping = {
        "name": "name", "description": "description", "price": "priceCents", "comparePrice": "comparePriceCents",
        "category": "category", "subcategory": "subcategory", "specifications": "specifications", "tags": "tags",
    }  # fmt: skip
    return {stored: getattr(data, name) for name, stored in mapping.items() if name in sent}
