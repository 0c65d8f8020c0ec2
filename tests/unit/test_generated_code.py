"""The committed `hustle/` package is exactly what `make protos` makes from protos/ now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "scripts/gen_protos.py", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    fresh, committed = tree(tmp_path / "hustle"), tree(ROOT / "hustle")
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, f"hustle/ is stale, run `make protos`: {stale}"
