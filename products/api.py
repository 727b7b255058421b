"""HTTP routes of the products service: parse, call the domain, pick the message, wrap the answer.

Routes with a static segment (``/products/admin``, ``/products/seller/...``) are declared
before ``/products/{product_id}`` so they are matched first. Every route declares what it
answers (``response_model``) and every status it can answer (``responses``); answers still
go out through ``ok()`` so nothing is validated twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import WithJsonSchema

from products.deps import (
    ADMIN_LIST_DOC,
    PUBLIC_LIST_DOC,
    SELLER_LIST_DOC,
    AdminListQuery,
    CatalogueDomain,
    CurrentSeller,
    InventoryDomain,
    OptionalCaller,
    Page10,
    Page20,
    PublicListQuery,
    SellerListQuery,
    SellerOrService,
    ServiceOrAdmin,
)
from products.domain import HISTORY_TYPES, INVENTORY_FILTERS, is_seller, is_service
from products.schemas import (
    AdjustIn,
    AdminStatusIn,
    AnalyticsPublic,
    AvailabilityPublic,
    BulkIn,
    BulkProductPublic,
    BulkStockIn,
    CheckAvailabilityIn,
    CleanupPublic,
    ConfirmPublic,
    HistoryPagePublic,
    InitializedPublic,
    InventoryPublic,
    InventorySyncIn,
    MovementsPublic,
    OrderIn,
    ProductCreateIn,
    ProductPagePublic,
    ProductPublic,
    ProductUpdateIn,
    RecordSaleIn,
    ReleasePublic,
    ReservationPublic,
    ReserveIn,
    SaleResultPublic,
    SellerInventoryPublic,
    SellerProductsPublic,
    SellerStatusIn,
    SellerStatusPublic,
    StatsPublic,
    StockChangePublic,
    StockIn,
    StockSetPublic,
    SyncedPublic,
    ValidateSellerIn,
    ValidateSellerPublic,
    is_object_id,
)
from products.views import inventory_view, product_view
from shared.auth import ServiceKey
from shared.fields import EmptyAsNone
from shared.responses import (
    AUTH_ERRORS,
    UPSTREAM_ERRORS,
    Envelope,
    Forbidden,
    InvalidId,
    MessageEnvelope,
    PagedEnvelope,
    ValidationFailed,
    error_responses,
    ok,
)

router = APIRouter(prefix="/api/v1")

RETRIEVED = "Products retrieved successfully"
ObjectIdPath = Annotated[str, Path(), WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{24}$"})]
"""A path id; anything but 24 hex answers 400 ``Invalid ID format`` (checked whole by ``object_id``)."""
HistoryType = Annotated[
    str | None, Query(), EmptyAsNone, WithJsonSchema({"type": "string", "enum": ["all", *HISTORY_TYPES]})
]
MOVEMENT_TYPES = ("movements", "all", "stock_update", "sale", "stock_add", "stock_reduce")
OWNER = error_responses(*AUTH_ERRORS, 404)


def _id(value: str) -> str:
    if not is_object_id(value):
        raise InvalidId()
    return value.lower()


# catalogue (public)


@router.get(
    "/products",
    response_model=PagedEnvelope[ProductPublic],
    responses=error_responses(401, 403),
    summary="The catalogue: filtered, sorted, paged",
    openapi_extra=PUBLIC_LIST_DOC,
)
async def list_products(query: PublicListQuery, caller: OptionalCaller, catalogue: CatalogueDomain) -> JSONResponse:
    page = await catalogue.list_public(query=query, principal=caller)
    return ok(page["products"], RETRIEVED, pagination=page["pagination"])


# admin (declared before /products/{product_id})


@router.get(
    "/products/admin",
    response_model=Envelope[ProductPagePublic],
    responses=error_responses(*AUTH_ERRORS),
    openapi_extra=ADMIN_LIST_DOC,
)
async def admin_list(query: AdminListQuery, _: ServiceOrAdmin, catalogue: CatalogueDomain) -> JSONResponse:
    return ok(await catalogue.admin_list(query=query), RETRIEVED)


@router.patch("/products/admin/{product_id}/status", response_model=Envelope[ProductPublic], responses=OWNER)
async def admin_status(
    product_id: ObjectIdPath, body: AdminStatusIn, _: ServiceOrAdmin, catalogue: CatalogueDomain
) -> JSONResponse:
    product_id = _id(product_id)
    view = await catalogue.admin_set_status(product_id=product_id, status=body.checked_status())
    return ok(view, "Product status updated successfully")


# a seller's products


@router.get(
    "/products/seller/{seller_id}",
    response_model=Envelope[SellerProductsPublic],
    responses=error_responses(*AUTH_ERRORS),
    openapi_extra=SELLER_LIST_DOC,
)
async def seller_products(
    seller_id: ObjectIdPath, query: SellerListQuery, caller: OptionalCaller, catalogue: CatalogueDomain
) -> JSONResponse:
    data = await catalogue.list_seller(seller_id=_id(seller_id), query=query, principal=caller)
    return ok(data, "Seller products retrieved successfully")


def _owner_or_service(caller: object, seller_id: str) -> None:
    if not is_service(caller) and not is_seller(caller, seller_id):  # type: ignore[arg-type]
        raise Forbidden("Access denied")


@router.get(
    "/products/seller/{seller_id}/analytics",
    response_model=Envelope[AnalyticsPublic],
    responses=error_responses(*AUTH_ERRORS),
)
async def seller_analytics(
    seller_id: ObjectIdPath,
    caller: SellerOrService,
    catalogue: CatalogueDomain,
    period: Annotated[
        str | None, Query(), EmptyAsNone, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 365})
    ] = None,
) -> JSONResponse:
    seller_id = _id(seller_id)
    _owner_or_service(caller, seller_id)
    text = (period or "30").strip()
    if not (text.isdigit() and len(text) <= 3 and 1 <= int(text) <= 365):
        raise ValidationFailed.field("period", "period must be an integer between 1 and 365")
    return ok(await catalogue.analytics(seller_id=seller_id, period=int(text)), "Analytics retrieved successfully")


@router.get(
    "/inventory/seller/{seller_id}",
    response_model=Envelope[SellerInventoryPublic],
    responses=error_responses(*AUTH_ERRORS),
)
async def seller_inventory(
    seller_id: ObjectIdPath,
    paging: Page20,
    caller: SellerOrService,
    catalogue: CatalogueDomain,
    status: Annotated[
        str | None, Query(), EmptyAsNone, WithJsonSchema({"type": "string", "enum": list(INVENTORY_FILTERS)})
    ] = None,
) -> JSONResponse:
    seller_id = _id(seller_id)
    _owner_or_service(caller, seller_id)
    status = status or "all"
    if status not in INVENTORY_FILTERS:
        raise ValidationFailed.field("status", "Status must be all, low, out or active")
    data = await catalogue.seller_inventory(seller_id=seller_id, status=status, page=paging.page, limit=paging.limit)
    return ok(data, "Inventory retrieved successfully")


# single products


@router.post(
    "/products",
    status_code=201,
    response_model=Envelope[ProductPublic],
    responses=error_responses(*AUTH_ERRORS, *UPSTREAM_ERRORS),
)
async def create_product(body: ProductCreateIn, seller: CurrentSeller, catalogue: CatalogueDomain) -> JSONResponse:
    view = await catalogue.create(seller_id=seller.user_id or "", data=body)
    return ok(view, "Product created successfully", status_code=201)


@router.get("/products/{product_id}", response_model=Envelope[ProductPublic], responses=error_responses(401, 404))
async def get_product(product_id: ObjectIdPath, caller: OptionalCaller, catalogue: CatalogueDomain) -> JSONResponse:
    doc = await catalogue.get_product(product_id=_id(product_id), principal=caller)
    return ok(product_view(doc), "Product retrieved successfully")


@router.put(
    "/products/{product_id}",
    response_model=Envelope[ProductPublic],
    responses=error_responses(*AUTH_ERRORS, 404, 409, *UPSTREAM_ERRORS),
)
async def update_product(
    product_id: ObjectIdPath,
    body: ProductUpdateIn,
    seller: CurrentSeller,
    catalogue: CatalogueDomain,
    inventory: InventoryDomain,
) -> JSONResponse:
    product = await catalogue.owned_product(product_id=_id(product_id), principal=seller)
    view = await catalogue.update(product=product, seller_id=product["sellerId"], data=body)
    sent = body.model_fields_set
    if "lowStockAlert" in sent and body.lowStockAlert is not None:
        current = await catalogue.get_product(product_id=product["_id"], principal=seller)
        view = product_view(await inventory.set_low_alert(product=current, threshold=body.lowStockAlert))
    if "stock" in sent and body.stock is not None:
        current = await catalogue.get_product(product_id=product["_id"], principal=seller)
        await inventory.set_available(product=current, stock=body.stock, notes="Updated with the product")
        view = product_view(await catalogue.get_product(product_id=product["_id"], principal=seller))
    return ok(view, "Product updated successfully")


@router.delete("/products/{product_id}", response_model=MessageEnvelope, responses=OWNER)
async def delete_product(product_id: ObjectIdPath, caller: SellerOrService, catalogue: CatalogueDomain) -> JSONResponse:
    await catalogue.delete(product_id=_id(product_id), principal=caller)
    return ok(None, "Product deleted successfully")


@router.get("/products/{product_id}/history", response_model=Envelope[HistoryPagePublic], responses=OWNER)
async def product_history(
    product_id: ObjectIdPath,
    paging: Page10,
    caller: SellerOrService,
    catalogue: CatalogueDomain,
    type: HistoryType = None,
) -> JSONResponse:
    product_id = _id(product_id)
    kind = type or "all"
    if kind != "all" and kind not in HISTORY_TYPES:
        raise ValidationFailed.field("type", f"type must be all, {', '.join(HISTORY_TYPES)}")
    data = await catalogue.history(
        product_id=product_id, principal=caller, kind=kind, page=paging.page, limit=paging.limit
    )
    return ok(data, "Product history retrieved successfully", pagination=data["pagination"])


@router.put(
    "/products/{product_id}/stock",
    response_model=Envelope[StockSetPublic],
    responses=error_responses(*AUTH_ERRORS, 404, 409),
)
async def set_stock(
    product_id: ObjectIdPath,
    body: StockIn,
    seller: CurrentSeller,
    catalogue: CatalogueDomain,
    inventory: InventoryDomain,
) -> JSONResponse:
    product = await catalogue.writable_product(product_id=_id(product_id), principal=seller)
    data = await inventory.set_available(product=product, stock=body.stock, notes=body.notes)
    return ok(data, "Stock updated successfully")


@router.get("/products/{product_id}/inventory", response_model=Envelope[InventoryPublic], responses=OWNER)
async def get_inventory(product_id: ObjectIdPath, caller: SellerOrService, catalogue: CatalogueDomain) -> JSONResponse:
    product = await catalogue.owned_product(
        product_id=_id(product_id), principal=caller, message="Access denied", with_reservations=True
    )
    return ok(inventory_view(product), "Inventory retrieved successfully")


@router.post(
    "/products/{product_id}/inventory",
    response_model=Envelope[InventoryPublic],
    responses=error_responses(*AUTH_ERRORS, 404, 409),
)
async def sync_inventory(
    product_id: ObjectIdPath,
    caller: SellerOrService,
    catalogue: CatalogueDomain,
    inventory: InventoryDomain,
    body: Annotated[InventorySyncIn | None, Body()] = None,
) -> JSONResponse:
    product = await catalogue.owned_product(product_id=_id(product_id), principal=caller, message="Access denied")
    if body is not None and body.lowStockThreshold is not None:
        if not is_service(caller):
            await catalogue.ensure_seller_active(seller_id=product["sellerId"])
        product = await inventory.set_low_alert(product=product, threshold=body.lowStockThreshold)
    return ok(inventory_view(product, with_reservations=False), "Inventory created/synced successfully")


@router.put(
    "/products/{product_id}/inventory/adjust",
    response_model=Envelope[InventoryPublic],
    responses=error_responses(*AUTH_ERRORS, 404, 409),
)
async def adjust_inventory(
    product_id: ObjectIdPath,
    body: AdjustIn,
    seller: CurrentSeller,
    catalogue: CatalogueDomain,
    inventory: InventoryDomain,
) -> JSONResponse:
    product = await catalogue.writable_product(product_id=_id(product_id), principal=seller)
    data = await inventory.adjust_total(product=product, new_total=body.newStock, notes=body.notes or body.reason)
    return ok(data, "Stock adjusted successfully")


@router.get("/products/{product_id}/inventory/movements", response_model=Envelope[MovementsPublic], responses=OWNER)
async def inventory_movements(
    product_id: ObjectIdPath,
    paging: Page20,
    caller: SellerOrService,
    catalogue: CatalogueDomain,
    type: Annotated[
        str | None, Query(), EmptyAsNone, WithJsonSchema({"type": "string", "enum": list(MOVEMENT_TYPES)})
    ] = None,
) -> JSONResponse:
    product_id = _id(product_id)
    kind = type or "movements"
    if kind not in MOVEMENT_TYPES:
        raise ValidationFailed.field("type", "type must be stock_add, stock_reduce, stock_update or sale")
    kind = "movements" if kind == "all" else kind
    data = await catalogue.history(
        product_id=product_id, principal=caller, kind=kind, page=paging.page, limit=paging.limit
    )
    product = await catalogue.get_product(product_id=product_id, principal=caller)
    movements = {
        "movements": data["history"],
        "pagination": data["pagination"],
        "currentStock": inventory_view(product, with_reservations=False),
    }
    return ok(movements, "Inventory movements retrieved successfully")


# service endpoints

SERVICE_ERRORS = error_responses(*AUTH_ERRORS)


@router.post("/service/products/bulk", response_model=Envelope[list[BulkProductPublic]], responses=SERVICE_ERRORS)
async def service_bulk(body: BulkIn, _: ServiceKey, catalogue: CatalogueDomain) -> JSONResponse:
    return ok(await catalogue.bulk(product_ids=body.productIds), RETRIEVED)


@router.post(
    "/service/products/validate-seller",
    response_model=Envelope[ValidateSellerPublic],
    responses=error_responses(*AUTH_ERRORS, 404),
)
async def service_validate_seller(body: ValidateSellerIn, _: ServiceKey, catalogue: CatalogueDomain) -> JSONResponse:
    data = await catalogue.validate_seller(product_id=body.productId, seller_id=body.sellerId)
    return ok(data, "Validation completed")


@router.post("/service/products/record-sale", response_model=Envelope[list[SaleResultPublic]], responses=SERVICE_ERRORS)
async def service_record_sale(body: RecordSaleIn, _: ServiceKey, catalogue: CatalogueDomain) -> JSONResponse:
    data = await catalogue.record_sale(order_id=body.orderId, customer_id=body.customerId, items=body.items)
    return ok(data, "Sales recorded successfully")


@router.put(
    "/service/products/stock",
    response_model=Envelope[list[StockChangePublic]],
    responses=error_responses(*AUTH_ERRORS, 404, 409),
)
async def service_bulk_stock(body: BulkStockIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    updates = [(u.productId, u.stockChange) for u in body.updates]
    return ok(await inventory.bulk_change(updates=updates), "Bulk stock update completed")


@router.post(
    "/service/inventory/check-availability", response_model=Envelope[AvailabilityPublic], responses=SERVICE_ERRORS
)
@router.post("/service/products/inventory-check", response_model=Envelope[AvailabilityPublic], responses=SERVICE_ERRORS)
async def service_check(body: CheckAvailabilityIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    return ok(await inventory.check(items=body.items), "Availability checked successfully")


@router.post(
    "/service/inventory/reserve",
    response_model=Envelope[ReservationPublic],
    responses=error_responses(*AUTH_ERRORS, 409),
)
async def service_reserve(body: ReserveIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    result = await inventory.reserve(
        order_id=body.orderId, customer_id=body.customerId, items=body.items, minutes=body.expirationMinutes
    )
    return ok(result.data, "Reservation already exists" if result.existing else "All items reserved successfully")


@router.post(
    "/service/inventory/confirm",
    response_model=Envelope[ConfirmPublic],
    responses=error_responses(*AUTH_ERRORS, 404, 409),
)
async def service_confirm(body: OrderIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    result = await inventory.confirm(order_id=body.orderId)
    message = "Reservations already confirmed" if result.already else "Reservations confirmed successfully"
    return ok(result.data, message)


@router.post(
    "/service/inventory/release", response_model=Envelope[ReleasePublic], responses=error_responses(*AUTH_ERRORS, 409)
)
async def service_release(body: OrderIn, _: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    return ok(await inventory.release(order_id=body.orderId, reason=body.reason), "Reservations released successfully")


@router.post("/service/inventory/cleanup-expired", response_model=Envelope[CleanupPublic], responses=SERVICE_ERRORS)
async def service_cleanup(_: ServiceKey, inventory: InventoryDomain) -> JSONResponse:
    cleaned = await inventory.cleanup_expired()
    return ok({"cleanedCount": cleaned}, f"Cleaned {cleaned} expired reservations")


@router.post("/service/products/seller-status", response_model=Envelope[SellerStatusPublic], responses=SERVICE_ERRORS)
async def service_seller_status(body: SellerStatusIn, _: ServiceKey, catalogue: CatalogueDomain) -> JSONResponse:
    data = await catalogue.set_seller_status(
        seller_id=body.sellerId, active=body.isActive, token_version=body.tokenVersion
    )
    return ok(data, "Seller products status updated")


@router.get("/service/products/stats", response_model=Envelope[StatsPublic], responses=SERVICE_ERRORS)
async def service_stats(_: ServiceOrAdmin, catalogue: CatalogueDomain) -> JSONResponse:
    return ok(await catalogue.stats(), "Product stats retrieved successfully")


@router.post("/service/inventory/initialize-all", response_model=Envelope[InitializedPublic], responses=SERVICE_ERRORS)
async def service_initialize_all(_: ServiceKey) -> JSONResponse:
    return ok({"initialized": 0}, "Inventory initialized")


@router.post("/service/inventory/sync-products", response_model=Envelope[SyncedPublic], responses=SERVICE_ERRORS)
async def service_sync_products(_: ServiceKey) -> JSONResponse:
    return ok({"synced": 0}, "Inventory synced")
