"""What every hustle.v2 list shares (AIP-158): page sizes (0 → the default, above the maximum →
the maximum, negative → HX301) and signed page tokens bound to the list and its filters."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any, TypeVar

from server import pagination, validation
from server.api.enums import EnumMap

E = TypeVar("E", bound=Enum)

DEFAULT_PAGE, MAX_PAGE = 20, 100


def kind(name: str, filters: Iterable[Enum] = ()) -> str:
    """A page token's kind: which v2 list, with which filters (a token is valid for that only)."""
    chosen = sorted({member.value for member in filters})
    return f"v2:{name}:{','.join(chosen)}"


def page_size(
    check: validation.Checks, value: int, *, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE
) -> int:
    return check(validation.page_size, value, default=default, maximum=maximum, clamp=True)


def after(check: validation.Checks, secret: str, list_kind: str, token: str) -> list[Any] | None:
    """The keyset position a page token carries (None: the first page)."""
    return check(pagination.decode, secret, list_kind, token)


def filters(
    check: validation.Checks, values: Iterable[int], names: EnumMap[E, Any], field: str
) -> list[E]:
    """A repeated enum filter's domain values, each once; an unset or unknown value is HX301
    naming its place (`states[1]`)."""
    chosen: list[E] = []
    for i, value in enumerate(values):
        member = names.to_domain(value)
        if member is None:
            allowed = ", ".join(names.prefix + m.name for m in names.domain if m not in names.omit)
            check.fail(f"{field}[{i}]", f"must be one of {allowed}")
        elif member not in chosen:
            chosen.append(member)
    return chosen
