"""Request bodies of the sellers service, with the contract's validation messages.

Unknown fields are ignored. For optional fields ``""`` means absent on create and "clear"
on update; models keep ``model_fields_set`` so updates know what was sent. Business fields
come flat or nested under ``business`` (the nested value wins); errors always name the flat
field (``businessName``, ``address.city``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.account_schemas import AccountVerifyPublic, Body, Public, TokensPublic, id_body, id_list_body
from shared.fields import (
    POSTAL_RE,
    check_date,
    check_email,
    check_media_ref,
    check_name,
    check_password,
    check_phone,
    check_text,
    is_blank,
    require_fields,
    with_required,
)
from shared.responses import Pagination
from shared.validation import parse_bool

WEBSITE_RE = re.compile(r"^https?://.+\..+")
GENDERS = ("male", "female", "other")
BUSINESS_TYPES = ("individual", "partnership", "llc", "corporation", "other")
DEFAULT_BUSINESS_TYPE = "individual"
MAX_CATEGORIES = 50
MAX_EMPLOYEE_COUNT = 10_000_000

BusinessType = Literal["individual", "partnership", "llc", "corporation", "other"]
Gender = Literal["male", "female", "other"]


def check_gender(value: Any) -> str | None:
    if is_blank(value):
        return None
    if value not in GENDERS:
        raise ValueError("Gender must be male, female or other")
    return value


def check_business_type(value: Any) -> str:
    if is_blank(value):
        return DEFAULT_BUSINESS_TYPE
    if value not in BUSINESS_TYPES:
        raise ValueError(f"Business type must be one of {', '.join(BUSINESS_TYPES)}")
    return value


def check_website(value: Any) -> str | None:
    value = check_text(value, "Website", max_len=200)
    if value is not None and not WEBSITE_RE.match(value):
        raise ValueError("Please provide a valid website URL")
    return value


def check_categories(value: Any) -> list[str]:
    if is_blank(value):
        return []
    if not isinstance(value, list):
        raise ValueError("Categories must be an array")
    if len(value) > MAX_CATEGORIES:
        raise ValueError(f"Categories cannot contain more than {MAX_CATEGORIES} items")
    result = []
    for item in value:
        if not isinstance(item, str) or not (1 <= len(item.strip()) <= 100):
            raise ValueError("Each category must be 1 to 100 characters")
        result.append(item.strip())
    return result


def check_employee_count(value: Any) -> int | None:
    """An integer ≥ 1 (``"5"`` accepted) up to :data:`MAX_EMPLOYEE_COUNT`; any size of
    input is refused with a 400, never converted to a float that overflows."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("Employee count must be an integer")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:  # far past the maximum whatever it spells; never parsed
            raise ValueError(f"Employee count cannot exceed {MAX_EMPLOYEE_COUNT}")
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValueError("Employee count must be an integer") from None
    if isinstance(value, float):
        if value != value or not value.is_integer():
            raise ValueError("Employee count must be an integer")
        if abs(value) > MAX_EMPLOYEE_COUNT:
            raise ValueError(f"Employee count cannot exceed {MAX_EMPLOYEE_COUNT}")
        value = int(value)
    if not isinstance(value, int):
        raise ValueError("Employee count must be an integer")
    if value < 1:
        raise ValueError("Employee count must be at least 1")
    if value > MAX_EMPLOYEE_COUNT:
        raise ValueError(f"Employee count cannot exceed {MAX_EMPLOYEE_COUNT}")
    return value


def _validator(*fields: str, rule: Callable[[Any], Any]) -> Any:
    return field_validator(*fields, mode="before")(lambda v: rule(v))


# Address


