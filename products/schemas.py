"""Request bodies and list queries of the products service, with the contract's messages.

Unknown fields are ignored (read-only product fields such as ``totalSold`` included). Money
is validated here and carried on as integer cents. Update models keep ``model_fields_set``
so the domain knows what was sent.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from products.levels import MAX_STOCK
from shared.fields import (
    INT64_MAX,
    INT64_MIN,
    OBJECT_ID_RE,
    EmptyAsNone,
    check_bool,
    require_fields,
    trimmed_text,
)
from shared.responses import Pagination, ValidationFailed
from shared.validation import MAX_PAGE, page_params, to_cents


def is_object_id(value: object) -> bool:
    """A 24-hex id, matched whole (a trailing newline is no id)."""
    return isinstance(value, str) and OBJECT_ID_RE.fullmatch(value) is not None


MEDIA_ID_RE = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.I)
SITE_URL_RE = re.compile(r"(https?://[^\s/?#]+|/(?![/\\]))[^\s]*", re.I)
"""An image ``url``: absolute http(s), or a path on this site (``/…`` but not ``//host``)."""
SPEC_KEY_RE = re.compile(r"[\w][\w \-]*")
MAX_SPEC_KEYS, MAX_SPEC_KEY, MAX_SPEC_VALUE = 50, 50, 500
SELLER_STATUSES = ("active", "inactive", "draft")
MAX_PRICE = Decimal("99999999.99")

# JSON schemas of the lax inputs (the validators below accept them and say what is wrong).
_NULL = {"type": "null"}
_MONEY = {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}]}
_COUNT = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_STOCK}, {"type": "string"}]}
_BOOL = {
    "anyOf": [
        {"type": "boolean"},
        {"type": "string", "enum": ["true", "false", "1", "0"]},
        {"type": "integer", "enum": [0, 1]},
    ]
}
_OBJECT_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}


def _schema(*options: dict[str, Any], nullable: bool = False) -> WithJsonSchema:
    choices = [*options, _NULL] if nullable else list(options)
    return WithJsonSchema(choices[0] if len(choices) == 1 else {"anyOf": choices})


Money = Annotated[int, _schema(_MONEY)]
"""A non-negative amount sent as a number or a numeric string; carried on as integer cents."""
OptionalMoney = Annotated[int | None, _schema(_MONEY, nullable=True)]
Count = Annotated[int, _schema(_COUNT)]
"""A whole number 0..MAX_STOCK sent as a number or a numeric string."""
OptionalCount = Annotated[int | None, _schema(_COUNT, nullable=True)]
Flag = Annotated[bool, _schema(_BOOL)]
OptionalText = Annotated[str | None, _schema({"type": "string"}, nullable=True)]
RequiredText = Annotated[str, _schema({"type": "string", "minLength": 1})]
IdText = Annotated[str, _schema(_OBJECT_ID)]
OptionalId = Annotated[str | None, _schema(_OBJECT_ID, nullable=True)]
LaxText = Annotated[str, _schema({"type": "string", "minLength": 1, "maxLength": 64}, {"type": "integer"})]
"""Order ids: a string (an integer is taken as its digits)."""
OptionalLaxText = Annotated[
    str | None, _schema({"type": "string", "maxLength": 64}, {"type": "integer"}, nullable=True)
]
SpecValue = str | bool | int | float


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


