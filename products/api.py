"""HTTP routes of the products service: parse, call the domain, wrap the answer.

Routes with a static segment (``/products/admin``, ``/products/seller/...``) are declared
before ``/products/{product_id}`` so they are matched first.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from products.deps import (
    CatalogueDomain,
    CurrentSeller,
    InventoryDomain,
    OptionalCaller,
    SellerOrService,
    ServiceOrAdmin,
)
from products.domain import HISTORY_TYPES, LIVE_STATUSES, is_seller, is_service
from products.schemas import (
    ADMIN_STATUSES,
    SELLER_SORT_FIELDS,
    AdjustIn,
    AdminStatusIn,
    CheckAvailabilityIn,
    InventorySyncIn,
    OrderIn,
    ProductCreateIn,
    ProductUpdateIn,
    RecordSaleIn,
    ReserveIn,
    SellerStatusIn,
    StockIn,
    ValidateSellerIn,
    count_value,
    parse_list_query,
)
from products.views import inventory_row_view, inventory_view, product_view
from shared.auth import ServiceKey
from shared.responses import BadRequest, Forbidden, ValidationFailed, ok
from shared.store import is_object_id
from shared.validation import json_object, object_id, page_params, pagination

router = APIRouter(prefix="/api/v1")

RETRIEVED = "Products retrieved successfully"


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if v != ""}


# catalogue (public)


@router.get("/products")
async def list_products(request: Request, caller: OptionalCaller, catalogue: CatalogueDomain) -> JSONResponse:
    query = parse_list_query(request.query_params)
    page = await catalogue.list_public(query=query, principal=caller)
    return ok(page["products"], RETRIEVED, pagination=page["pagination"])


# admin (declared before /products/{product_id})


@router.get("/products/admin")
async def admin_list(request: Request, _: ServiceOrAdmin, catalogue: CatalogueDomain) -> JSONResponse:
    query = parse_list_query(
        request.query_params, sort_fields=SELLER_SORT_FIELDS, statuses=ADMIN_STATUSES, default_status="all"
    )
    return ok(await catalogue.admin_list(query=query), RETRIEVED)


@router.patch("/products/admin/{product_id}/status")
async def admin_status(
    product_id: str, body: AdminStatusIn, _: ServiceOrAdmin, catalogue: CatalogueDomain
) -> JSONResponse:
    view = await catalogue.admin_set_status(product_id=object_id(product_id), status=body.status)
    return ok(view, "Product status updated successfully")


# a seller's products


@router.get("/products/seller/{seller_id}")
async def seller_products(
    seller_id: str, request: Request, caller: OptionalCaller, catalogue: CatalogueDomain
) -> JSONResponse:
    seller_id = object_id(seller_id)
    query = parse_list_query(
        request.query_params, sort_fields=SELLER_SORT_FIELDS, default_status=None, with_seller=False
    )
    data = await catalogue.list_seller(seller_id=seller_id, query=query, principal=caller)
    return ok(data, "Seller products retrieved successfully")


@router.get("/products/seller/{seller_id}/analytics")
async def seller_analytics(
    seller_id: str, request: Request, caller: SellerOrService, catalogue: CatalogueDomain
) -> JSONResponse:
    seller_id = object_id(seller_id)
    if not is_service(caller) and not is_seller(caller, seller_id):
        raise Forbidden("Access denied")
    raw = _params(request).get("period", "30")
    try:
        period = count_value(raw, "period", minimum=1, maximum=365)
    except ValueError:
        raise ValidationFailed.field("period", "period must be an integer between 1 and 365") from None
    return ok(await catalogue.analytics(seller_id=seller_id, period=period), "Analytics retrieved successfully")


@router.get("/inventory/seller/{seller_id}")
async def seller_inventory(
    seller_id: str, request: Request, caller: SellerOrService, catalogue: CatalogueDomain
) -> JSONResponse:
    seller_id = object_id(seller_id)
    if not is_service(caller) and not is_seller(caller, seller_id):
        raise Forbidden("Access denied")
    q = _params(request)
    page, limit = page_params(q.get("page"), q.get("limit"), default_limit=20, max_limit=100)
    status = q.get("status", "all")
    conditions = {
        "all": {"status": {"$in": LIVE_STATUSES}},
        "active": {"status": "active"},
        "low": {"status": "active", "stockLevel": "low"},
        "out": {"status": "active", "stockLevel": "out"},
    }
    if status not in conditions:
        raise ValidationFailed.field("status", "Status must be all, low, out or active")
    repo = catalogue.repo
    docs, total = await repo.list_products(
        {"sellerId": seller_id, **conditions[status]},
        sort=[("createdAt", -1), ("_id", -1)],
        skip=(page - 1) * limit,
        limit=limit,
    )
    rows = await repo.find_products(
        {"sellerId": seller_id, "status": {"$in": LIVE_STATUSES}},
        projection={"status": 1, "totalStock": 1, "reservedStock": 1, "soldStock": 1, "stock": 1, "stockLevel": 1},
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
    data = {
        "inventories": [inventory_row_view(d) for d in docs],
        "pagination": pagination(page, limit, total),
        "summary": summary,
    }
    return ok(data, "Inventory retrieved successfully")


# single products


@router.post("/products", status_code=201)
async def create_product(body: ProductCreateIn, seller: CurrentSeller, catalogue: CatalogueDomain) -> JSONResponse:
    view = await catalogue.create(seller_id=seller.user_id or "", data=body)
    return ok(view, "Product created successfully", status_code=201)


@router.get("/products/{product_id}")
async def get_product(product_id: str, caller: OptionalCaller, catalogue: CatalogueDomain) -> JSONResponse:
    doc = await catalogue.get_product(product_id=object_id(product_id), principal=caller)
    return ok(product_view(doc), "Product retrieved successfully")


@router.put("/products/{product_id}")
async def update_product(
    product_id: str,
    body: ProductUpdateIn,
    seller: CurrentSeller,
    catalogue: CatalogueDomain,
    inventory: InventoryDomain,
) -> JSONResponse:
    product = await catalogue.owned_product(product_id=object_id(product_id), principal=seller)
    view = await catalogue.update(product=product, seller_id=product["sellerId"], data=body)
    if "stock" in body.model_fields_set:
        await inventory.set_available(product=product, stock=body.stock, notes="Updated with the product")
        view = product_view(await catalogue.get_product(product_id=product["_id"], principal=seller))
    return ok(view, "Product updated successfully")


@router.delete("/products/{product_id}")
async def delete_product(product_id: str, caller: SellerOrService, catalogue: CatalogueDomain) -> JSONResponse:
    await catalogue.delete(product_id=object_id(product_id), principal=caller)
    return ok(None, "Product deleted successfully")


@router.get("/products/{product_id}/history")
async def product_history(
    product_id: str, request: Request, caller: SellerOrService, catalogue: CatalogueDomain
) -> JSONResponse:
    product_id = object_id(product_id)
    q = _params(request)
    page, limit = page_params(q.get("page"), q.get("limit"), default_limit=10, max_limit=100)
    kind = q.get("type", "all")
    if kind != "all" and kind not in HISTORY_TYPES:
        raise ValidationFailed.field(
            "type", "type must be all, price_change, stock_update, status_change, sale, stock_add or stock_reduce"
        )
    data = await catalogue.history(product_id=product_id, principal=caller, kind=kind, page=page, limit=limit)
    return ok(data, "Product history retrieved successfully", pagination=data["pagination"])


async def _seller_write(product_id: str, seller: Any, catalogue: Any) -> dict[str, Any]:
    product = await catalogue.owned_product(product_id=object_id(product_id), principal=seller)
    await catalogue.ensure_seller_active(seller_id=product["sellerId"])
    return product


@router.put("/products/{product_id}/stock")
async def set_stock(
    product_id: str, body: StockIn, seller: CurrentSeller, catalogue: CatalogueDomain, inventory: InventoryDomain
) -> JSONResponse:
    product = await _seller_write(product_id, seller, catalogue)
    data = await inventory.set_available(product=product, stock=body.stock, notes=body.notes)
    return ok(data, "Stock updated successfully")


@router.get("/products/{product_id}/inventory")
async def get_inventory(product_id: str, caller: SellerOrService, catalogue: CatalogueDomain) -> JSONResponse:
    product = await catalogue.owned_product(product_id=object_id(product_id), principal=caller, message="Access denied")
    return ok(inventory_view(product), "Inventory retrieved successfully")


@router.post("/products/{product_id}/inventory")
async def sync_inventory(
    product_id: str,
    caller: SellerOrService,
    catalogue: CatalogueDomain,
    inventory: InventoryDomain,
    body: InventorySyncIn | None = None,
) -> JSONResponse:
    product = await catalogue.owned_product(product_id=object_id(product_id), principal=caller, message="Access denied")
    if body is not None and body.lowStockThreshold is not None:
        if not is_service(caller):
            await catalogue.ensure_seller_active(seller_id=product["sellerId"])
        product = await inventory.set_low_alert(product=product, threshold=body.lowStockThreshold)
    return ok(inventory_view(product, with_reservations=False), "Inventory created/synced successfully")


@router.put("/products/{product_id}/inventory/adjust")
async def adjust_inventory(
    product_id: str, body: AdjustIn, seller: CurrentSeller, catalogue: CatalogueDomain, inventory: InventoryDomain
) -> JSONResponse:
    product = await _seller_write(product_id, seller, catalogue)
    data = await inventory.adjust_total(product=product, new_total=body.newStock, notes=body.notes or body.reason)
    return ok(data, "Stock adjusted successfully")


@router.get("/products/{product_id}/inventory/movements")
async def inventory_movements(
    product_id: str, request: Request, caller: SellerOrService, catalogue: CatalogueDomain
) -> JSONResponse:
    product_id = object_id(product_id)
    q = _params(request)
    page, limit = page_params(q.get("page"), q.get("limit"), default_limit=20, max_limit=100)
    kind = q.get("type", "movements")
    if kind not in ("movements", "all", "stock_update", "sale", "stock_add", "stock_reduce"):
        raise ValidationFailed.field("type", "type must be stock_update or sale")
    kind = "movements" if kind == "all" else kind
    data = await catalogue.history(product_id=product_id, principal=caller, kind=kind, page=page, limit=limit)
    product = await catalogue.get_product(product_id=product_id, principal=caller)
    movements = {
        "movements": data["history"],
        "pagination": data["pagination"],
        "currentStock": inventory_view(product, with_reservations=False),
    }
    return ok(movements, "Inventory movements retrieved successfully")


# service endpoints


@router.post("/service/products/bulk")
async def service_bulk(request: Request, _: ServiceKey, catalogue: CatalogueDomain) -> JSONResponse:
    body = await json_object(request)
    ids = body.get("productIds")
    if not isinstance(ids, list) or not ids:
        raise BadRequest("productIds array is required")
    if len(ids) > 100:
        raise ValidationFailed.field("productIds", "productIds cannot contain more than 100 ids")
    return ok(await catalogue.bulk(product_ids=ids), RETRIEVED)


@router.post("/service/products/validate-seller")
async def service_validate_seller(body: ValidateSellerIn, _: ServiceKey, catalogue: CatalogueDomain) -> JSONResponse:
    data = await catalogue.validate_seller(product_id=body.productId, seller_id=body.sellerId)
    return ok(data, "Validation completed")


@router.post("/service/products/record-sale")
async def service_record_sale(body: RecordSaleIn, _: ServiceKey, catalogue: CatalogueDomain) -> JSONResponse:
    data = await catalogue.record_sale(order_id=body.orderId, customer_id=body.customerId, items=body.items)
    return ok(data, "Sales recorded successfully")


@router.put("/service/products/stock")
async def service_bulk_stock(request: Request, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    body = await json_object(request)
    updates = body.get("updates")
    if not isinstance(updates, list) or not updates:
        raise BadRequest("updates array is required")
    if len(updates) > 100:
        raise ValidationFailed.field("updates", "updates cannot contain more than 100 entries")
    parsed: list[tuple[str, int]] = []
    errors = []
    for index, item in enumerate(updates):
        item = item if isinstance(item, dict) else {}
        product_id, change = item.get("productId"), item.get("stockChange")
        if not is_object_id(product_id):
            errors.append({"field": f"updates.{index}.productId", "message": "Invalid product ID format"})
        if isinstance(change, bool) or not isinstance(change, int) or change == 0:
            errors.append(
                {"field": f"updates.{index}.stockChange", "message": "stockChange must be a non-zero integer"}
            )
        elif is_object_id(product_id):
            parsed.append((product_id.lower(), change))
    if errors:
        raise ValidationFailed(errors=errors)
    return ok(await inventory.bulk_change(updates=parsed), "Bulk stock update completed")


@router.post("/service/inventory/check-availability")
@router.post("/service/products/inventory-check")
async def service_check(body: CheckAvailabilityIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    return ok(await inventory.check(items=body.items), "Availability checked successfully")


@router.post("/service/inventory/reserve")
async def service_reserve(body: ReserveIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    data, message = await inventory.reserve(
        order_id=body.orderId, customer_id=body.customerId, items=body.items, minutes=body.expirationMinutes
    )
    return ok(data, message)


@router.post("/service/inventory/confirm")
async def service_confirm(body: OrderIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    data, message = await inventory.confirm(order_id=body.orderId)
    return ok(data, message)


@router.post("/service/inventory/release")
async def service_release(body: OrderIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    return ok(await inventory.release(order_id=body.orderId, reason=body.reason), "Reservations released successfully")


@router.post("/service/inventory/cleanup-expired")
async def service_cleanup(_: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    cleaned = await inventory.cleanup_expired()
    return ok({"cleanedCount": cleaned}, f"Cleaned {cleaned} expired reservations")


@router.post("/service/products/seller-status")
async def service_seller_status(body: SellerStatusIn, _: ServiceKey, catalogue: CatalogueDomain) -> JSONResponse:
    data = await catalogue.set_seller_status(seller_id=body.sellerId, active=body.isActive)
    return ok(data, "Seller products status updated")


@router.get("/service/products/stats")
async def service_stats(_: ServiceOrAdmin, catalogue: CatalogueDomain) -> JSONResponse:
    return ok(await catalogue.stats(), "Product stats retrieved successfully")


@router.post("/service/inventory/initialize-all")
async def service_initialize_all(_: ServiceKey) -> JSONResponse:
    return ok({"initialized": 0}, "Inventory initialized")


@router.post("/service/inventory/sync-products")
async def service_sync_products(_: ServiceKey) -> JSONResponse:
    return ok({"synced": 0}, "Inventory synced")
