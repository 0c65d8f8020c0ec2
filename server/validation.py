"""Input checks that answer INVALID_ARGUMENT (HX301) naming the offending field.

Shared by every API version's servicers: each takes plain values (or anything with the fields
it reads), never a particular version's messages.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

from server.errors import invalid

_CATEGORY = re.compile(r"^[A-Z][A-Z_]{1,39}$")
_TRADE = re.compile(r"^[a-z][a-z_]{1,39}$")

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_STATE = re.compile(r"^[A-Z]{2}$")
# The most common passwords that pass the length rule (from public breach lists).
_COMMON = frozenset({
    "password123", "password1234", "1234567890", "qwertyuiop", "iloveyou12", "passw0rd123",
    "1q2w3e4r5t", "qwerty1234", "abc1234567", "password12", "letmein123", "welcome123",
    "admin12345", "1qaz2wsx3edc", "qwerty123456", "football12", "baseball12", "sunshine12",
    "princess12", "dragon1234", "monkey1234", "0987654321", "1234qwer", "zaq12wsxcde",
})  # fmt: skip


def email(value: str, field: str = "email") -> str:
    normalized = value.strip().lower()
    if not normalized:
        raise invalid(field, "is required")
    if len(normalized) > 254 or not _EMAIL.match(normalized):
        raise invalid(field, "is not an email address")
    return normalized


def phone(value: str, field: str = "phone_number") -> str:
    number = value.strip().replace(" ", "").replace("-", "")
    if not _E164.match(number):
        raise invalid(field, "must be an E.164 number such as +14155550123")
    return number


def password(value: str, field: str = "password", *, email: str = "") -> str:
    if len(value) < 10:
        raise invalid(field, "must have at least 10 characters")
    if len(value) > 128:
        raise invalid(field, "must have at most 128 characters")
    if not any(c.isalpha() for c in value) or all(c.isalpha() for c in value):
        raise invalid(field, "must mix letters with digits or symbols")
    if value.lower() in _COMMON or len(set(value)) < 4:
        raise invalid(field, "is too common or too simple")
    local = email.partition("@")[0]
    if len(local) >= 4 and local in value.lower():
        raise invalid(field, "must not contain your email address")
    return value


def full_name(value: str, field: str = "full_name") -> str:
    name = " ".join(value.split())
    if not 1 <= len(name) <= 200:
        raise invalid(field, "must have 1 to 200 characters")
    return name


def state_code(value: str, field: str = "location_state") -> str:
    code = value.strip().upper()
    if not _STATE.match(code):
        raise invalid(field, "must be a two-letter state code such as CA")
    return code


def uuid_id(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid(field, "is not a valid id") from None


def page_size(value: int, *, default: int, maximum: int, field: str = "page_size") -> int:
    if value < 0 or value > maximum:
        raise invalid(field, f"must be between 0 and {maximum}")
    return value or default


def required(value: str, field: str) -> str:
    if not value.strip():
        raise invalid(field, "is required")
    return value.strip()


def text(value: str, field: str, *, low: int, high: int) -> str:
    """`value` without surrounding blanks, `low` to `high` characters long."""
    cleaned = value.strip()
    if not low <= len(cleaned) <= high:
        raise invalid(field, f"must have {low} to {high} characters")
    return cleaned


class LatLng(Protocol):
    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...


def point(value: LatLng, field: str = "location") -> tuple[float, float]:
    """(latitude, longitude) of a point on Earth."""
    if not -90 <= value.latitude <= 90:
        raise invalid(f"{field}.latitude", "must be between -90 and 90")
    if not -180 <= value.longitude <= 180:
        raise invalid(f"{field}.longitude", "must be between -180 and 180")
    return value.latitude, value.longitude


def deadline(value: datetime, field: str = "deadline") -> datetime:
    now = datetime.now(UTC)
    if not now + timedelta(minutes=10) <= value <= now + timedelta(days=90):
        raise invalid(field, "must be between 10 minutes and 90 days from now")
    return value


def category(value: str, field: str = "category") -> str:
    code = value.strip().upper()
    if not _CATEGORY.match(code):
        raise invalid(field, "must be an upper-case word such as PLUMBING")
    return code


def trade(value: str, field: str) -> str | None:
    """A trade such as `electrician` (lower case); None for an empty value."""
    name = value.strip() or None
    if name is not None and not _TRADE.match(name):
        raise invalid(field, "must be a lower-case trade such as electrician")
    return name
