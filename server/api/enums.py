"""Domain enums ⇄ protobuf enums, by name: `TaskState.OPEN` ⇄ `TASK_STATE_OPEN`.

Each API version declares one `EnumMap` per pair it converts (server/api/v1/convert.py); the
mapping is built from the names once, at import, and a missing name fails there. Every map is
registered so that a test can prove both directions complete (tests/unit/test_enums.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

E = TypeVar("E", bound=Enum)
V = TypeVar("V", bound=int)

_MAPS: list[EnumMap[Enum, int]] = []


def _prefix(proto_name: str) -> str:
    """'TaskState' -> 'TASK_STATE_' (buf's ENUM_VALUE_PREFIX rule)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", proto_name).upper() + "_"


class EnumMap(Generic[E, V]):
    """One domain enum and one protobuf enum. `omit`: domain values this version does not show
    (a newer contract may add them); converting one is a programming error (ValueError)."""

    def __init__(
        self, domain: type[E], proto: _EnumTypeWrapper[V], *, omit: Iterable[E] = ()
    ) -> None:
        self.domain = domain
        self.proto = proto
        self.omit = frozenset(omit)
        self.prefix = _prefix(proto.DESCRIPTOR.name)
        self._to_proto: dict[E, V] = {
            member: proto.Value(self.prefix + member.name)
            for member in domain
            if member not in self.omit
        }
        self._to_domain: dict[int, E] = {
            number: member for member, number in self._to_proto.items()
        }
        _MAPS.append(self)  # type: ignore[arg-type]

    def to_proto(self, member: E) -> V:
        try:
            return self._to_proto[member]
        except KeyError:
            raise ValueError(
                f"{member!r} has no value in {self.proto.DESCRIPTOR.full_name}"
            ) from None

    def to_domain(self, number: int) -> E | None:
        """The domain member of a protobuf value; None for UNSPECIFIED or an unknown number."""
        return self._to_domain.get(number)

    def __repr__(self) -> str:
        return f"EnumMap({self.domain.__name__}, {self.proto.DESCRIPTOR.full_name})"


def maps() -> tuple[EnumMap[Enum, int], ...]:
    """Every map declared so far (import the API modules first)."""
    return tuple(_MAPS)
