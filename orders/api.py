"""HTTP routes of the orders service: parse, call the domain, pick the message, wrap.

Every route declares its answer model and documents every status it can answer (400 for
validation is added by the app factory to every route with input).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from orders.deps import (
    CartDomain,
    CurrentCustomer,
    CurrentSeller,
    IdempotencyKey,
    OrderReader,
    OrdersDomain,
    ServiceOrAdmin,
)
from orders.domain import Caller
from orders.schemas import (
    AvailabilityPublic,
    CancelIn,
    CartAddIn,
    CartPublic,
    CartRemoveIn,
    CartUpdateIn,
    DrainPublic,
    InventoryCheckIn,
    InventoryReleaseIn,
    InventoryReserveIn,
    OrderPublic,
    OrdersPagePublic,
    OrderStatsPublic,
    OrderStatus,
    OutboxPagePublic,
    OutboxStatus,
    PlaceOrderIn,
    ReservationPublic,
    StatusIn,
    is_object_id,
)
from orders.upstream import UpstreamStatus
from orders.views import cart_view, order_view, outbox_entry_view
from shared.auth import Principal, ServiceKey
from shared.fields import EmptyAsNone, ObjectIdStr
from shared.responses import (
    AppError,
    Envelope,
    Forbidden,
    MessageEnvelope,
    PagedEnvelope,
    ServiceUnavailable,
    ValidationFailed,
    error_responses,
    ok,
)
from shared.validation import MAX_PAGE, object_id, pagination

router = APIRouter(prefix="/api/v1")

AUTH = (401, 403)
UPSTREAM = (503, 504)
RETRIEVED = "Orders retrieved successfully"

Page = Annotated[int | None, Query(ge=1, le=MAX_PAGE), EmptyAsNone]
Limit = Annotated[int | None, Query(ge=1, le=100), EmptyAsNone]
StatusFilter = Annotated[OrderStatus | None, Query(), EmptyAsNone]
LooseSellerId = Annotated[
    str | None,
    Query(max_length=100, description="a seller's id; any value that is not an id (e.g. `undefined`) is ignored"),
]
IdFilter = Annotated[ObjectIdStr | None, Query(), EmptyAsNone]


def _limit(limit: int | None, *, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if limit > maximum:
        raise ValidationFailed.field("limit", f"limit must be between 1 and {maximum}")
    return limit


def _own_seller(seller: Principal | Caller, seller_id: str | None) -> str:
    """The token's seller; a valid ``sellerId`` must be that seller (403), any other value is ignored."""
    me = seller.user_id or ""
    if seller_id is not None and is_object_id(seller_id) and seller_id.lower() != me:
        raise Forbidden("Access denied")
    return me


# cart


@router.post("/cart/add", response_model=Envelope[CartPublic], responses=error_responses(*AUTH, 404, 409, *UPSTREAM))
async def cart_add(body: CartAddIn, customer: CurrentCustomer, cart: CartDomain) -> JSONResponse:
    doc = await cart.add(customer_id=customer.user_id or "", product_id=body.productId, quantity=body.quantity)
    return ok(cart_view(doc), "Item added to cart")


@router.get("/cart", response_model=Envelope[CartPublic], responses=error_responses(*AUTH))
async def cart_get(customer: CurrentCustomer, cart: CartDomain) -> JSONResponse:
    doc, refreshed = await cart.current(customer_id=customer.user_id or "")
    return ok(cart_view(doc, refreshed=refreshed), "Cart retrieved successfully")


@router.put("/cart/update", response_model=Envelope[CartPublic], responses=error_responses(*AUTH, 404, 409, *UPSTREAM))
async def cart_update(body: CartUpdateIn, customer: CurrentCustomer, cart: CartDomain) -> JSONResponse:
    doc = await cart.update(customer_id=customer.user_id or "", product_id=body.productId, quantity=body.quantity)
    return ok(cart_view(doc), "Cart item updated")


@router.delete("/cart/remove", response_model=MessageEnvelope, responses=error_responses(*AUTH))
async def cart_remove(
    customer: CurrentCustomer,
    cart: CartDomain,
    productId: Annotated[ObjectIdStr | None, Query(), EmptyAsNone] = None,
    body: CartRemoveIn | None = None,
) -> JSONResponse:
    product_id = (body.productId if body is not None else None) or productId
    if product_id is None:
        raise ValidationFailed.field("productId", "Product ID is required")
    await cart.remove(customer_id=customer.user_id or "", product_id=product_id)
    return ok(None, "Item removed from cart")


@router.delete("/cart/clear", response_model=MessageEnvelope, responses=error_responses(*AUTH))
async def cart_clear(customer: CurrentCustomer, cart: CartDomain) -> JSONResponse:
    await cart.clear(customer_id=customer.user_id or "")
    return ok(None, "Cart cleared")


# placement and the customer's orders


