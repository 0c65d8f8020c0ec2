"""Opaque, tamper-proof page tokens for keyset pagination.

A token carries the keyset position of the last item of a page (and what it is a page of); it
is signed with SECRET_KEY, so a client can pass it back but not forge or edit it (HX301).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from server import security
from server.errors import invalid


class Keyed(Protocol):
    """A record in a list ordered by (created_at, id)."""

    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


R = TypeVar("R")
K = TypeVar("K", bound=Keyed)


def encode(secret_key: str, kind: str, position: Sequence[Any]) -> str:
    return security.sign(secret_key, {"k": kind, "p": list(position)})


def decode(secret_key: str, kind: str, token: str, field: str = "page_token") -> list[Any] | None:
    """The position a token carries; None for the first page (no token)."""
    if not token:
        return None
    payload = security.unsign(secret_key, token)
    if payload is None or payload.get("k") != kind or not isinstance(payload.get("p"), list):
        raise invalid(field, "is not a page token of this list")
    position: list[Any] = payload["p"]
    return position


def keyset(record: Keyed) -> list[str]:
    """A record's position in a list ordered by (created_at, id)."""
    return [record.created_at.isoformat(), record.id]


def split(
    secret_key: str,
    kind: str,
    rows: Sequence[R],
    limit: int,
    position: Callable[[R], Sequence[Any]],
) -> tuple[list[R], str]:
    """Rows fetched as `limit` + 1 → the page, and the token of the next one ("" if none)."""
    page = list(rows[:limit])
    return page, encode(secret_key, kind, position(page[-1])) if len(rows) > limit else ""


def split_keyed(secret_key: str, kind: str, rows: Sequence[K], limit: int) -> tuple[list[K], str]:
    """`split` of a list ordered by (created_at, id)."""
    return split(secret_key, kind, rows, limit, keyset)
