"""The rules of the catalogue: products, visibility, search, history, analytics, admin, service.

No HTTP types here; errors are the shared ``AppError`` subclasses with the contract's
messages. Stock counters are changed only in ``products.inventory`` (conditional updates).
Callers are :class:`shared.auth.Principal` values, or None for anonymous public callers.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from products.repository import ProductRepository
from products.schemas import ImageIn, ListQuery, ProductCreateIn, ProductFields, ProductUpdateIn
from products.settings import ProductsSettings
from products.views import bulk_view, history_view, product_view, stock_level
from shared.auth import Principal
from shared.clients import ServiceClients, UpstreamStatus
from shared.responses import BadRequest, Forbidden, NotFound, ServiceUnavailable, UpstreamError
from shared.store import Document, new_id
from shared.timeutil import now_iso
from shared.validation import from_cents, pagination

PRODUCT_NOT_FOUND = "Product not found"
NOT_OWNER = "You can only modify your own products"
SELLER_DEACTIVATED = "Seller account is deactivated"
INACTIVE_NOT_ALLOWED = "Not allowed to view inactive products"
MEDIA_UNAVAILABLE = "Media service unavailable"
LIVE_STATUSES = ["active", "inactive", "draft"]
HISTORY_TYPES = {
    "price_change": "price_change",
    "stock_update": "stock_update",
    "status_change": "status_change",
    "sale": "sale",
    "stock_add": "stock_update",
    "stock_reduce": "stock_update",
}
WORD_RE = re.compile(r"\w+")
MAX_SEARCH_WORDS = 10


# search text


def words(text: str) -> list[str]:
    """The normalized words of ``text`` (case-folded ``\\w+`` runs), in order."""
    return WORD_RE.findall(text.casefold())


def search_fields(name: str, description: str, tags: Iterable[str]) -> tuple[str, list[str]]:
    """``searchText`` (lower-case name, description, tags) and the distinct words it indexes."""
    text = " ".join([name, description, *tags]).casefold()
    return text, sorted(set(words(text)))


def search_conditions(search: str) -> list[dict[str, Any]]:
    """Store conditions on ``searchText`` equivalent to the keyword lookup (the scan fallback).

    Every query word must start a word of the text; a query without any word is matched as a
    literal substring. Regex metacharacters are always escaped.
    """
    tokens = list(dict.fromkeys(words(search)))[:MAX_SEARCH_WORDS]
    if not tokens:
        return [{"searchText": {"$regex": re.escape(search.casefold())}}]
    return [{"searchText": {"$regex": r"(?<!\w)" + re.escape(token)}} for token in tokens]


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


def _sort(field: str, direction: int) -> list[tuple[str, int]]:
    return [(field, direction), ("_id", direction)]


def _status_filter(status: str | None) -> Any:
    return {"$in": LIVE_STATUSES} if status == "all" else status


class Catalogue:
    """The catalogue use cases. Built once per app; methods are keyword-only."""

    def __init__(self, *, repo: ProductRepository, clients: ServiceClients, settings: ProductsSettings) -> None:
        self.repo = repo
        self.clients = clients
        self.settings = settings

    # reading single products

    async def get_product(self, *, product_id: str, principal: Principal | None) -> Document:
        """A product as ``principal`` may see it: deleted only for svc/admin, hidden ones for the owner too."""
        doc = await self.repo.get_product(product_id)
        if doc is None or not self.can_see(doc, principal):
            raise NotFound(PRODUCT_NOT_FOUND)
        return doc

    @staticmethod
    def can_see(doc: Mapping[str, Any], principal: Principal | None) -> bool:
        if is_service(principal):
            return True
        if doc.get("status") == "deleted":
            return False
        return is_public(doc) or is_seller(principal, doc.get("sellerId"))

    async def owned_product(self, *, product_id: str, principal: Principal, message: str = NOT_OWNER) -> Document:
        """A non-deleted product the service or its owning seller acts on (403 for other sellers)."""
        doc = await self.repo.get_product(product_id)
        if doc is None or doc.get("status") == "deleted":
            raise NotFound(PRODUCT_NOT_FOUND)
        if not is_service(principal) and not is_seller(principal, doc["sellerId"]):
            raise Forbidden(message)
        return doc

    async def ensure_seller_active(self, *, seller_id: str) -> None:
        """403 when the sellers service told us this seller is deactivated."""
        status = await self.repo.get_seller_status(seller_id)
        if status is not None and not status.get("isActive", True):
            raise Forbidden(SELLER_DEACTIVATED)

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
        base: dict[str, Any] = {"status": _status_filter(query.status)}
        if not owner_view:
            base["sellerActive"] = True
        if seller_id:
            base["sellerId"] = seller_id
        return await self._page(base, query)

    async def list_seller(self, *, seller_id: str, query: ListQuery, principal: Principal | None) -> dict[str, Any]:
        """Endpoint 6: a seller's products with a summary (all statuses for owner/svc)."""
        privileged = is_service(principal) or is_seller(principal, seller_id)
        status = query.status or ("all" if privileged else "active")
        if status != "active" and not privileged:
            raise Forbidden(INACTIVE_NOT_ALLOWED)
        base: dict[str, Any] = {"sellerId": seller_id, "status": _status_filter(status)}
        if not privileged:
            base["sellerActive"] = True
        page, summary = await asyncio.gather(self._page(base, query), self.seller_summary(seller_id=seller_id))
        return {"products": page["products"], "pagination": page["pagination"], "summary": summary}

    async def seller_summary(self, *, seller_id: str) -> dict[str, int]:
        """Counts of a seller's non-deleted products, each served by the (sellerId, status, stockLevel) index."""
        count = self.repo.count_products
        # Independent counts: run them side by side (the store reads on several connections).
        *statuses, low, out = await asyncio.gather(
            *[count({"sellerId": seller_id, "status": s}) for s in LIVE_STATUSES],
            count({"sellerId": seller_id, "status": "active", "stockLevel": "low"}),
            count({"sellerId": seller_id, "status": "active", "stockLevel": "out"}),
        )
        by_status = dict(zip(LIVE_STATUSES, statuses, strict=True))
        return {
            "total": sum(by_status.values()),
            "active": by_status["active"],
            "inactive": by_status["inactive"],
            "lowStock": low,
            "outOfStock": out,
        }

    async def admin_list(self, *, query: ListQuery) -> dict[str, Any]:
        """Endpoint 13: every product, deleted included; ``search`` also matches the category."""
        base: dict[str, Any] = {}
        if query.status != "all":
            base["status"] = query.status
        if query.seller_id:
            base["sellerId"] = query.seller_id
        if query.search:
            text = {"$regex": re.escape(query.search), "$options": "i"}
            base["$or"] = [{"searchText": text}, {"category": text}]
            query = replace(query, search=None)
        return await self._page(base, query)

    async def _page(self, base: dict[str, Any], query: ListQuery) -> dict[str, Any]:
        condition = dict(base)
        if query.category:
            condition["category"] = query.category
        if query.subcategory:
            condition["subcategory"] = query.subcategory
        price: dict[str, int] = {}
        if query.min_price is not None:
            price["$gte"] = query.min_price
        if query.max_price is not None:
            price["$lte"] = query.max_price
        if price:
            condition["priceCents"] = price
        sort = _sort(query.sort_field, query.sort_direction)
        skip = (query.page - 1) * query.limit
        docs: list[Document] | None = None
        if query.search:
            docs, total = await self._search(condition, query, sort=sort, skip=skip)
        if docs is None:
            if query.search:
                condition["$and"] = search_conditions(query.search)
            docs, total = await self.repo.list_products(condition, sort=sort, skip=skip, limit=query.limit)
        return {"products": [product_view(d) for d in docs], "pagination": pagination(query.page, query.limit, total)}

    async def _search(
        self, condition: Mapping[str, Any], query: ListQuery, *, sort: list[tuple[str, int]], skip: int
    ) -> tuple[list[Document] | None, int]:
        """Keyword-index search: candidate ids by word prefix, then one primary-key query.

        Returns ``(None, 0)`` when the query has no word or a word matches too many
        products, so the caller scans ``searchText`` instead (same semantics).
        """
        assert query.search is not None
        tokens = list(dict.fromkeys(words(query.search)))[:MAX_SEARCH_WORDS]
        if not tokens:
            return None, 0
        candidates: set[str] | None = None
        for token in sorted(tokens, key=len, reverse=True):
            ids = await self.repo.products_with_prefix(token, limit=self.settings.SEARCH_CANDIDATE_LIMIT)
            if ids is None:
                return None, 0
            candidates = ids if candidates is None else candidates & ids
            if not candidates:
                return [], 0
        keyed = {"_id": {"$in": sorted(candidates or ())}, **condition}
        return await self.repo.page_by_ids(keyed, sort=sort, skip=skip, limit=query.limit)

    # writing products

    async def create(self, *, seller_id: str, data: ProductCreateIn) -> dict[str, Any]:
        """Endpoint 3: validate and mark the images at the media service, then insert."""
        if data.sellerId is not None and data.sellerId != seller_id:
            raise Forbidden("Cannot create products for another seller")
        await self.ensure_seller_active(seller_id=seller_id)
        images = normalize_images(data.images or [])
        await self.use_media([i["media_id"] for i in images if i.get("media_id")])
        seller = await self.repo.get_seller_status(seller_id)
        doc, terms = build_product(
            data,
            seller_id=seller_id,
            images=images,
            seller_active=bool(seller.get("isActive", True)) if seller else True,
        )
        await self.repo.insert_product(doc)
        await self.repo.insert_terms({doc["_id"]: terms})
        # A deactivation that raced with this insert has already swept the seller's products.
        latest = await self.repo.get_seller_status(seller_id)
        if latest is not None and not latest.get("isActive", True) and doc["sellerActive"]:
            doc = await self.repo.update_product({"_id": doc["_id"]}, {"$set": {"sellerActive": False}}) or doc
        return product_view(doc)

    async def update(self, *, product: Document, seller_id: str, data: ProductUpdateIn) -> dict[str, Any]:
        """Endpoint 4: partial update with history; ``stock`` goes through endpoint 9's rule."""
        sent = data.model_fields_set
        if not sent - {"sellerId"}:
            return product_view(product)
        await self.ensure_seller_active(seller_id=seller_id)
        fields = _changed_fields(data, sent)
        if "images" in sent:
            fields["images"] = normalize_images(data.images or [])
            await self.use_media([i["media_id"] for i in fields["images"] if i.get("media_id")])
        status = data.requested_status()
        if status is not None:
            fields["status"] = status
        content = {k: fields.get(k, product.get(k)) for k in ("name", "description", "tags")}
        terms: list[str] | None = None
        if any(k in fields for k in content):
            fields["searchText"], terms = search_fields(content["name"], content["description"], content["tags"])
        before = product
        if fields:
            before = await self.repo.update_product(
                {"_id": product["_id"], "sellerId": seller_id, "status": {"$ne": "deleted"}},
                {"$set": fields},
                returning="before",
            )
            if before is None:
                raise NotFound(PRODUCT_NOT_FOUND)
            if terms is not None:
                await self.repo.replace_terms(product["_id"], terms)
            await self._write_change_history(before, fields, seller_id=seller_id)
        return product_view(await self.repo.get_product(product["_id"]) or before)

    async def _write_change_history(self, before: Document, fields: Mapping[str, Any], *, seller_id: str) -> None:
        base = {"productId": before["_id"], "sellerId": before["sellerId"]}
        if "priceCents" in fields and fields["priceCents"] != before.get("priceCents"):
            old, new = from_cents(before.get("priceCents", 0)), from_cents(fields["priceCents"])
            await self.repo.add_history(
                {
                    **base,
                    "type": "price_change",
                    "previousValue": old,
                    "newValue": new,
                    "previousPrice": old,
                    "newPrice": new,
                    "notes": None,
                }  # fmt: skip
            )
        if "status" in fields and fields["status"] != before.get("status"):
            await self.status_history(before, fields["status"])
        if "lowStockAlert" in fields:
            current = await self.repo.get_product(before["_id"])
            if current is not None:
                level = stock_level(current["stock"], current["lowStockAlert"])
                if level != current.get("stockLevel"):
                    await self.repo.set_stock_level(current, level)

    async def status_history(self, before: Mapping[str, Any], new_status: str, notes: str | None = None) -> None:
        old = before.get("status")
        await self.repo.add_history(
            {
                "productId": before["_id"],
                "sellerId": before["sellerId"],
                "type": "status_change",
                "previousValue": old,
                "newValue": new_status,
                "previousStatus": old,
                "newStatus": new_status,
                "notes": notes,
            }  # fmt: skip
        )

    async def delete(self, *, product_id: str, principal: Principal) -> None:
        """Endpoint 5: soft delete (owner or service)."""
        product = await self.owned_product(product_id=product_id, principal=principal)
        if not is_service(principal):
            await self.ensure_seller_active(seller_id=product["sellerId"])
        before = await self.repo.update_product(
            {"_id": product_id, "status": {"$ne": "deleted"}}, {"$set": {"status": "deleted"}}, returning="before"
        )
        if before is None:
            raise NotFound(PRODUCT_NOT_FOUND)
        await self.status_history(before, "deleted")

    async def admin_set_status(self, *, product_id: str, status: str) -> dict[str, Any]:
        """Endpoint 14: any product (deleted ones are restored)."""
        before = await self.repo.update_product({"_id": product_id}, {"$set": {"status": status}}, returning="before")
        if before is None:
            raise NotFound(PRODUCT_NOT_FOUND)
        if before.get("status") != status:
            await self.status_history(before, status, notes="Set by admin")
        return product_view(await self.repo.get_product(product_id) or before)

    async def use_media(self, media_ids: list[str]) -> None:
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
            valid = {
                f["id"].lower()
                for f in files
                if isinstance(f, dict) and isinstance(f.get("id"), str) and f.get("valid") is True
            }
            _raise_invalid([i for i in ids if i not in valid])
            marked = await media.call("POST", "/api/v1/media/bulk-mark-used", json={"fileIds": ids}, timeout=timeout)
        except (UpstreamError, UpstreamStatus):
            raise ServiceUnavailable(MEDIA_UNAVAILABLE) from None
        results = marked.get("results") if isinstance(marked, dict) else None
        if not isinstance(results, list):
            raise ServiceUnavailable(MEDIA_UNAVAILABLE)
        done = {
            r["id"].lower()
            for r in results
            if isinstance(r, dict) and isinstance(r.get("id"), str) and r.get("success")
        }
        _raise_invalid([i for i in ids if i not in done])

    # history and analytics

    async def history(
        self, *, product_id: str, principal: Principal, kind: str, page: int, limit: int
    ) -> dict[str, Any]:
        """Endpoint 8 (and 28 with ``kinds``): newest first."""
        product = await self.repo.get_product(product_id)
        if product is None or not (is_service(principal) or product.get("status") != "deleted"):
            raise NotFound(PRODUCT_NOT_FOUND)
        if not is_service(principal) and not is_seller(principal, product["sellerId"]):
            raise Forbidden("Access denied")
        query: dict[str, Any] = {"productId": product_id}
        if kind == "movements":
            query["type"] = {"$in": ["stock_update", "sale"]}
        elif kind != "all":
            query["type"] = HISTORY_TYPES[kind]
        entries, total = await self.repo.list_history(query, skip=(page - 1) * limit, limit=limit)
        return {"history": [history_view(e) for e in entries], "pagination": pagination(page, limit, total)}

    async def analytics(self, *, seller_id: str, period: int) -> dict[str, Any]:
        """Endpoint 7: period figures from sale history, current figures from the products."""
        since = now_iso(-timedelta(days=period))
        sales = await self.repo.find_history(
            {"sellerId": seller_id, "type": "sale", "createdAt": {"$gte": since}, "returned": {"$ne": True}}
        )
        products = await self.repo.find_products(
            {"sellerId": seller_id, "status": {"$in": LIVE_STATUSES}},
            projection={"name": 1, "status": 1, "stock": 1, "lowStockAlert": 1, "stockLevel": 1},
        )
        by_product: dict[str, dict[str, Any]] = {}
        by_day: dict[str, dict[str, Any]] = defaultdict(lambda: {"units": 0, "cents": 0, "orders": set()})
        by_category: dict[str, dict[str, int]] = defaultdict(lambda: {"units": 0, "cents": 0})
        for sale in sales:
            units, cents = int(sale.get("quantity") or 0), int(sale.get("amountCents") or 0)
            meta = sale.get("metadata") or {}
            row = by_product.setdefault(
                sale["productId"],
                {"productId": sale["productId"], "name": meta.get("productName"), "units": 0, "cents": 0},
            )
            row["units"] += units
            row["cents"] += cents
            day = by_day[sale["createdAt"][:10]]
            day["units"] += units
            day["cents"] += cents
            day["orders"].add(sale.get("orderId"))
            category = by_category[meta.get("category") or "uncategorized"]
            category["units"] += units
            category["cents"] += cents
        top = sorted(by_product.values(), key=lambda r: (-r["units"], -r["cents"]))[:5]
        low = sorted(
            (p for p in products if p["status"] == "active" and p.get("stockLevel") in ("low", "out")),
            key=lambda p: (p.get("stock", 0), p["_id"]),
        )
        return {
            "period": period,
            "summary": {
                "totalProducts": len(products),
                "activeProducts": sum(p["status"] == "active" for p in products),
                "totalSold": sum(r["units"] for r in by_product.values()),
                "totalRevenue": _money_sum(r["cents"] for r in by_product.values()),
                "orderCount": len({s.get("orderId") for s in sales}),
                "lowStockProducts": sum(p["status"] == "active" and p.get("stockLevel") == "low" for p in products),
                "outOfStockProducts": sum(p["status"] == "active" and p.get("stockLevel") == "out" for p in products),
            },
            "topProducts": [
                {
                    "productId": r["productId"],
                    "name": r["name"],
                    "unitsSold": r["units"],
                    "revenue": from_cents(r["cents"]),
                }
                for r in top
            ],
            "lowStockProducts": [
                {
                    "productId": p["_id"],
                    "name": p.get("name"),
                    "stock": p.get("stock", 0),
                    "lowStockAlert": p.get("lowStockAlert", 5),
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

    # service endpoints

    async def bulk(self, *, product_ids: list[Any]) -> list[dict[str, Any]]:
        """Endpoint 15: purchasable products in request order (unknown/malformed omitted)."""
        ids = [
            i.lower() for i in dict.fromkeys(product_ids) if isinstance(i, str) and re.fullmatch(r"[0-9a-fA-F]{24}", i)
        ]
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
            if not recorded:
                result.update(skipped=True, message="Sale already recorded")
                results.append(result)
                continue
            await self.repo.update_product(
                {"_id": line.productId}, {"$inc": {"totalSold": line.quantity, "revenueCents": total}}
            )
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

    async def set_seller_status(self, *, seller_id: str, active: bool) -> dict[str, Any]:
        """Endpoint 25: remember the seller's state and hide or show all its products."""
        await self.repo.set_seller_status(seller_id, active)
        modified = await self.repo.set_seller_active(seller_id, active)
        return {"sellerId": seller_id, "isActive": active, "modifiedCount": modified}

    async def stats(self) -> dict[str, int]:
        return {
            "total": await self.repo.count_products({"status": {"$in": LIVE_STATUSES}}),
            "active": await self.repo.count_products({"status": "active"}),
            "outOfStock": await self.repo.count_products({"status": "active", "stockLevel": "out"}),
            "lowStock": await self.repo.count_products({"status": "active", "stockLevel": "low"}),
        }


def build_product(
    data: ProductCreateIn, *, seller_id: str, images: list[dict[str, Any]], seller_active: bool
) -> tuple[Document, list[str]]:
    """A new product document from validated input, with the words its search terms index."""
    name, description, tags = data.name, data.description or "", data.tags or []
    text, terms = search_fields(name, description, tags)
    stock = data.stock or 0
    low = 5 if data.lowStockAlert is None else data.lowStockAlert
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
        "lowStockAlert": "lowStockAlert",
    }  # fmt: skip
    return {stored: getattr(data, name) for name, stored in mapping.items() if name in sent}
