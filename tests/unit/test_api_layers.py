"""The layers keep to themselves: a v2 servicer imports nothing of v1 and no interceptor (v1 can
be removed without touching v2), and the domain never sees protobuf or the API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def offending(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    paths = sorted((ROOT / folder).glob("*.py"))
    assert paths, folder
    bad = {}
    for path in paths:
        names = sorted(n for n in imports(path) if n.startswith(forbidden))
        if names:
            bad[path.name] = names
    return bad


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("server/api/v2", ("server.api.v1", "hustle.v1", "server.interceptors")),
        ("server/api/v1", ("server.api.v2", "hustle.v2", "server.interceptors")),
        (
            "server/domain",
            ("hustle", "google.protobuf", "grpc", "server.api", "server.interceptors"),
        ),
    ],
)
def test_a_layer_imports_only_what_it_may(folder: str, forbidden: tuple[str, ...]) -> None:
    assert offending(folder, forbidden) == {}


def test_the_check_bites() -> None:
    found = offending("server/api/v1", ("hustle.v1",))
    assert "tasks.py" in found
    assert "hustle.v1.task_pb2" in found["tasks.py"]
