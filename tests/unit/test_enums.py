"""Every domain enum value has a protobuf value in each API version that shows it, and back."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import server.api
from server.api.enums import EnumMap, maps


def _all_maps() -> list[EnumMap]:  # type: ignore[type-arg]
    for module in pkgutil.walk_packages(server.api.__path__, "server.api."):
        importlib.import_module(module.name)
    return list(maps())


def test_the_api_declares_its_enum_maps() -> None:
    assert len(_all_maps()) >= 10


@pytest.mark.parametrize("pair", _all_maps(), ids=repr)
def test_both_directions_are_complete(pair: EnumMap) -> None:  # type: ignore[type-arg]
    shown = [member for member in pair.domain if member not in pair.omit]
    assert shown, f"{pair} shows no value"
    for member in shown:
        number = pair.to_proto(member)
        assert pair.proto.Name(number) == pair.prefix + member.name
        assert pair.to_domain(number) is member
    for name, number in pair.proto.items():
        if name.endswith("_UNSPECIFIED"):
            assert pair.to_domain(number) is None
        else:
            member = pair.to_domain(number)
            assert member is not None, f"{pair}: {name} has no domain value"
            assert pair.prefix + member.name == name
    for member in pair.omit:
        with pytest.raises(ValueError, match="has no value"):
            pair.to_proto(member)
