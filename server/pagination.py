"""Opaque, tamper-proof page tokens for keyset pagination.

A token carries the keyset position of the last item of a page (and what it is a page of); it
is signed with SECRET_KEY, so a client can pass it back but not forge or edit it (HX301).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server import security
from server.errors import invalid


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