@router.post(
    "/orders/place",
    status_code=201,
    response_model=Envelope[OrderPublic],
    responses=error_responses(*AUTH, 404, 409, 500, *UPSTREAM),
)
async def place_order(
    body: PlaceOrderIn, customer: CurrentCustomer, idempotency_key: IdempotencyKey, orders: OrdersDomain
) -> JSONResponse:
    body.require_one_address()
    placed = await orders.place(
        customer_id=customer.user_id or "",
        token_email=customer.claims.get("email"),
        body=body,
        idempotency_key=idempotency_key,
    )
    response = ok(order_view(placed.order), "Order placed successfully", status_code=201)
    if placed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


async def _list(
    caller: Caller,
    orders: OrdersDomain,
    *,
    page: int | None,
    limit: int | None,
    status: str | None,
    seller_id: str | None,
    customer_id: str | None,
) -> tuple[list[dict], dict[str, int]]:
    page = page or 1
    if caller.kind == "customer":
        size = _limit(limit, default=10, maximum=50)
        docs, meta = await orders.page(page=page, limit=size, customer_id=caller.user_id, status=status)
        return [order_view(d) for d in docs], meta
    if caller.kind == "seller":
        me = _own_seller(caller, seller_id)
        size = _limit(limit, default=20, maximum=100)
        docs, meta = await orders.page(page=page, limit=size, seller_id=me, status=status)
        return [order_view(d, seller_id=me) for d in docs], meta
    if seller_id is not None:
        seller_id = object_id(seller_id)
    size = _limit(limit, default=20, maximum=100)
    docs, meta = await orders.page(page=page, limit=size, seller_id=seller_id, customer_id=customer_id, status=status)
    return [order_view(d, seller_id=seller_id) for d in docs], meta