def check_specifications(value: Any) -> dict[str, SpecValue]:
    """What a product page shows: at most 50 names of 1..50 word characters, spaces or
    hyphens, each a string (≤ 500 chars), a finite number or a boolean."""
    if not isinstance(value, dict):
        raise ValueError("Specifications must be an object")
    if len(value) > MAX_SPEC_KEYS:
        raise ValueError(f"Specifications cannot have more than {MAX_SPEC_KEYS} keys")
    clean: dict[str, SpecValue] = {}
    for raw_key, item in value.items():
        key = raw_key.strip()
        if len(key) > MAX_SPEC_KEY or not SPEC_KEY_RE.fullmatch(key):
            raise ValueError(
                f"Specification names must be 1-{MAX_SPEC_KEY} letters, digits, spaces, hyphens or underscores"
            )
        if isinstance(item, str):
            if len(item) > MAX_SPEC_VALUE:
                raise ValueError(f"Specification values cannot exceed {MAX_SPEC_VALUE} characters")
        elif isinstance(item, int) and not isinstance(item, bool):
            if not INT64_MIN <= item <= INT64_MAX:
                raise ValueError("Specification numbers must fit in 64 bits")
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise ValueError("Specification numbers must be finite")
        elif not isinstance(item, bool):
            raise ValueError("Specification values must be strings, numbers or booleans")
        clean[key] = item
    return clean


def _text(value: Any, label: str, *, maximum: int, minimum: int = 0) -> str:
    # Blank text of a required field is "<label> is required" here, as the contract words it.
    return trimmed_text(value, label, max_len=maximum, min_len=minimum, too_short=f"{label} is required")


