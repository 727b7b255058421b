"""Request bodies of the customer service, with the contract's validation messages.

Unknown fields are ignored. For optional strings ``""`` means absent on create and
"clear" on update; models keep ``model_fields_set`` so updates know what was sent.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from shared.account_schemas import AccountVerifyPublic, Body, Public, TokensPublic, id_body, id_list_body
from shared.fields import (
    PHONE_RE,
    POSTAL_RE,
    Blankable,
    LaxBool,
    check_date,
    check_email,
    check_media_ref,
    check_name,
    check_password,
    check_phone,
    lax_bool,
    require_fields,
)
from shared.responses import Pagination

GENDERS = ("male", "female", "other", "prefer_not_to_say")
ADDRESS_TYPES = ("home", "work", "other")
ADDRESS_ALIASES = (("street", "addressLine1"), ("street2", "addressLine2"), ("phone", "contactPhone"))


def check_birth_date(value: Any) -> str | None:
    return check_date(value, "Date of birth", not_future=True)


def check_gender(value: str | None) -> str | None:
    if value is not None and value not in GENDERS:
        raise ValueError("Gender must be male, female, other or prefer_not_to_say")
    return value


OptionalText = Annotated[str | None, Blankable]


class RegisterIn(Body):
    firstName: str = Field(min_length=2, max_length=50)
    lastName: str = Field(min_length=2, max_length=50)
    email: str = Field(max_length=254)
    password: str = Field(min_length=6, max_length=50)
    confirmPassword: str | None = None
    phone: OptionalText = None
    dateOfBirth: OptionalText = None
    gender: OptionalText = None

    _first = field_validator("firstName", mode="before")(lambda v: check_name(v, "First name"))
    _last = field_validator("lastName", mode="before")(lambda v: check_name(v, "Last name"))
    _email = field_validator("email", mode="before")(check_email)
    _password = field_validator("password", mode="before")(check_password)
    _phone = field_validator("phone")(check_phone)
    _dob = field_validator("dateOfBirth")(check_birth_date)
    _gender = field_validator("gender")(check_gender)
    _require = require_fields("firstName", "lastName", "email", "password")


class DeactivateIn(Body):
    password: str = Field(min_length=1)
    reason: OptionalText = Field(default=None, max_length=500)


class PreferencesIn(Body):
    newsletter: Annotated[bool | None, lax_bool("newsletter must be a boolean")] = None
    smsNotifications: Annotated[bool | None, lax_bool("smsNotifications must be a boolean")] = None
    language: str | None = Field(default=None, min_length=2, max_length=10)
    currency: str | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError("Currency must be a 3-letter code")
        return value.upper() if value else value


class ProfileUpdateIn(Body):
    firstName: str | None = Field(default=None, min_length=2, max_length=50)
    lastName: str | None = Field(default=None, min_length=2, max_length=50)
    phone: OptionalText = None
    dateOfBirth: OptionalText = None
    gender: OptionalText = None
    profileImage: OptionalText = Field(default=None, max_length=500)
    preferences: PreferencesIn | None = None

    _first = field_validator("firstName", mode="before")(lambda value: check_name(value, "First name"))
    _last = field_validator("lastName", mode="before")(lambda value: check_name(value, "Last name"))
    _phone = field_validator("phone")(check_phone)
    _dob = field_validator("dateOfBirth")(check_birth_date)
    _gender = field_validator("gender")(check_gender)
    _image = field_validator("profileImage")(lambda v: check_media_ref(v, "Profile image"))


class AddressIn(Body):
    """Address fields; ``street``/``street2``/``phone`` are input aliases (canonical wins)."""

    type: OptionalText = None
    label: OptionalText = Field(default=None, max_length=50)
    addressLine1: OptionalText = None
    addressLine2: OptionalText = None
    city: OptionalText = None
    state: OptionalText = None
    country: OptionalText = None
    postalCode: OptionalText = None
    contactName: OptionalText = None
    contactPhone: OptionalText = None
    firstName: OptionalText = None
    lastName: OptionalText = None
    company: OptionalText = None
    landmark: OptionalText = None
    deliveryInstructions: OptionalText = None
    coordinates: Coordinates | None = None
    isDefault: Annotated[bool | None, lax_bool("isDefault must be a boolean")] = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for alias, canonical in ADDRESS_ALIASES:
                if alias in data and canonical not in data:
                    data[canonical] = data[alias]
        return data


class Coordinates(Body):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


AddressIn.model_rebuild()

ADDRESS_LIMITS = {
    "label": 50,
    "addressLine1": 100,
    "addressLine2": 100,
    "city": 50,
    "state": 50,
    "country": 50,
    "contactName": 100,
    "company": 100,
    "landmark": 100,
    "deliveryInstructions": 500,
    "firstName": 50,
    "lastName": 50,
}
ADDRESS_LABELS = {"addressLine1": "Address line 1", "addressLine2": "Address line 2", "postalCode": "Postal code"}
REQUIRED_ADDRESS_FIELDS = ("addressLine1", "city", "state", "country", "postalCode")


def address_field_errors(address: AddressIn, *, partial: bool = False) -> list[tuple[str, str]]:
    """Every rule of §2.2 broken by ``address`` as (field, message); ``partial`` for updates."""
    errors: list[tuple[str, str]] = []
    sent = address.model_fields_set
    for name in REQUIRED_ADDRESS_FIELDS:
        value = getattr(address, name)
        if value is None and (not partial or name in sent):
            label = ADDRESS_LABELS.get(name, name.capitalize())
            errors.append((name, f"{label} is required"))
    for name, limit in ADDRESS_LIMITS.items():
        value = getattr(address, name)
        if value is not None and len(value) > limit:
            label = ADDRESS_LABELS.get(name) or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).capitalize()
            errors.append((name, f"{label} cannot exceed {limit} characters"))
    if address.postalCode is not None and not POSTAL_RE.match(address.postalCode):
        errors.append(("postalCode", "Please provide a valid postal code"))
    if address.contactPhone is not None and not PHONE_RE.match(address.contactPhone.strip()):
        errors.append(("contactPhone", "Please provide a valid phone number"))
    if address.type is not None and address.type not in ADDRESS_TYPES:
        errors.append(("type", "Type must be home, work or other"))
    return errors


class AdminStatusIn(Body):
    isActive: LaxBool

    _require = require_fields("isActive")


class OrderStatsIn(Body):
    """``orderTotal`` (alias ``totalAmount``): a number, or a numeric string, 0–10,000,000."""

    orderTotal: float = Field(ge=0, le=10_000_000)
    orderId: str | None = Field(default=None, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if data.get("orderTotal") is None and "totalAmount" in data:
                data["orderTotal"] = data["totalAmount"]
            data.setdefault("orderTotal", None)
        return data

    @field_validator("orderTotal", mode="before")
    @classmethod
    def _total(cls, value: Any) -> float:
        if value is None or value == "" or isinstance(value, bool):
            raise ValueError("Order total is required")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("Order total must be a number") from None
        if not (0 <= number <= 10_000_000):
            raise ValueError("Order total must be between 0 and 10000000")
        return number


CustomerIdIn = id_body("customerId")
CustomerIdsIn = id_list_body("customerIds")


# Answers (contract §2.4)


class PreferencesPublic(Public):
    newsletter: bool
    smsNotifications: bool
    language: str
    currency: str


class CustomerPublic(Public):
    id: str
    firstName: str | None
    lastName: str | None
    email: str | None
    phone: str | None
    dateOfBirth: str | None
    gender: str | None
    profileImage: str | None
    preferences: PreferencesPublic
    isActive: bool
    isVerified: bool
    emailVerified: bool
    phoneVerified: bool
    totalOrders: int
    totalSpent: float
    loyaltyPoints: int
    lastLogin: str | None
    createdAt: str | None
    updatedAt: str | None


class CustomerAuthPublic(TokensPublic):
    customer: CustomerPublic


class CoordinatesPublic(Public):
    latitude: float
    longitude: float


class AddressPublic(Public):
    id: str
    customerId: str
    type: str
    label: str | None
    addressLine1: str | None
    addressLine2: str | None
    city: str | None
    state: str | None
    country: str | None
    postalCode: str | None
    contactName: str | None
    contactPhone: str | None
    firstName: str | None
    lastName: str | None
    company: str | None
    landmark: str | None
    deliveryInstructions: str | None
    coordinates: CoordinatesPublic | None
    isDefault: bool
    isActive: bool
    fullAddress: str
    street: str | None
    street2: str | None
    phone: str | None
    createdAt: str | None
    updatedAt: str | None


class AdminCustomerPublic(CustomerPublic):
    addresses: list[AddressPublic]
    deactivatedAt: str | None
    deactivationReason: str | None
    deletedAt: str | None


class CustomerListPublic(Public):
    customers: list[CustomerPublic]
    pagination: Pagination


class EmailVerifiedPublic(Public):
    email: str
    isVerified: bool
    emailVerified: bool


class CustomerVerifyPublic(AccountVerifyPublic):
    customerId: str
    firstName: str | None
    lastName: str | None
    email: str | None


class CustomerBasicPublic(Public):
    id: str
    id_: str = Field(alias="_id")
    firstName: str
    lastName: str
    fullName: str
    email: str
    phone: str | None
    avatar: str | None
    createdAt: str | None


class OrderStatsPublic(Public):
    customerId: str
    totalOrders: int
    totalSpent: float
    loyaltyPoints: int
    applied: bool
