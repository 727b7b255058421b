"""Typed request bodies and ``*Public`` answer models of the orders service.

Every request field has a real type and a bound (integers included, so nothing outside 64
bits reaches the store); the contract's messages come from the validators. Unknown fields
are ignored. Answer models describe the ``data`` of each success envelope.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from shared.fields import check_text
from shared.responses import Pagination, ValidationFailed

OBJECT_ID_RE = re.compile(r"[0-9a-fA-F]{24}")
ORDER_STATUSES = ("pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "failed")
OrderStatus = Literal["pending", "confirmed", "processing", "shipped", "delivered", "cancelled", "failed"]
PaymentMethod = Literal["cod", "online", "wallet"]
PaymentStatus = Literal["pending", "paid", "failed", "refunded"]
ItemStatus = Literal["reserved", "confirmed", "cancelled", "fulfilled"]
OutboxStatus = Literal["pending", "sending", "sent", "failed"]


def is_object_id(value: object) -> bool:
    return isinstance(value, str) and OBJECT_ID_RE.fullmatch(value) is not None


def _object_id(label: str):
    def check(value: Any) -> Any:
        if value is None or value == "":
            raise ValueError(f"{label} is required")
        if not is_object_id(value):
            raise ValueError(f"Invalid {label[0].lower() + label[1:]} format")
        return value.lower()

    return BeforeValidator(check)


def _whole(label: str, low: int, high: int, *, default: int | None = None):
    """A whole number in ``low..high``: JSON integers, or floats/strings holding one; never a bool."""

    def check(value: Any) -> Any:
        if value is None and default is not None:
            return default
        if value is None or value == "":
            raise ValueError(f"{label} is required")
        if isinstance(value, bool):
            raise ValueError(f"{label} must be an integer")
        if isinstance(value, str):
            value = value.strip()
            if not re.fullmatch(r"-?\d{1,12}", value):
                raise ValueError(f"{label} must be an integer")
            value = int(value)
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{label} must be an integer")
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"{label} must be an integer")
        if not low <= value <= high:
            raise ValueError(f"{label} must be between {low} and {high}")
        return value

    return BeforeValidator(check)


def _text(label: str, maximum: int, *, required: bool = False):
    """Trimmed text of at most ``maximum`` characters; blank is None (or "<label> is required")."""

    def check(value: Any) -> Any:
        return check_text(value, label, max_len=maximum, required=required)

    return BeforeValidator(check)


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


ProductId = Annotated[str, _object_id("Product ID")]


# cart


class CartAddIn(Body):
    productId: ProductId
    quantity: Annotated[int, _whole("Quantity", 1, 100, default=1)] = 1


class CartUpdateIn(Body):
    productId: ProductId
    quantity: Annotated[int, _whole("Quantity", 0, 100)]


class CartRemoveIn(Body):
    productId: Annotated[str | None, BeforeValidator(lambda v: None if v in (None, "") else v)] = None

    @field_validator("productId")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not is_object_id(value):
            raise ValueError("Invalid product ID format")
        return value.lower() if value else None


# placement


class AddressIn(Body):
    addressLine1: Annotated[str, _text("Address line 1", 200, required=True)]
    addressLine2: Annotated[str | None, _text("Address line 2", 200)] = None
    city: Annotated[str, _text("City", 200, required=True)]
    state: Annotated[str, _text("State", 200, required=True)]
    country: Annotated[str, _text("Country", 200, required=True)]
    postalCode: Annotated[str, _text("Postal code", 20, required=True)]
    contactName: Annotated[str | None, _text("Contact name", 200)] = None
    contactPhone: Annotated[str | None, _text("Contact phone", 30)] = None


def _payment(value: Any) -> Any:
    if value is None or value == "":
        return "cod"
    if isinstance(value, str) and value.strip().lower() in ("cod", "online", "wallet"):
        return value.strip().lower()
    raise ValueError("Payment method must be cod, online or wallet")


class PlaceOrderIn(Body):
    shippingAddress: AddressIn | None = None
    shippingAddressId: Annotated[str | None, BeforeValidator(lambda v: None if v in (None, "") else v)] = None
    paymentMethod: Annotated[PaymentMethod, BeforeValidator(_payment)] = "cod"
    notes: Annotated[str | None, _text("Notes", 500)] = None

    @field_validator("shippingAddressId")
    @classmethod
    def _address_id(cls, value: str | None) -> str | None:
        if value is not None and not is_object_id(value):
            raise ValueError("Invalid shipping address ID format")
        return value.lower() if value else None

    def require_one_address(self) -> None:
        """Exactly one of ``shippingAddress`` / ``shippingAddressId`` (400 naming the field)."""
        if self.shippingAddress is None and self.shippingAddressId is None:
            raise ValidationFailed.field("shippingAddress", "shippingAddress or shippingAddressId is required")
        if self.shippingAddress is not None and self.shippingAddressId is not None:
            raise ValidationFailed.field(
                "shippingAddressId", "Provide either shippingAddress or shippingAddressId, not both"
            )


# order changes


class CancelIn(Body):
    reason: Annotated[str | None, _text("Reason", 500)] = None


def _status(value: Any) -> Any:
    if value is None or value == "":
        raise ValueError("Status is required")
    if not isinstance(value, str) or value not in ORDER_STATUSES:
        raise ValueError("Status must be one of " + ", ".join(ORDER_STATUSES))
    return value


class StatusIn(Body):
    status: Annotated[OrderStatus, BeforeValidator(_status)]
    notes: Annotated[str | None, _text("Notes", 500)] = None


# inventory delegation


class QuantityLineIn(Body):
    productId: ProductId
    quantity: Annotated[int, _whole("Quantity", 1, 10_000)]


class InventoryCheckIn(Body):
    items: Annotated[list[QuantityLineIn], Field(min_length=1, max_length=100)]


class ReserveLineIn(QuantityLineIn):
    unitPrice: Annotated[float | None, Field(ge=0, le=99_999_999.99, allow_inf_nan=False)] = None


OrderRef = Annotated[str, _text("Order ID", 64, required=True)]


class InventoryReserveIn(Body):
    orderId: OrderRef
    items: Annotated[list[ReserveLineIn], Field(min_length=1, max_length=100)]
    expirationMinutes: Annotated[float, Field(gt=0, le=1440, allow_inf_nan=False)] = 30.0
    customerId: Annotated[str | None, _text("Customer ID", 64)] = None


class InventoryReleaseIn(Body):
    orderId: OrderRef


# answers


class Public(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


PaginationPublic = Pagination


class CartItemPublic(Public):
    productId: str
    sellerId: str | None
    productName: str | None
    productImage: str | None
    quantity: int
    price: float
    totalPrice: float
    availableStock: int
    addedAt: str | None
    updatedAt: str | None


class CartPublic(Public):
    id: str
    customerId: str
    items: list[CartItemPublic]
    totalItems: int
    totalAmount: float
    createdAt: str | None
    updatedAt: str | None
    refreshed: bool | None = None


class OrderItemPublic(Public):
    productId: str
    sellerId: str | None
    productName: str | None
    productImage: str | None
    quantity: int
    unitPrice: float
    price: float
    totalPrice: float
    status: ItemStatus


class AddressPublic(Public):
    addressLine1: str
    addressLine2: str | None = None
    city: str
    state: str
    country: str
    postalCode: str
    contactName: str | None = None
    contactPhone: str | None = None


class CustomerInfoPublic(Public):
    name: str | None
    email: str | None = None


class HistoryPublic(Public):
    status: OrderStatus
    at: str
    notes: str | None
    by: str | None


class OrderPublic(Public):
    id: str
    id_: str = Field(alias="_id")
    orderNumber: str
    customerId: str
    customerName: str | None
    customerEmail: str | None = None
    customerInfo: CustomerInfoPublic
    items: list[OrderItemPublic]
    itemCount: int
    sellers: list[str]
    subtotal: float
    tax: float
    shippingFee: float
    totalAmount: float
    status: OrderStatus
    paymentMethod: PaymentMethod
    paymentStatus: PaymentStatus
    shippingAddress: AddressPublic
    notes: str | None
    cancelReason: str | None
    statusHistory: list[HistoryPublic]
    placedAt: str | None
    confirmedAt: str | None
    shippedAt: str | None
    deliveredAt: str | None
    cancelledAt: str | None
    reservationExpiry: str | None
    createdAt: str | None
    updatedAt: str | None
    sellerView: bool | None = None


class OrdersPagePublic(Public):
    orders: list[OrderPublic]
    pagination: PaginationPublic


class StatsByStatusPublic(Public):
    pending: int
    confirmed: int
    processing: int
    shipped: int
    delivered: int
    cancelled: int
    failed: int


class OrderStatsPublic(Public):
    total: int
    byStatus: StatsByStatusPublic
    revenue: float


class AvailabilityItemPublic(Public):
    model_config = ConfigDict(extra="allow")
    productId: str
    requestedQuantity: int
    availableStock: int
    available: bool


class AvailabilityPublic(Public):
    model_config = ConfigDict(extra="allow")
    allAvailable: bool
    items: list[AvailabilityItemPublic]


class ReservedItemPublic(Public):
    productId: str
    quantity: int
    reservedAt: str | None
    expiresAt: str | None


class ReservationPublic(Public):
    orderId: str
    reservationId: str
    items: list[ReservedItemPublic]
    status: Literal["reserved"]


class OutboxEntryPublic(Public):
    id: str
    kind: str | None
    dedupeKey: str | None
    orderId: str | None
    status: OutboxStatus
    attempts: int
    nextAttemptAt: str | None
    lastError: str | None
    createdAt: str | None
    sentAt: str | None
    template: str | None = None


class OutboxPagePublic(Public):
    entries: list[OutboxEntryPublic]
    pagination: PaginationPublic


class DrainPublic(Public):
    sent: int
    retrying: int
    failed: int