async def _listed_orders(
    caller: OrderReader,
    orders: OrdersDomain,
    page: Page = None,
    limit: Limit = None,
    status: StatusFilter = None,
    sellerId: LooseSellerId = None,
    customerId: IdFilter = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The query of ``GET /orders`` and its alias ``GET /``, answered as (views, pagination)."""
    return await _list(
        caller, orders, page=page, limit=limit, status=status, seller_id=sellerId,
        customer_id=customerId if caller.kind == "staff" else None,
    )  # fmt: skip


ListedOrders = Annotated[tuple[list[dict[str, Any]], dict[str, Any]], Depends(_listed_orders)]


@router.get("/orders", response_model=Envelope[OrdersPagePublic], responses=error_responses(*AUTH))
async def list_orders(listed: ListedOrders) -> JSONResponse:
    views, meta = listed
    return ok({"orders": views, "pagination": meta}, RETRIEVED)


@router.get(
    "",
    response_model=PagedEnvelope[OrderPublic] | Envelope[OrdersPagePublic],
    responses=error_responses(*AUTH),
    summary="Alias: the seller client's GET /api/orders?sellerId= (seller token → #10)",
)
async def root_orders(caller: OrderReader, listed: ListedOrders) -> JSONResponse:
    views, meta = listed
    if caller.kind == "seller":
        return ok(views, RETRIEVED, pagination=meta)
    return ok({"orders": views, "pagination": meta}, RETRIEVED)


@router.get("/orders/{order_id}", response_model=Envelope[OrderPublic], responses=error_responses(*AUTH, 404))
async def get_order(order_id: str, caller: OrderReader, orders: OrdersDomain) -> JSONResponse:
    doc, seller_id = await orders.get(order_id=object_id(order_id), caller=caller)
    return ok(order_view(doc, seller_id=seller_id), "Order retrieved successfully")


@router.put(
    "/orders/{order_id}/cancel",
    response_model=Envelope[OrderPublic],
    responses=error_responses(*AUTH, 404, 409, *UPSTREAM),
)
async def cancel_order(
    order_id: str, customer: CurrentCustomer, orders: OrdersDomain, body: CancelIn | None = None
) -> JSONResponse:
    doc = await orders.cancel(
        order_id=object_id(order_id), customer_id=customer.user_id or "", reason=body.reason if body else None
    )
    return ok(order_view(doc), "Order cancelled successfully")


# sellers


@router.get("/seller/orders", response_model=PagedEnvelope[OrderPublic], responses=error_responses(*AUTH))
async def seller_orders(
    seller: CurrentSeller,
    orders: OrdersDomain,
    page: Page = None,
    limit: Limit = None,
    status: StatusFilter = None,
    sellerId: LooseSellerId = None,
) -> JSONResponse:
    me = _own_seller(seller, sellerId)
    size = _limit(limit, default=20, maximum=100)
    docs, meta = await orders.page(page=page or 1, limit=size, seller_id=me, status=status)
    return ok([order_view(d, seller_id=me) for d in docs], RETRIEVED, pagination=meta)


# admin and services


@router.get("/admin/orders", response_model=Envelope[OrdersPagePublic], responses=error_responses(*AUTH))
async def admin_orders(
    _: ServiceOrAdmin,
    orders: OrdersDomain,
    page: Page = None,
    limit: Limit = None,
    status: StatusFilter = None,
    sellerId: IdFilter = None,
    customerId: IdFilter = None,
    search: Annotated[str | None, Query(max_length=100), EmptyAsNone] = None,
) -> JSONResponse:
    size = _limit(limit, default=20, maximum=100)
    docs, meta = await orders.page(
        page=page or 1, limit=size, status=status, seller_id=sellerId, customer_id=customerId,
        search=search.strip() if search else None,
    )  # fmt: skip
    return ok({"orders": [order_view(d) for d in docs], "pagination": meta}, RETRIEVED)


_STATUS_DOC = {
    "response_model": Envelope[OrderPublic],
    "responses": error_responses(*AUTH, 404, 409, *UPSTREAM),
}


@router.put("/admin/orders/{order_id}/status", **_STATUS_DOC)
@router.patch("/admin/orders/{order_id}/status", **_STATUS_DOC)
@router.put("/orders/{order_id}/status", **_STATUS_DOC)
@router.patch("/orders/{order_id}/status", **_STATUS_DOC)
async def change_status(order_id: str, body: StatusIn, staff: ServiceOrAdmin, orders: OrdersDomain) -> JSONResponse:
    by = f"admin:{staff.user_id}" if not staff.is_service else "service"
    doc = await orders.change_status(order_id=object_id(order_id), to=body.status, notes=body.notes, by=by)
    return ok(order_view(doc), "Order status updated")


@router.get("/service/orders/stats", response_model=Envelope[OrderStatsPublic], responses=error_responses(*AUTH))
async def order_stats(_: ServiceOrAdmin, orders: OrdersDomain) -> JSONResponse:
    return ok(await orders.stats(), "Order stats retrieved successfully")


def _passed_on(exc: UpstreamStatus) -> AppError:
    """A products 4xx answered with its status and message (400/404/409), else 503."""
    if exc.status not in (400, 404, 409):
        return ServiceUnavailable("Products service unavailable")
    error = AppError(exc.message, errors=exc.body.get("errors") if isinstance(exc.body, dict) else None)
    error.status_code = exc.status
    return error


@router.post(
    "/inventory/check", response_model=Envelope[AvailabilityPublic], responses=error_responses(*AUTH, *UPSTREAM)
)
async def inventory_check(body: InventoryCheckIn, _: ServiceKey, orders: OrdersDomain) -> JSONResponse:
    try:
        data = await orders.products.check(items=[i.model_dump() for i in body.items])
    except UpstreamStatus as exc:
        raise _passed_on(exc) from None
    return ok(data, "Inventory availability checked")


@router.post(
    "/inventory/reserve",
    response_model=Envelope[ReservationPublic],
    responses=error_responses(*AUTH, 409, *UPSTREAM),
)
async def inventory_reserve(body: InventoryReserveIn, _: ServiceKey, orders: OrdersDomain) -> JSONResponse:
    items = [i.model_dump(exclude_none=True) for i in body.items]
    try:
        data = await orders.products.reserve(
            order_id=body.orderId, customer_id=body.customerId, items=items, minutes=body.expirationMinutes
        )
    except UpstreamStatus as exc:
        raise _passed_on(exc) from None
    view = {
        "orderId": data["orderId"],
        "reservationId": data["reservationId"],
        "items": [
            {k: i.get(k) for k in ("productId", "quantity", "reservedAt", "expiresAt")} for i in data.get("items") or []
        ],
        "status": "reserved",
    }
    return ok(view, "Inventory reserved")


@router.post("/inventory/release", response_model=MessageEnvelope, responses=error_responses(*AUTH, *UPSTREAM))
async def inventory_release(body: InventoryReleaseIn, _: ServiceKey, orders: OrdersDomain) -> JSONResponse:
    try:
        await orders.products.release(order_id=body.orderId, reason="Manual release")
    except UpstreamStatus as exc:
        raise _passed_on(exc) from None
    return ok(None, "Inventory released")


@router.get("/service/outbox", response_model=Envelope[OutboxPagePublic], responses=error_responses(*AUTH))
async def outbox_list(
    _: ServiceOrAdmin,
    orders: OrdersDomain,
    page: Page = None,
    limit: Limit = None,
    status: Annotated[OutboxStatus | None, Query(), EmptyAsNone] = None,
    orderId: Annotated[str | None, Query(max_length=64), EmptyAsNone] = None,
) -> JSONResponse:
    page, size = page or 1, _limit(limit, default=50, maximum=100)
    rows, total = await orders.repo.list_outbox(status=status, order_id=orderId, skip=(page - 1) * size, limit=size)
    data = {"entries": [outbox_entry_view(r) for r in rows], "pagination": pagination(page, size, total)}
    return ok(data, "Outbox retrieved successfully")


@router.post("/service/outbox/drain", response_model=Envelope[DrainPublic], responses=error_responses(*AUTH))
async def outbox_drain(_: ServiceOrAdmin, orders: OrdersDomain) -> JSONResponse:
    return ok(await orders.drain_outbox(), "Outbox drained")