class AddressIn(Body):
    street: str = Field(max_length=100)
    street2: str | None = Field(default=None, max_length=100)
    city: str = Field(max_length=50)
    state: str = Field(max_length=50)
    country: str = Field(max_length=50)
    postalCode: str = Field(min_length=3, max_length=10)

    _require = require_fields("street", "city", "state", "country", "postalCode")

    _street = _validator("street", rule=lambda v: check_text(v, "Street address", max_len=100, required=True))
    _street2 = _validator("street2", rule=lambda v: check_text(v, "Street address 2", max_len=100))
    _city = _validator("city", rule=lambda v: check_text(v, "City", max_len=50, required=True))
    _state = _validator("state", rule=lambda v: check_text(v, "State", max_len=50, required=True))
    _country = _validator("country", rule=lambda v: check_text(v, "Country", max_len=50, required=True))

    @field_validator("postalCode", mode="before")
    @classmethod
    def _postal(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        value = check_text(value, "Postal code", max_len=10_000, required=True)
        if not POSTAL_RE.match(value or ""):
            raise ValueError("Please provide a valid postal code")
        return value  # type: ignore[return-value]


def _address_input(value: Any, *, required: bool) -> Any:
    if is_blank(value):
        if required:
            raise ValueError("Address is required")
        return None
    if not isinstance(value, dict):
        raise ValueError("Address must be an object")
    return value


def _business_object(value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise ValueError("Business must be an object")
    return value


def merge_business(data: Any, *, description_field: str, extra_fields: tuple[str, ...] = ()) -> Any:
    """Copy the fields of a nested ``business`` object over the flat ones (nested wins).

    ``description_field`` is the flat name of the description (``businessDescription`` at
    signup and create, ``description`` on update); both spellings are read from either level.
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    other = "businessDescription" if description_field == "description" else "description"
    if description_field not in data and other in data:
        data[description_field] = data[other]
    nested = data.get("business")
    if isinstance(nested, dict):
        for key in ("businessName", "businessType", "address", *extra_fields):
            if key in nested:
                data[key] = nested[key]
        for key in ("description", "businessDescription"):
            if key in nested:
                data[description_field] = nested[key]
                break
    return data


# Accounts


class NewSellerIn(Body):
    """The admin create body (4.10): account required, business only when named."""

    BUSINESS_REQUIRED: ClassVar[bool] = False
    REQUIRED: ClassVar[tuple[str, ...]] = ("firstName", "lastName", "email", "password", "phone")

    firstName: str = Field(min_length=2, max_length=50)
    lastName: str = Field(min_length=2, max_length=50)
    email: str = Field(max_length=254)
    password: str = Field(min_length=6, max_length=50)
    phone: str
    businessName: str | None = Field(default=None, max_length=100)
    businessType: BusinessType | None = None
    businessDescription: str | None = Field(default=None, max_length=500)
    address: AddressIn | None = None
    business: dict[str, Any] | None = Field(default=None, description="The business fields, nested (wins over flat)")

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any) -> Any:
        return with_required(merge_business(data, description_field="businessDescription"), cls.REQUIRED)

    _first = _validator("firstName", rule=lambda v: check_name(v, "First name"))
    _last = _validator("lastName", rule=lambda v: check_name(v, "Last name"))
    _email = _validator("email", rule=check_email)
    _password = _validator("password", rule=check_password)
    _phone = _validator("phone", rule=lambda v: check_phone(v, required=True))
    _type = _validator("businessType", rule=check_business_type)
    _description = _validator("businessDescription", rule=lambda v: check_text(v, "Business description", max_len=500))
    _business = _validator("business", rule=_business_object)

    @field_validator("businessName", mode="before")
    @classmethod
    def _business_name(cls, value: Any) -> str | None:
        return check_text(value, "Business name", max_len=100, required=cls.BUSINESS_REQUIRED)

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        return _address_input(value, required=cls.BUSINESS_REQUIRED)


class SignupIn(NewSellerIn):
    """The signup body (4.1): account and business together, ``confirmPassword`` required."""

    BUSINESS_REQUIRED: ClassVar[bool] = True
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "firstName", "lastName", "email", "password", "confirmPassword", "phone", "businessName", "address",
    )  # fmt: skip

    businessName: str = Field(max_length=100)
    address: AddressIn
    confirmPassword: str

    @field_validator("confirmPassword", mode="before")
    @classmethod
    def _confirm(cls, value: Any) -> str:
        if value is None or value == "":
            raise ValueError("Confirm password is required")
        if not isinstance(value, str):
            raise ValueError("Confirm password must be a string")
        return value


# Profile

PERSONAL_FIELDS = ("firstName", "lastName", "phone", "profileImage", "dateOfBirth", "gender")
BUSINESS_FIELDS = (
    "businessName", "businessType", "description", "logoMediaId", "website", "industry", "categories",
    "establishedDate", "employeeCount", "address",
)  # fmt: skip


class ProfileUpdateIn(Body):
    """Everything optional; only the fields present in the body are written."""

    firstName: str | None = Field(default=None, min_length=2, max_length=50)
    lastName: str | None = Field(default=None, min_length=2, max_length=50)
    phone: str | None = None
    profileImage: str | None = Field(default=None, max_length=500)
    dateOfBirth: str | None = None
    gender: Gender | None = None
    businessName: str | None = Field(default=None, max_length=100)
    businessType: BusinessType | None = None
    description: str | None = Field(default=None, max_length=1000)
    logoMediaId: str | None = Field(default=None, max_length=500)
    website: str | None = Field(default=None, max_length=200)
    industry: str | None = Field(default=None, max_length=100)
    categories: list[str] | None = Field(default=None, max_length=MAX_CATEGORIES)
    establishedDate: str | None = None
    employeeCount: int | None = Field(default=None, ge=1, le=MAX_EMPLOYEE_COUNT)
    address: AddressIn | None = None
    business: dict[str, Any] | None = Field(default=None, description="The business fields, nested (wins over flat)")

    @model_validator(mode="before")
    @classmethod
    def _merge(cls, data: Any) -> Any:
        extra = ("logoMediaId", "website", "industry", "categories", "establishedDate", "employeeCount")
        return merge_business(data, description_field="description", extra_fields=extra)

    _first = _validator("firstName", rule=lambda v: check_name(v, "First name"))
    _last = _validator("lastName", rule=lambda v: check_name(v, "Last name"))
    _phone = _validator("phone", rule=lambda v: check_phone(v, required=True))
    _image = _validator("profileImage", rule=lambda v: check_media_ref(v, "Profile image"))
    _dob = _validator("dateOfBirth", rule=lambda v: check_date(v, "Date of birth", not_future=True))
    _gender = _validator("gender", rule=check_gender)
    _name = _validator("businessName", rule=lambda v: check_text(v, "Business name", max_len=100, required=True))
    _type = _validator("businessType", rule=check_business_type)
    _description = _validator("description", rule=lambda v: check_text(v, "Business description", max_len=1000))
    _logo = _validator("logoMediaId", rule=lambda v: check_media_ref(v, "Logo"))
    _website = _validator("website", rule=check_website)
    _industry = _validator("industry", rule=lambda v: check_text(v, "Industry", max_len=100))
    _categories = _validator("categories", rule=check_categories)
    _established = _validator("establishedDate", rule=lambda v: check_date(v, "Established date"))
    _employees = _validator("employeeCount", rule=check_employee_count)
    _address = _validator("address", rule=lambda v: _address_input(v, required=False))
    _business = _validator("business", rule=_business_object)

    def sent(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The fields among ``names`` present in the body, with their validated values."""
        values: dict[str, Any] = {}
        for name in names:
            if name in self.model_fields_set:
                value = getattr(self, name)
                values[name] = value.model_dump() if isinstance(value, BaseModel) else value
        return values


# Admin


def _lax_bool(name: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> bool | None:
        if value is None:
            return None
        parsed = parse_bool(value)
        if parsed is None:
            raise ValueError(f"{name} must be a boolean")
        return parsed

    return convert


class StatusIn(Body):
    """``isActive`` and/or ``isVerified`` (booleans, ``"true"``/``"false"`` or 1/0)."""

    isActive: bool | None = None
    isVerified: bool | None = None

    _active = _validator("isActive", rule=_lax_bool("isActive"))
    _verified = _validator("isVerified", rule=_lax_bool("isVerified"))


SellerIdIn = id_body("sellerId")
SellerIdsIn = id_list_body("sellerIds")


# Answers (contract §2.4, 4.13, 4.15)


class AddressPublic(Public):
    street: str | None
    street2: str | None
    city: str | None
    state: str | None
    country: str | None
    postalCode: str | None


class _SellerIdentity(Public):
    """The fields every seller answer starts with (``sellers.views._identity``)."""

    id: str
    firstName: str | None
    lastName: str | None
    fullName: str
    email: str | None
    phone: str | None
    businessName: str | None
    businessType: str | None


class SellerPublic(_SellerIdentity):
    businessDescription: str | None
    address: AddressPublic | None
    profileImage: str | None
    dateOfBirth: str | None
    gender: str | None
    role: str
    isActive: bool
    isVerified: bool
    rating: float
    totalSales: int
    totalProducts: int
    lastLogin: str | None
    createdAt: str | None
    updatedAt: str | None


class BusinessPublic(Public):
    id: str
    sellerId: str
    businessName: str | None
    businessType: str | None
    description: str | None
    email: str | None
    phone: str | None
    website: str | None
    industry: str | None
    categories: list[str]
    establishedDate: str | None
    employeeCount: int | None
    logoMediaId: str | None
    address: AddressPublic | None
    verificationStatus: str
    verifiedAt: str | None
    isActive: bool
    createdAt: str | None
    updatedAt: str | None


class ProfilePublic(Public):
    seller: SellerPublic
    business: BusinessPublic | None


class SellerAuthPublic(ProfilePublic, TokensPublic):
    """Signup and signin: the profile and a token pair (signin adds ``role: "seller"``)."""

    role: str | None = None


class AdminSellerPublic(SellerPublic):
    loginAttempts: int
    lockUntil: str | None
    deactivatedAt: str | None


class AdminDetailsPublic(Public):
    seller: AdminSellerPublic
    business: BusinessPublic | None


class SellerStatusPublic(SellerPublic):
    productsSynced: bool | None = None
    """Present only when ``isActive`` was sent."""


class SellerListPublic(Public):
    sellers: list[SellerPublic]
    pagination: Pagination


class SellerVerifyPublic(AccountVerifyPublic):
    sellerId: str
    businessName: str | None


class BulkBusinessPublic(Public):
    businessName: str | None
    businessType: str | None
    address: AddressPublic | None


class SellerBasicPublic(_SellerIdentity):
    id_: str = Field(alias="_id")
    logo: str | None
    business: BulkBusinessPublic | None
    isVerified: bool
    createdAt: str | None
