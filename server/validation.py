"""Input checks that answer INVALID_ARGUMENT (HX301) naming the offending field.

Shared by every API version's servicers: each takes plain values (or anything with the fields
it reads), never a particular version's messages. Each check raises at its first problem (what
hustle.v1 answers); `Checks` runs several and raises once, listing every invalid field (what
hustle.v2 answers):

    with validation.Checks() as check:
        title = check(validation.text, task.title, "task.title", low=1, high=255)
        price = check(price_cents, task.price, "task.price")
    # here every check passed (else the block raised one HX301 listing each invalid field)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from types import TracebackType
from typing import ParamSpec, Protocol, TypeVar, cast

from server.errors import HxError, Violation, invalid, invalid_fields

P = ParamSpec("P")
T = TypeVar("T")

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


def page_size(
    value: int, *, default: int, maximum: int, field: str = "page_size", clamp: bool = False
) -> int:
    """0 → `default`. Above `maximum`: refused, or (`clamp`, AIP-158 as hustle.v2 says) the
    maximum. Negative: refused."""
    if value < 0 or (value > maximum and not clamp):
        raise invalid(field, f"must be between 0 and {maximum}")
    return min(value, maximum) or default


def request_id(value: str, field: str = "request_id") -> str:
    """A retry's id (AIP-155): empty (no retry detection) or a UUID, kept as the client sent it
    (a retry sends the same text)."""
    if value:
        try:
            uuid.UUID(value)
        except ValueError:
            raise invalid(field, "must be a UUID (or empty: no retry detection)") from None
    return value


def update_paths(
    paths: Sequence[str],
    changeable: Sequence[str],
    set_in_resource: Iterable[str],
    *,
    field: str = "update_mask",
) -> frozenset[str]:
    """The fields an update changes, from its `google.protobuf.FieldMask` (AIP-134): the paths it
    names (`*`: every changeable field); an empty mask names the changeable fields that are set
    in the request's resource. A path that is not a changeable field is HX301, each one named."""
    if not paths:
        return frozenset(name for name in set_in_resource if name in changeable)
    unknown = [
        Violation(
            f"{field}.paths[{i}]", f"cannot change {path!r}; changeable: {', '.join(changeable)}"
        )
        for i, path in enumerate(paths)
        if path not in changeable and not (path == "*" and len(paths) == 1)
    ]
    if unknown:
        raise invalid_fields(unknown)
    return frozenset(changeable) if paths[0] == "*" else frozenset(paths)


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


class Moment(Protocol):
    """A protobuf Timestamp, or anything that converts to a datetime the same way."""

    def ToDatetime(self, tzinfo: tzinfo | None = None) -> datetime: ...


def moment(value: Moment, field: str) -> datetime:
    """A point in time (UTC); one outside years 1 to 9999, or with bad nanos, is HX301."""
    try:
        return value.ToDatetime(tzinfo=UTC)
    except ValueError:
        raise invalid(field, "is not a valid time") from None


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


class Checks:
    """Runs input checks and collects every HX301 they raise, to raise them once, together, as
    one error listing each invalid field (hustle.v2's BadRequest).

    `check(fn, *args)` returns what `fn` returns; when `fn` refuses its input, it returns None
    instead (typed as `fn`'s result: use the values only once the checks are over, after the
    `with` block or `raise_if_any()`). Leaving the `with` block raises if anything failed. Errors
    other than HX301 pass through at once.
    """

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def __call__(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except HxError as exc:
            if exc.code != "HX301" or not exc.violations:
                raise
            self.violations.extend(exc.violations)
            return cast(T, None)

    def fail(self, field: str, description: str) -> None:
        """Record an invalid field found by the caller's own test."""
        self.violations.append(Violation(field, description))

    def failed(self, field: str) -> bool:
        """Whether a check of `field` (or of a field inside it) failed already."""
        return any(v.field == field or v.field.startswith(f"{field}.") for v in self.violations)

    def raise_if_any(self) -> None:
        if self.violations:
            raise invalid_fields(self.violations)

    def __enter__(self) -> Checks:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.raise_if_any()
