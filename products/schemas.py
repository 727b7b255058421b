"""Request bodies and list queries of the products service, with the contract's messages.

Unknown fields are ignored (read-only product fields such as ``totalSold`` included). Money
is validated here and carried on as integer cents. Update models keep ``model_fields_set``
so the domain knows what was sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from shared.fields import check_bool, with_required
from shared.responses import ValidationFailed
from shared.store import is_object_id
from shared.validation import page_params, parse_bool, to_cents

MEDIA_ID_RE = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.I)
SELLER_STATUSES = ("active", "inactive", "draft")
MAX_PRICE = Decimal("99999999.99")
MAX_STOCK = 1_000_000_000


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


def money_cents(value: Any, label: str, *, required: bool = True) -> int | None:
    """A non-negative amount (number or numeric string) as integer cents, half-up."""
    if value is None or value == "":
        if required:
            raise ValueError(f"{label} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{label} must be a non-negative number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{label} must be a non-negative number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{label} must be a non-negative number")
    if amount > MAX_PRICE:
        raise ValueError(f"{label} cannot exceed {MAX_PRICE}")
    return to_cents(amount)


def count_value(value: Any, label: str, *, minimum: int = 0, maximum: int = MAX_STOCK) -> int:
    """A whole number in ``minimum..maximum`` (JSON integers, or floats/strings holding one)."""
    message = f"{label} must be a non-negative number" if minimum == 0 else f"{label} must be at least {minimum}"
    if value is None or value == "":
        raise ValueError(f"{label} is required")
    if isinstance(value, bool):
        raise ValueError(message)
    try:
        number = Decimal(str(value).strip()) if isinstance(value, int | float | str) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number != number.to_integral_value():
        raise ValueError(f"{label} must be a whole number")
    if number < minimum:
        raise ValueError(message)
    if number > maximum:
        raise ValueError(f"{label} cannot exceed {maximum}")
    return int(number)


def _text(value: Any, label: str, *, maximum: int, minimum: int = 0) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    value = value.strip()
    if len(value) < minimum:
        raise ValueError(f"{label} is required")
    if len(value) > maximum:
        raise ValueError(f"{label} cannot exceed {maximum} characters")
    return value


class ImageIn(Body):
    media_id: Any = None
    url: Any = None
    isPrimary: Any = False
    altText: Any = None

    @field_validator("media_id", mode="before")
    @classmethod
    def _media_id(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not MEDIA_ID_RE.match(value.strip()):
            raise ValueError("Invalid media ID format")
        return value.strip().lower()

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        return _text(value, "Image URL", maximum=500)

    @field_validator("isPrimary", mode="before")
    @classmethod
    def _primary(cls, value: Any) -> bool:
        if value is None:
            return False
        parsed = parse_bool(value)
        if parsed is None:
            raise ValueError("isPrimary must be a boolean")
        return parsed

    @field_validator("altText", mode="before")
    @classmethod
    def _alt(cls, value: Any) -> str | None:
        return None if value is None else _text(value, "Alt text", maximum=200)

    @model_validator(mode="after")
    def _source(self) -> ImageIn:
        if self.media_id is None and self.url is None:
            raise ValueError("Each image needs a media_id or a url")
        return self


class ProductFields(Body):
    """The writable product fields; every validator runs only on fields that were sent."""

    name: Any = None
    price: Any = None
    category: Any = None
    description: Any = None
    comparePrice: Any = None
    stock: Any = None
    lowStockAlert: Any = None
    subcategory: Any = None
    images: list[ImageIn] | None = None
    specifications: Any = None
    tags: Any = None
    status: Any = None
    isActive: Any = None
    sellerId: Any = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("Product name is required")
        return _text(value, "Product name", maximum=200, minimum=1)

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> int | None:
        return money_cents(value, "Price")

    @field_validator("comparePrice", mode="before")
    @classmethod
    def _compare(cls, value: Any) -> int | None:
        return money_cents(value, "Compare price", required=False)

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: Any) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            return "uncategorized"
        return _text(value, "Category", maximum=100, minimum=1).lower()

    @field_validator("subcategory", mode="before")
    @classmethod
    def _subcategory(cls, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return _text(value, "Subcategory", maximum=100).lower()

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> str:
        return "" if value is None else _text(value, "Description", maximum=1000)

    @field_validator("stock", mode="before")
    @classmethod
    def _stock(cls, value: Any) -> int:
        return count_value(value, "Stock")

    @field_validator("lowStockAlert", mode="before")
    @classmethod
    def _low(cls, value: Any) -> int:
        return count_value(value, "Low stock alert")

    @field_validator("images", mode="before")
    @classmethod
    def _images(cls, value: Any) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError("Images must be an array")
        if len(value) > 10:
            raise ValueError("A product can have at most 10 images")
        return value

    @field_validator("specifications", mode="before")
    @classmethod
    def _specifications(cls, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("Specifications must be an object")
        if len(value) > 50:
            raise ValueError("Specifications cannot have more than 50 keys")
        clean: dict[str, Any] = {}
        for key, item in value.items():
            key = key.strip()
            if not key or len(key) > 100 or "." in key or key.startswith("$"):
                raise ValueError("Specification names must be 1-100 characters without '.' or a leading '$'")
            if isinstance(item, str):
                if len(item) > 500:
                    raise ValueError("Specification values cannot exceed 500 characters")
            elif item is not None and not isinstance(item, int | float | bool):
                raise ValueError("Specification values must be strings, numbers or booleans")
            clean[key] = item
        return clean

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError("Tags must be an array")
        if len(value) > 20:
            raise ValueError("A product can have at most 20 tags")
        tags = []
        for tag in value:
            if not isinstance(tag, str) or not tag.strip():
                raise ValueError("Each tag must be a non-empty string")
            if len(tag.strip()) > 50:
                raise ValueError("Each tag cannot exceed 50 characters")
            tags.append(tag.strip())
        return tags

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> str:
        if value not in SELLER_STATUSES:
            raise ValueError("Status must be active, inactive or draft")
        return value

    @field_validator("isActive", mode="before")
    @classmethod
    def _is_active(cls, value: Any) -> bool:
        parsed = parse_bool(value)
        if parsed is None:
            raise ValueError("isActive must be a boolean")
        return parsed

    @field_validator("sellerId", mode="before")
    @classmethod
    def _seller(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not is_object_id(value):
            raise ValueError("Invalid seller ID format")
        return value.lower()

    def requested_status(self) -> str | None:
        """``status`` when sent, else the one ``isActive`` implies, else None."""
        if "status" in self.model_fields_set and self.status is not None:
            return self.status
        if "isActive" in self.model_fields_set and self.isActive is not None:
            return "active" if self.isActive else "inactive"
        return None


class ProductCreateIn(ProductFields):
    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("name", "price"))


class ProductUpdateIn(ProductFields):
    pass


class StockIn(Body):
    stock: Any = None
    notes: Any = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("stock",))

    @field_validator("stock", mode="before")
    @classmethod
    def _stock(cls, value: Any) -> int:
        try:
            return count_value(value, "Stock")
        except ValueError as exc:
            if str(exc) == "Stock is required":
                raise
            raise ValueError("Stock must be a non-negative number") from None

    @field_validator("notes", mode="before")
    @classmethod
    def _notes(cls, value: Any) -> str | None:
        return None if value is None else _text(value, "Notes", maximum=500)


class AdjustIn(Body):
    newStock: Any = None
    reason: Any = None
    notes: Any = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("newStock",))

    @field_validator("newStock", mode="before")
    @classmethod
    def _new(cls, value: Any) -> int:
        return count_value(value, "New stock")

    @field_validator("reason", "notes", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> str | None:
        return None if value is None else _text(value, "Notes", maximum=500)


class InventorySyncIn(Body):
    lowStockThreshold: Any = None

    @field_validator("lowStockThreshold", mode="before")
    @classmethod
    def _low(cls, value: Any) -> int | None:
        return None if value is None else count_value(value, "Low stock threshold")


class AdminStatusIn(Body):
    status: Any = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("status",))

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> str:
        if value not in SELLER_STATUSES:
            raise ValueError("Invalid status. Must be active, inactive, or draft")
        return value


class SellerStatusIn(Body):
    sellerId: Any = None
    isActive: Any = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("sellerId", "isActive"))

    @field_validator("sellerId", mode="before")
    @classmethod
    def _seller(cls, value: Any) -> str:
        if value is None or value == "":
            raise ValueError("Seller ID is required")
        if not is_object_id(value):
            raise ValueError("Invalid ID format")
        return value.lower()

    _active = field_validator("isActive", mode="before")(lambda v: check_bool(v, "isActive"))


class ValidateSellerIn(Body):
    productId: Any = None
    sellerId: Any = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("productId", "sellerId"))

    @field_validator("productId", "sellerId", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> str:
        if value is None or value == "":
            raise ValueError("ID is required")
        if not is_object_id(value):
            raise ValueError("Invalid ID format")
        return value.lower()


def _product_id(value: Any) -> str:
    if value is None or value == "":
        raise ValueError("Product ID is required")
    if not is_object_id(value):
        raise ValueError("Invalid product ID format")
    return value.lower()


class QuantityLine(Body):
    productId: Any = None
    quantity: Any = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("productId", "quantity"))

    _pid = field_validator("productId", mode="before")(_product_id)

    @field_validator("quantity", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> int:
        return count_value(value, "Quantity", minimum=1, maximum=10_000)


class ReserveLine(QuantityLine):
    unitPrice: Any = None

    @field_validator("unitPrice", mode="before")
    @classmethod
    def _price(cls, value: Any) -> int | None:
        return money_cents(value, "Unit price", required=False)


def _order_id(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("Order ID is required")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _text(value, "Order ID", maximum=64, minimum=1)


def _customer_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return None if value is None or value == "" else _text(value, "Customer ID", maximum=64)


def _items_list(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise ValueError("items array is required")
    if len(value) > 100:
        raise ValueError("items cannot contain more than 100 entries")
    return value


class CheckAvailabilityIn(Body):
    items: list[QuantityLine]

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("items",))

    _items = field_validator("items", mode="before")(_items_list)


class ReserveIn(Body):
    orderId: Any = None
    customerId: Any = None
    items: list[ReserveLine]
    expirationMinutes: Any = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("orderId", "items"))

    _order = field_validator("orderId", mode="before")(_order_id)
    _customer = field_validator("customerId", mode="before")(_customer_id)

    _items = field_validator("items", mode="before")(_items_list)

    @field_validator("expirationMinutes", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("expirationMinutes must be a number")
        try:
            minutes = float(value)
        except ValueError:
            raise ValueError("expirationMinutes must be a number") from None
        if not (0 < minutes <= 1440):
            raise ValueError("expirationMinutes must be greater than 0 and at most 1440")
        return minutes

    @model_validator(mode="after")
    def _distinct(self) -> ReserveIn:
        seen: set[str] = set()
        for index, line in enumerate(self.items):
            if line.productId in seen:
                raise ValidationFailed.field(f"items.{index}.productId", "Duplicate product in items")
            seen.add(line.productId)
        return self


class OrderIn(Body):
    orderId: Any = None
    reason: Any = None

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("orderId",))

    _order = field_validator("orderId", mode="before")(_order_id)

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: Any) -> str | None:
        return None if value is None or value == "" else _text(value, "Reason", maximum=500)


class SaleLine(QuantityLine):
    unitPrice: Any = None
    totalPrice: Any = None

    @field_validator("unitPrice", "totalPrice", mode="before")
    @classmethod
    def _money(cls, value: Any) -> int | None:
        return money_cents(value, "Price", required=False)


class RecordSaleIn(Body):
    orderId: Any = None
    customerId: Any = None
    items: list[SaleLine]

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any) -> Any:
        return with_required(data, ("orderId", "items"))

    _order = field_validator("orderId", mode="before")(_order_id)
    _customer = field_validator("customerId", mode="before")(_customer_id)
    _items = field_validator("items", mode="before")(_items_list)


# list queries


SORT_FIELDS = {
    "createdAt": "createdAt",
    "price": "priceCents",
    "name": "name",
    "totalSold": "totalSold",
    "stock": "stock",
}
SELLER_SORT_FIELDS = {**SORT_FIELDS, "revenue": "revenueCents", "updatedAt": "updatedAt"}
LIST_STATUSES = ("active", "inactive", "draft", "all")
ADMIN_STATUSES = ("active", "inactive", "draft", "deleted", "all")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A validated catalogue query (prices in cents, sort as a store field and direction)."""

    page: int
    limit: int
    status: str | None
    category: str | None = None
    subcategory: str | None = None
    seller_id: str | None = None
    search: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    sort_field: str = "createdAt"
    sort_direction: int = -1


