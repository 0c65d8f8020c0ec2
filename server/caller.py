"""Who is calling: set by the auth interceptor for the length of one call."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from server.errors import HxError


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    session_id: str
    is_admin: bool
    token_hash: bytes
    # the account's standing is ACTIVE; a suspended or banned account's session (a suspension
    # revokes them all: only one that raced it) may read but not mutate (HX405)
    active: bool = True


_current: ContextVar[Caller | None] = ContextVar("hustle_caller", default=None)


def bind(caller: Caller | None) -> None:
    _current.set(caller)


def optional() -> Caller | None:
    return _current.get()


def current() -> Caller:
    """The signed-in caller (procedures that need one are guarded by the interceptor too)."""
    caller = _current.get()
    if caller is None:
        raise HxError("HX401")
    return caller
