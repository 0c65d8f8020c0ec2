"""`buf breaking` against the committed baseline bites: on a deliberately broken copy of the
protos it fails (exit 100, naming the break), through `make breaking` too (which `make lint`
runs), and on the real protos and on a compatible change it passes. The baseline is the
contract of the protos as they are (both versions, no comments)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"
BASELINE = ROOT / "protos" / "released.binpb"
BREAKING = 100  # buf's exit code for "breaking changes found"


@pytest.fixture(scope="module", autouse=True)
def _buf() -> None:
    assert BUF.exists(), f"{BUF} is missing: run `npm ci` (make test does)"


def copy_of_repo(tmp_path: Path) -> Path:
    """What `make breaking` reads: the Makefile, buf.yaml, protos/ (with the baseline)."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("Makefile", "buf.yaml"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(ROOT / "protos", copy / "protos")
    (copy / "node_modules").symlink_to(ROOT / "node_modules")
    return copy


def edit(copy: Path, proto: str, old: str, new: str) -> None:
    path = copy / "protos" / proto
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {proto}"
    path.write_text(text.replace(old, new))


def breaking(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), "breaking", "--against", str(BASELINE), "--error-format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_protos_do_not_break_the_released_contract() -> None:
    result = breaking(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_baseline_is_the_contract_of_these_protos(tmp_path: Path) -> None:
    """Every released change is recorded, so that nothing released can go unguarded: a change
    merged without `make baseline` (which refuses a break) would otherwise be free to undo."""
    built = tmp_path / "built.binpb"
    subprocess.run(
        [str(BUF), "build", "--exclude-source-info", "-o", str(built)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert built.read_bytes() == BASELINE.read_bytes(), (
        "protos/ changed the contract: record it with `make baseline` (docs/VERSIONING.md)"
    )


def test_the_baseline_holds_both_versions_without_comments() -> None:
    image = descriptor_pb2.FileDescriptorSet.FromString(BASELINE.read_bytes())
    packages = {f.package for f in image.file}
    assert {"hustle.v1", "hustle.v2"} <= packages
    # comments are left out: editing one never asks for a new baseline
    assert not any(f.HasField("source_code_info") for f in image.file)


BREAKS: dict[str, tuple[str, str, str, str]] = {
    # a field's type changed: int32 -> int64 (FIELD_SAME_TYPE)
    "type changed": (
        "hustle/v1/task.proto",
        "  int32 xp_awarded = 2;",
        "  int64 xp_awarded = 2;",
        "FIELD_SAME_TYPE",
    ),
    # a field removed (FIELD_NO_DELETE)
    "field removed": (
        "hustle/v1/task.proto",
        "  // When it was accepted.\n  google.protobuf.Timestamp accepted_at = 18;\n",
        "",
        "FIELD_NO_DELETE",
    ),
    # an RPC's idempotency level changed (RPC_SAME_IDEMPOTENCY_LEVEL)
    "idempotency level": (
        "hustle/v1/feed.proto",
        "    option idempotency_level = NO_SIDE_EFFECTS;\n",
        "",
        "RPC_SAME_IDEMPOTENCY_LEVEL",
    ),
    # v2 is released too: an enum value renamed (ENUM_VALUE_SAME_NAME)
    "v2 enum value renamed": (
        "hustle/v2/task.proto",
        "  PROOF_STATE_REJECTED = 3;",
        "  PROOF_STATE_DECLINED = 3;",
        "ENUM_VALUE_SAME_NAME",
    ),
}


@pytest.mark.parametrize("case", BREAKS, ids=list(BREAKS))
def test_buf_breaking_fails_on_a_broken_copy(tmp_path: Path, case: str) -> None:
    proto, old, new, rule = BREAKS[case]
    copy = copy_of_repo(tmp_path)
    edit(copy, proto, old, new)
    result = breaking(copy)
    assert result.returncode == BREAKING, result.stdout + result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(f["path"], f["type"]) for f in found] == [(f"protos/{proto}", rule)]


def test_make_lint_fails_on_a_broken_copy(tmp_path: Path) -> None:
    """The target `make lint` runs: a break stops it, with buf's exit status."""
    copy = copy_of_repo(tmp_path)
    edit(copy, "hustle/v1/user.proto", "  int64 xp_total = 9;", "  string xp_total = 9;")
    result = subprocess.run(
        # -o: node_modules is linked in, never reinstalled here
        ["make", "--no-print-directory", "-o", "node_modules/.bin/buf", "breaking"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "hustle/v1/user.proto" in result.stdout
    assert re.search(r'Field "9" with name "xp_total" on message "Me" changed type', result.stdout)
    assert f"Error {BREAKING}" in result.stderr


COMPATIBLE: dict[str, Callable[[Path], None]] = {
    "a new field": lambda copy: edit(
        copy,
        "hustle/v1/task.proto",
        "  bool eligible = 21;\n}",
        "  bool eligible = 21;\n  // New.\n  string cancel_reason = 22;\n}",
    ),
    "a new option": lambda copy: edit(
        copy,
        "hustle/v1/feed.proto",
        '    option (hustle.v1.errors) = "HX301";\n',
        '    option (hustle.v1.errors) = "HX301";\n    option (hustle.v1.errors) = "HX302";\n',
    ),
    "a comment": lambda copy: edit(
        copy, "hustle/v2/task.proto", "// A proof of work.", "// A proof of work, reworded."
    ),
}


@pytest.mark.parametrize("case", COMPATIBLE, ids=list(COMPATIBLE))
def test_buf_breaking_passes_a_compatible_change(tmp_path: Path, case: str) -> None:
    copy = copy_of_repo(tmp_path)
    COMPATIBLE[case](copy)
    result = breaking(copy)
    assert result.returncode == 0, result.stdout + result.stderr