def parse_list_query(
    params: Mapping[str, str],
    *,
    sort_fields: Mapping[str, str] = SORT_FIELDS,
    statuses: tuple[str, ...] = LIST_STATUSES,
    default_status: str | None = "active",
    default_limit: int = 10,
    default_sort: str = "-createdAt",
    with_seller: bool = True,
) -> ListQuery:
    """Validate the query string of a product list; every bad parameter is listed (400)."""
    q = {k: v for k, v in params.items() if v != ""}
    page, limit = page_params(q.get("page"), q.get("limit"), default_limit=default_limit, max_limit=100)
    errors: list[dict[str, str]] = []
    status = q.get("status", default_status)
    if status is not None and status not in statuses:
        errors.append({"field": "status", "message": f"Status must be one of {', '.join(statuses)}"})
    search = q.get("search")
    if search is not None:
        search = search.strip()
        if len(search) > 100:
            errors.append({"field": "search", "message": "Search cannot exceed 100 characters"})
        search = search or None
    seller_id = q.get("sellerId") if with_seller else None
    if seller_id is not None and not is_object_id(seller_id):
        errors.append({"field": "sellerId", "message": "Invalid ID format"})
    prices: dict[str, int | None] = {}
    for name in ("minPrice", "maxPrice"):
        try:
            prices[name] = money_cents(q.get(name), name, required=False)
        except ValueError as exc:
            errors.append({"field": name, "message": str(exc)})
    low, high = prices.get("minPrice"), prices.get("maxPrice")
    if low is not None and high is not None and low > high:
        errors.append({"field": "minPrice", "message": "minPrice cannot be greater than maxPrice"})
    if "sort" in q:
        sort = q["sort"]
    else:
        by = q.get("sortBy", default_sort.lstrip("-"))
        order = q.get("sortOrder", "desc" if default_sort.startswith("-") else "asc").lower()
        if order not in ("asc", "desc"):
            errors.append({"field": "sortOrder", "message": "sortOrder must be asc or desc"})
        sort = ("-" if order == "desc" else "") + by
    field = sort_fields.get(sort.lstrip("-")) if sort.count("-") <= 1 else None
    if field is None:
        message = f"sortBy must be one of {', '.join(sort_fields)}"
        errors.insert(0, {"field": "sortBy", "message": message})
    if errors:
        raise ValidationFailed(errors=errors)
    assert field is not None
    for name in ("category", "subcategory"):
        if len(q.get(name, "")) > 100:
            raise ValidationFailed.field(name, f"{name} cannot exceed 100 characters")
    return ListQuery(
        page=page,
        limit=limit,
        status=status,
        category=q["category"].strip().lower() if q.get("category", "").strip() else None,
        subcategory=q["subcategory"].strip().lower() if q.get("subcategory", "").strip() else None,
        seller_id=seller_id.lower() if seller_id else None,
        search=search,
        min_price=low,
        max_price=high,
        sort_field=field,
        sort_direction=-1 if sort.startswith("-") else 1,
    )