class ImageIn(Body):
    media_id: Annotated[str | None, _schema({"type": "string", "format": "uuid"}, nullable=True)] = None
    url: Annotated[str | None, _schema({"type": "string", "maxLength": 500}, nullable=True)] = None
    isPrimary: Annotated[bool, _schema(_BOOL, _NULL)] = False
    altText: OptionalText = None

    @field_validator("media_id", mode="before")
    @classmethod
    def _media_id(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not MEDIA_ID_RE.fullmatch(value.strip()):
            raise ValueError("Invalid media ID format")
        return value.strip().lower()

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> str | None:
        if value is None or value == "":
            return None
        url = _text(value, "Image URL", maximum=500)
        if not SITE_URL_RE.fullmatch(url):
            raise ValueError("Image URL must be an http(s) URL or a path on this site")
        return url

    _primary = field_validator("isPrimary", mode="before")(
        lambda value: False if value is None else check_bool(value, "isPrimary")
    )

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

    name: Annotated[str | None, _schema({"type": "string", "minLength": 1, "maxLength": 200})] = None
    price: Annotated[int | None, _schema(_MONEY)] = None
    category: Annotated[str | None, _schema({"type": "string", "maxLength": 100}, nullable=True)] = None
    description: Annotated[str | None, _schema({"type": "string", "maxLength": 1000}, nullable=True)] = None
    comparePrice: OptionalMoney = None
    stock: Annotated[int | None, _schema(_COUNT)] = None
    lowStockAlert: Annotated[int | None, _schema(_COUNT)] = None
    subcategory: Annotated[str | None, _schema({"type": "string", "maxLength": 100}, nullable=True)] = None
    images: Annotated[
        list[ImageIn] | None,
        WithJsonSchema(
            {"anyOf": [{"type": "array", "maxItems": 10, "items": {"$ref": "#/components/schemas/ImageIn"}}, _NULL]}
        ),
    ] = None
    specifications: Annotated[
        dict[str, SpecValue] | None,
        _schema(
            {
                "type": "object",
                "maxProperties": MAX_SPEC_KEYS,
                "additionalProperties": {
                    "anyOf": [{"type": "string", "maxLength": MAX_SPEC_VALUE}, {"type": "number"}, {"type": "boolean"}]
                },
            },
            nullable=True,
        ),
    ] = None
    tags: Annotated[
        list[str] | None,
        _schema(
            {"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 50}},
            nullable=True,
        ),
    ] = None
    status: Annotated[str | None, _schema({"type": "string", "enum": list(SELLER_STATUSES)})] = None
    isActive: Annotated[bool | None, _schema(_BOOL)] = None
    sellerId: OptionalId = None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("Product name is required")
        return _text(value, "Product name", maximum=200, minimum=1)

    _price = field_validator("price", mode="before")(lambda value: money_cents(value, "Price"))

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

    _stock = field_validator("stock", mode="before")(lambda value: count_value(value, "Stock"))
    _low = field_validator("lowStockAlert", mode="before")(lambda value: count_value(value, "Low stock alert"))

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
        return {} if value is None else check_specifications(value)

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

    _is_active = field_validator("isActive", mode="before")(lambda value: check_bool(value, "isActive"))

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
    _required = require_fields("name", "price")


class ProductUpdateIn(ProductFields):
    pass


class StockIn(Body):
    stock: Count
    notes: Annotated[str | None, _schema({"type": "string", "maxLength": 500}, nullable=True)] = None

    _required = require_fields("stock")

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
    newStock: Count
    reason: Annotated[str | None, _schema({"type": "string", "maxLength": 500}, nullable=True)] = None
    notes: Annotated[str | None, _schema({"type": "string", "maxLength": 500}, nullable=True)] = None

    _required = require_fields("newStock")
    _new = field_validator("newStock", mode="before")(lambda value: count_value(value, "New stock"))

    @field_validator("reason", "notes", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> str | None:
        return None if value is None else _text(value, "Notes", maximum=500)


class InventorySyncIn(Body):
    lowStockThreshold: OptionalCount = None

    @field_validator("lowStockThreshold", mode="before")
    @classmethod
    def _low(cls, value: Any) -> int | None:
        return None if value is None else count_value(value, "Low stock threshold")


INVALID_ADMIN_STATUS = "Invalid status. Must be active, inactive, or draft"


class AdminStatusIn(Body):
    """``status`` is checked by the route so that any other value answers the contract's own
    top-level message (``Invalid status. Must be active, inactive, or draft``)."""

    status: Annotated[Any, WithJsonSchema({"type": "string", "enum": list(SELLER_STATUSES)})] = None

    def checked_status(self) -> str:
        if self.status not in SELLER_STATUSES:
            raise ValidationFailed.field("status", INVALID_ADMIN_STATUS, top=INVALID_ADMIN_STATUS)
        return self.status


class SellerStatusIn(Body):
    sellerId: IdText
    isActive: Flag
    tokenVersion: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    """The seller's token version: tokens whose ``ver`` is below it are refused (never lowered)."""

    _required = require_fields("sellerId", "isActive")

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
    productId: IdText
    sellerId: IdText

    _required = require_fields("productId", "sellerId")

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
    productId: IdText
    quantity: Annotated[int, _schema({"type": "integer", "minimum": 1, "maximum": 10_000}, {"type": "string"})]

    _required = require_fields("productId", "quantity")
    _pid = field_validator("productId", mode="before")(_product_id)

    @field_validator("quantity", mode="before")
    @classmethod
    def _quantity(cls, value: Any) -> int:
        return count_value(value, "Quantity", minimum=1, maximum=10_000)


class ReserveLine(QuantityLine):
    unitPrice: OptionalMoney = None

    _price = field_validator("unitPrice", mode="before")(lambda value: money_cents(value, "Unit price", required=False))


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


def _lines_of(model: str) -> WithJsonSchema:
    """How a body's list of 1..100 ``model`` lines is documented (the validators that check
    it answer the contract's own messages, so the schema is given rather than derived)."""
    return WithJsonSchema(
        {"type": "array", "minItems": 1, "maxItems": 100, "items": {"$ref": f"#/components/schemas/{model}"}}
    )


def _items_list(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise ValueError("items array is required")
    if len(value) > 100:
        raise ValueError("items cannot contain more than 100 entries")
    return value


class CheckAvailabilityIn(Body):
    items: Annotated[
        list[QuantityLine],
        _lines_of("QuantityLine"),
    ]

    _required = require_fields("items")
    _items = field_validator("items", mode="before")(_items_list)


class ReserveIn(Body):
    orderId: LaxText
    customerId: OptionalLaxText = None
    items: Annotated[
        list[ReserveLine],
        _lines_of("ReserveLine"),
    ]
    expirationMinutes: Annotated[
        float | None,
        _schema({"type": "number", "exclusiveMinimum": 0, "maximum": 1440}, {"type": "string"}, nullable=True),
    ] = None

    _required = require_fields("orderId", "items")
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
    orderId: LaxText
    reason: Annotated[str | None, _schema({"type": "string", "maxLength": 500}, nullable=True)] = None

    _required = require_fields("orderId")
    _order = field_validator("orderId", mode="before")(_order_id)

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: Any) -> str | None:
        return None if value is None or value == "" else _text(value, "Reason", maximum=500)


class SaleLine(QuantityLine):
    unitPrice: OptionalMoney = None
    totalPrice: OptionalMoney = None

    @field_validator("unitPrice", "totalPrice", mode="before")
    @classmethod
    def _money(cls, value: Any) -> int | None:
        return money_cents(value, "Price", required=False)


class RecordSaleIn(Body):
    orderId: LaxText
    customerId: OptionalLaxText = None
    items: Annotated[
        list[SaleLine],
        _lines_of("SaleLine"),
    ]

    _required = require_fields("orderId", "items")
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


def _search_text(q: Mapping[str, str], errors: list[dict[str, str]]) -> str | None:
    search = q.get("search")
    if search is None:
        return None
    search = search.strip()
    if len(search) > 100:
        errors.append({"field": "search", "message": "Search cannot exceed 100 characters"})
    return search or None


def _price_window(q: Mapping[str, str], errors: list[dict[str, str]]) -> tuple[int | None, int | None]:
    prices: dict[str, int | None] = {}
    for name in ("minPrice", "maxPrice"):
        try:
            prices[name] = money_cents(q.get(name), name, required=False)
        except ValueError as exc:
            errors.append({"field": name, "message": str(exc)})
    low, high = prices.get("minPrice"), prices.get("maxPrice")
    if low is not None and high is not None and low > high:
        errors.append({"field": "minPrice", "message": "minPrice cannot be greater than maxPrice"})
    return low, high


def _sort_spec(
    q: Mapping[str, str], sort_fields: Mapping[str, str], default_sort: str, errors: list[dict[str, str]]
) -> tuple[str | None, int]:
    """(store field, direction) from ``sort`` (wins) or ``sortBy``/``sortOrder``; a bad field
    is reported first (``errors[0].field == "sortBy"``)."""
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
        errors.insert(0, {"field": "sortBy", "message": f"sortBy must be one of {', '.join(sort_fields)}"})
    return field, -1 if sort.startswith("-") else 1


def _lowered(q: Mapping[str, str], name: str) -> str | None:
    value = q.get(name, "").strip()
    return value.lower() if value else None


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
    errors: list[dict[str, str]] = []
    page, limit = 1, default_limit
    try:
        page, limit = page_params(q.get("page"), q.get("limit"), default_limit=default_limit, max_limit=100)
    except ValidationFailed as exc:  # listed with the other bad parameters
        errors.extend(exc.errors or [])
    status = q.get("status", default_status)
    if status is not None and status not in statuses:
        errors.append({"field": "status", "message": f"Status must be one of {', '.join(statuses)}"})
    search = _search_text(q, errors)
    seller_id = q.get("sellerId") if with_seller else None
    if seller_id is not None and not is_object_id(seller_id):
        errors.append({"field": "sellerId", "message": "Invalid ID format"})
    low, high = _price_window(q, errors)
    field, direction = _sort_spec(q, sort_fields, default_sort, errors)
    for name in ("category", "subcategory"):
        if len(q.get(name, "")) > 100:
            errors.append({"field": name, "message": f"{name} cannot exceed 100 characters"})
    if errors or field is None:
        raise ValidationFailed(errors=errors)
    return ListQuery(
        page=page,
        limit=limit,
        status=status,
        category=_lowered(q, "category"),
        subcategory=_lowered(q, "subcategory"),
        seller_id=seller_id.lower() if seller_id else None,
        search=search,
        min_price=low,
        max_price=high,
        sort_field=field,
        sort_direction=direction,
    )


def list_query(
    *,
    sort_fields: Mapping[str, str] = SORT_FIELDS,
    statuses: tuple[str, ...] = LIST_STATUSES,
    default_status: str | None = "active",
    with_seller: bool = True,
) -> Callable[..., Awaitable[ListQuery]]:
    """A dependency reading a product list's query string, every parameter declared (so the
    document shows them) and checked by :func:`parse_list_query` with the contract's messages."""
    sort_names = list(sort_fields)
    sort_doc = WithJsonSchema({"type": "string", "enum": sort_names})
    alias_doc = WithJsonSchema({"type": "string", "enum": sort_names + [f"-{n}" for n in sort_names]})
    status_doc = WithJsonSchema({"type": "string", "enum": list(statuses)})
    id_doc = WithJsonSchema(_OBJECT_ID)
    money_doc = WithJsonSchema({"type": "number", "minimum": 0})

    declared: dict[str, Any] = {
        "page": Annotated[int | None, Query(ge=1, le=MAX_PAGE), EmptyAsNone],
        "limit": Annotated[int | None, Query(ge=1, le=100), EmptyAsNone],
        "category": Annotated[str | None, Query(max_length=100)],
        "subcategory": Annotated[str | None, Query(max_length=100)],
        "sellerId": Annotated[str | None, Query(include_in_schema=with_seller), id_doc],
        "search": Annotated[str | None, Query(max_length=100)],
        "minPrice": Annotated[str | None, Query(), money_doc],
        "maxPrice": Annotated[str | None, Query(), money_doc],
        "status": Annotated[str | None, Query(), status_doc],
        "sortBy": Annotated[str | None, Query(), sort_doc],
        "sortOrder": Annotated[str | None, Query(), WithJsonSchema({"type": "string", "enum": ["asc", "desc"]})],
        "sort": Annotated[str | None, Query(), alias_doc],
    }

    async def dependency(request: Request) -> ListQuery:
        # The query string is read once, here: declaring each parameter to FastAPI as well made
        # it validate (and convert) them all on every request first, ~20 % of a page's CPU.
        return parse_list_query(
            request.query_params,
            sort_fields=sort_fields,
            statuses=statuses,
            default_status=default_status,
            with_seller=with_seller,
        )

    dependency.openapi_parameters = _documented_parameters(declared)  # type: ignore[attr-defined]
    return dependency


def _documented_parameters(declared: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The OpenAPI ``parameters`` FastAPI writes for ``declared`` query parameters (from a
    throwaway app, once at import), for a route's ``openapi_extra``: the document keeps
    showing every parameter while the dependency reads the query string itself."""

    async def documented(**params: Any) -> None:
        return None

    documented.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
            for name, kind in declared.items()
        ]
    )
    scratch = FastAPI()

    async def route(_: None = Depends(documented)) -> None:
        return None

    scratch.get("/")(route)
    return scratch.openapi()["paths"]["/"]["get"].get("parameters", [])


def list_query_doc(dependency: Callable[..., Any]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route using a :func:`list_query` dependency."""
    return {"parameters": dependency.openapi_parameters}  # type: ignore[attr-defined]


# answers (``*Public``): what the routes send, as the OpenAPI document publishes it


class Public(BaseModel):
    model_config = ConfigDict(extra="allow")


class ImagePublic(Public):
    media_id: str | None = None
    url: str | None = None
    isPrimary: bool
    altText: str | None = None


class ProductPublic(Public):
    """The product object (contract §2)."""

    underscore_id: str = Field(alias="_id")
    id: str
    name: str
    description: str
    price: float
    comparePrice: float | None
    category: str
    subcategory: str | None
    sellerId: str
    images: list[ImagePublic]
    primaryImage: ImagePublic | None
    specifications: dict[str, SpecValue | None]
    tags: list[str]
    stock: int
    totalStock: int
    reservedStock: int
    soldStock: int
    lowStockAlert: int
    stockLevel: str
    isLowStock: bool
    isOutOfStock: bool
    status: str
    isActive: bool
    sellerActive: bool
    totalSold: int
    revenue: float
    createdAt: str
    updatedAt: str


class BulkProductPublic(Public):
    """A purchasable product as ``service/products/bulk`` answers it."""

    underscore_id: str = Field(alias="_id")
    id: str
    name: str
    price: float
    stock: int
    sellerId: str
    primaryImageId: str | None
    category: str
    lowStockAlert: int
    images: list[ImagePublic]


PaginationPublic = Pagination


class SellerSummaryPublic(Public):
    total: int
    active: int
    inactive: int
    lowStock: int
    outOfStock: int


class SellerProductsPublic(Public):
    products: list[ProductPublic]
    pagination: PaginationPublic
    summary: SellerSummaryPublic


class ProductPagePublic(Public):
    products: list[ProductPublic]
    pagination: PaginationPublic


class HistoryEntryPublic(Public):
    """A history entry; the typed mirrors appear where the entry has them."""

    id: str
    productId: str
    sellerId: str
    type: str
    previousValue: Any = None
    newValue: Any = None
    quantity: int | None = None
    orderId: str | None = None
    customerId: str | None = None
    notes: str | None = None
    metadata: dict[str, Any] | None = None
    createdAt: str


class HistoryPagePublic(Public):
    history: list[HistoryEntryPublic]
    pagination: PaginationPublic


class ReservationLinePublic(Public):
    orderId: str | None
    customerId: str | None
    quantity: int
    reservedAt: str | None
    expiresAt: str | None
    status: str
    isExpired: bool


class _StockLevelsPublic(Public):
    """The counters of every inventory answer (``products.views.inventory_view``)."""

    productId: str
    totalStock: int
    reservedStock: int
    soldStock: int
    availableStock: int
    isOutOfStock: bool
    isLowStock: bool
    lowStockThreshold: int
    activeReservations: int


class InventoryPublic(_StockLevelsPublic):
    sellerId: str
    reservations: list[ReservationLinePublic] | None = None
    lastUpdated: str | None


class InventoryRowPublic(_StockLevelsPublic):
    productName: str
    productCategory: str
    productPrice: float


class InventorySummaryPublic(Public):
    totalProducts: int
    totalStock: int
    totalReserved: int
    totalSold: int
    totalAvailable: int
    lowStockCount: int
    outOfStockCount: int


class SellerInventoryPublic(Public):
    inventories: list[InventoryRowPublic]
    pagination: PaginationPublic
    summary: InventorySummaryPublic


class MovementsPublic(Public):
    movements: list[HistoryEntryPublic]
    pagination: PaginationPublic
    currentStock: InventoryPublic


class StockSetPublic(Public):
    productId: str
    previousStock: int
    newStock: int
    stockChange: int
    notes: str | None


class StockChangePublic(Public):
    productId: str
    success: bool
    previousStock: int
    newStock: int
    stockChange: int


class AnalyticsSummaryPublic(Public):
    totalProducts: int
    activeProducts: int
    totalSold: int
    totalRevenue: float
    orderCount: int
    lowStockProducts: int
    outOfStockProducts: int


class TopProductPublic(Public):
    productId: str
    name: str | None
    unitsSold: int
    revenue: float


class LowStockProductPublic(Public):
    productId: str
    name: str | None
    stock: int
    lowStockAlert: int


class DailySalesPublic(Public):
    date: str
    totalSales: int
    totalRevenue: float
    orderCount: int


class CategorySalesPublic(Public):
    id: str
    totalSales: int
    totalRevenue: float


class AnalyticsPublic(Public):
    period: int
    summary: AnalyticsSummaryPublic
    topProducts: list[TopProductPublic]
    lowStockProducts: list[LowStockProductPublic]
    recentSales: list[HistoryEntryPublic]
    salesAnalytics: list[DailySalesPublic]
    salesByCategory: list[CategorySalesPublic]


class AvailabilityItemPublic(Public):
    productId: str
    productName: str | None
    available: bool
    reason: str
    requestedQuantity: int
    availableStock: int
    totalStock: int
    reservedStock: int


class AvailabilitySummaryPublic(Public):
    total: int
    available: int
    unavailable: int


class AvailabilityPublic(Public):
    allAvailable: bool
    items: list[AvailabilityItemPublic]
    summary: AvailabilitySummaryPublic


class ReservedItemPublic(Public):
    productId: str
    quantity: int
    unitPrice: float
    reservedAt: str | None
    expiresAt: str | None


class ReservedLinePublic(Public):
    productId: str
    reserved: int
    availableAfterReservation: int | None = None
    expiresAt: str | None


class ReservationPublic(Public):
    orderId: str
    reservationId: str
    customerId: str | None
    status: str
    expiresAt: str | None
    expirationMinutes: float | None
    items: list[ReservedItemPublic]
    successful: list[ReservedLinePublic]
    failed: list[dict[str, Any]]


class ConfirmedLinePublic(Public):
    productId: str
    confirmed: int
    newSoldStock: int | None


class ConfirmPublic(Public):
    orderId: str
    status: str
    successful: list[ConfirmedLinePublic]
    failed: list[dict[str, Any]]


class ReleasedLinePublic(Public):
    productId: str
    released: bool
    newAvailableStock: int


class ReleasePublic(Public):
    orderId: str
    reason: str
    status: str
    results: list[ReleasedLinePublic]


class CleanupPublic(Public):
    cleanedCount: int


class SellerStatusPublic(Public):
    sellerId: str
    isActive: bool
    modifiedCount: int


class StatsPublic(Public):
    total: int
    active: int
    outOfStock: int
    lowStock: int


class ValidateSellerPublic(Public):
    productId: str
    sellerId: str
    isValid: bool
    actualSellerId: str


class SaleResultPublic(Public):
    productId: str
    success: bool
    quantity: int | None = None
    totalPrice: float | None = None
    skipped: bool | None = None
    message: str | None = None


class InitializedPublic(Public):
    initialized: int


class SyncedPublic(Public):
    synced: int


class BulkIn(Body):
    """``productIds``: 1..100 ids (malformed ones are simply not found)."""

    productIds: Annotated[
        list[Annotated[str, WithJsonSchema({"type": "string", "maxLength": 64})]],
        WithJsonSchema({"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string"}}),
    ]

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("productIds"), list) or not data["productIds"]:
            raise ValidationFailed(PRODUCT_IDS_REQUIRED)
        if len(data["productIds"]) > 100:
            raise ValidationFailed.field("productIds", "productIds cannot contain more than 100 ids")
        return data


PRODUCT_IDS_REQUIRED = "productIds array is required"
UPDATES_REQUIRED = "updates array is required"


class StockDeltaIn(Body):
    productId: IdText
    stockChange: Annotated[int, Field(ge=-MAX_STOCK, le=MAX_STOCK)]

    _required = require_fields("productId", "stockChange")

    @field_validator("productId", mode="before")
    @classmethod
    def _pid(cls, value: Any) -> str:
        if not is_object_id(value):
            raise ValueError("Invalid product ID format")
        return value.lower()

    @field_validator("stockChange", mode="before")
    @classmethod
    def _change(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value == 0:
            raise ValueError("stockChange must be a non-zero integer")
        if abs(value) > MAX_STOCK:
            raise ValueError(f"stockChange cannot exceed {MAX_STOCK} in either direction")
        return value


class BulkStockIn(Body):
    """``updates``: 1..100 non-zero deltas, each within ±MAX_STOCK."""

    updates: Annotated[
        list[StockDeltaIn],
        _lines_of("StockDeltaIn"),
    ]

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("updates"), list) or not data["updates"]:
            raise ValidationFailed(UPDATES_REQUIRED)
        if len(data["updates"]) > 100:
            raise ValidationFailed.field("updates", "updates cannot contain more than 100 entries")
        data = dict(data)
        data["updates"] = [u if isinstance(u, dict) else {} for u in data["updates"]]
        return data
