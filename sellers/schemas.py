"""Request bodies of the sellers service, with the contract's validation messages.

Unknown fields are ignored. For optional fields ``""`` means absent on create and "clear"
on update; models keep ``model_fields_set`` so updates know what was sent. Business fields
come flat or nested under ``business`` (the nested value wins); errors always name the flat
field (``businessName``, ``address.city``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from shared.fields import (
    POSTAL_RE,
    check_date,
    check_email,
    check_login_password,
    check_media_ref,
    check_name,
    check_password,
    check_phone,
    check_text,
    is_blank,
    with_required,
)
from shared.validation import parse_bool

WEBSITE_RE = re.compile(r"^https?://.+\..+")
GENDERS = ("male", "female", "other")
BUSINESS_TYPES = ("individual", "partnership", "llc", "corporation", "other")
DEFAULT_BUSINESS_TYPE = "individual"
MAX_CATEGORIES = 50
MAX_EMPLOYEE_COUNT = 10_000_000


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


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
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueError("Employee count must be an integer")
    try:
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except ValueError:
        raise ValueError("Employee count must be an integer") from None
    if number != number or not number.is_integer():
        raise ValueError("Employee count must be an integer")
    if number < 1:
        raise ValueError("Employee count must be at least 1")
    if number > MAX_EMPLOYEE_COUNT:
        raise ValueError(f"Employee count cannot exceed {MAX_EMPLOYEE_COUNT}")
    return int(number)


def _validator(*fields: str, rule: Callable[[Any], Any]) -> Any:
    return field_validator(*fields, mode="before")(lambda v: rule(v))


# Address


class AddressIn(Body):
    street: Any = None
    street2: Any = None
    city: Any = None
    state: Any = None
    country: Any = None
    postalCode: Any = None

    @model_validator(mode="before")
    @classmethod
    def _require(cls, data: Any) -> Any:
        return with_required(data, ("street", "city", "state", "country", "postalCode"))

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

    firstName: Any = None
    lastName: Any = None
    email: Any = None
    password: Any = None
    phone: Any = None
    businessName: Any = None
    businessType: Any = None
    businessDescription: Any = None
    address: AddressIn | None = None
    business: Any = None

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

    confirmPassword: Any = None

    @field_validator("confirmPassword", mode="before")
    @classmethod
    def _confirm(cls, value: Any) -> str:
        if value is None or value == "":
            raise ValueError("Confirm password is required")
        if not isinstance(value, str):
            raise ValueError("Confirm password must be a string")
        return value


class LoginIn(Body):
    email: Any = None
    password: Any = None

    @model_validator(mode="before")
    @classmethod
    def _require(cls, data: Any) -> Any:
        return with_required(data, ("email", "password"))

    _email = _validator("email", rule=check_email)

    _password = _validator("password", rule=check_login_password)


class RefreshIn(Body):
    refreshToken: Any = None

    @model_validator(mode="before")
    @classmethod
    def _require(cls, data: Any) -> Any:
        return with_required(data, ("refreshToken",))

    @field_validator("refreshToken", mode="before")
    @classmethod
    def _token(cls, value: Any) -> str:
        if is_blank(value) or not isinstance(value, str):
            raise ValueError("Refresh token is required")
        return value.strip()


class EmailIn(Body):
    email: Any = None

    @model_validator(mode="before")
    @classmethod
    def _require(cls, data: Any) -> Any:
        return with_required(data, ("email",))

    _email = _validator("email", rule=check_email)


class ResetPasswordIn(Body):
    token: Any = None
    newPassword: Any = None
    confirmPassword: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if data.get("newPassword") in (None, "") and "password" in data:
                data["newPassword"] = data["password"]
        return with_required(data, ("token", "newPassword"))

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> str:
        if is_blank(value) or not isinstance(value, str):
            raise ValueError("Token is required")
        return value.strip()

    _new = _validator("newPassword", rule=lambda v: check_password(v, "New password"))


class ChangePasswordIn(Body):
    currentPassword: Any = None
    newPassword: Any = None
    confirmPassword: Any = None

    @model_validator(mode="before")
    @classmethod
    def _require(cls, data: Any) -> Any:
        return with_required(data, ("currentPassword", "newPassword", "confirmPassword"))

    @field_validator("currentPassword", "confirmPassword", mode="before")
    @classmethod
    def _present(cls, value: Any, info: Any) -> str:
        label = "Current password" if info.field_name == "currentPassword" else "Confirm password"
        if value is None or value == "":
            raise ValueError(f"{label} is required")
        if not isinstance(value, str):
            raise ValueError(f"{label} must be a string")
        return value

    _new = _validator("newPassword", rule=lambda v: check_password(v, "New password"))


# Profile

PERSONAL_FIELDS = ("firstName", "lastName", "phone", "profileImage", "dateOfBirth", "gender")
BUSINESS_FIELDS = (
    "businessName", "businessType", "description", "logoMediaId", "website", "industry", "categories",
    "establishedDate", "employeeCount", "address",
)  # fmt: skip


class ProfileUpdateIn(Body):
    """Everything optional; only the fields present in the body are written."""

    firstName: Any = None
    lastName: Any = None
    phone: Any = None
    profileImage: Any = None
    dateOfBirth: Any = None
    gender: Any = None
    businessName: Any = None
    businessType: Any = None
    description: Any = None
    logoMediaId: Any = None
    website: Any = None
    industry: Any = None
    categories: Any = None
    establishedDate: Any = None
    employeeCount: Any = None
    address: AddressIn | None = None
    business: Any = None

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
    isActive: Any = None
    isVerified: Any = None

    _active = _validator("isActive", rule=_lax_bool("isActive"))
    _verified = _validator("isVerified", rule=_lax_bool("isVerified"))
