"""`make bench BENCH_ARGS="--only ..."` re-measures some scenarios without losing the day's others."""

from __future__ import annotations

from typing import Any

from bench.runner import merge_rerun


def _row(scenario: str, rate: float, notes: list[str] | None = None) -> dict[str, Any]:
    return {"scenario": scenario, "title": scenario, "settings": "", "result": {"rps": rate},
            "notes": notes or []}  # fmt: skip


def test_a_rerun_replaces_its_rows_and_keeps_the_others() -> None:
    earlier: dict[str, Any] = {
        "tasks": 100_000,
        "commit": "aaaaaaa",
        "finished_at": "2026-12-02T15:09:19+00:00",
        "rows": [_row("get_task", 500.0), _row("soak", 230.0, ["old note"])],
    }
    rerun: dict[str, Any] = {
        "tasks": 100_000,
        "commit": "bbbbbbb",
        "finished_at": "2026-12-02T15:40:00+00:00",
        "rows": [_row("soak", 229.0, ["slope note"])],
    }
    merged = merge_rerun(earlier, rerun)
    assert merged["commit"] == "aaaaaaa"  # the day's run is still the earlier one's
    assert [r["scenario"] for r in merged["rows"]] == ["get_task", "soak"]
    assert merged["rows"][0] == earlier["rows"][0]
    soak = merged["rows"][1]
    assert soak["result"] == {"rps": 229.0}
    assert soak["notes"] == [
        "slope note",
        "re-measured alone at 2026-12-02T15:40:00+00:00 (commit bbbbbbb)",
    ]
    assert earlier["rows"][1]["notes"] == ["old note"]  # the inputs are not changed
