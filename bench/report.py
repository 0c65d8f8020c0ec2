"""bench/results/<date>.md from the day's summaries (every size measured that day)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.60
TARGET_P99_MS = 25.0
TARGET_NEARBY_RPS = 500
TARGET_GROWTH = 2.0
GROWTH_FROM, GROWTH_TO = 10_000, 1_000_000
# p50 by size for these; the target's verdict is on a load every size sustains (at a rate past
# capacity p50 is mostly time spent queued, not the query)
GROWTH_SCENARIOS = ("feed_nearby_light", "feed_normal", "feed_normal_cold", "feed_nearby")
GROWTH_TARGET = "feed_nearby_light"


def render(day: Path, output: Path) -> Path:
    echo = _load(day / "echo" / "summary.json")
    sizes = sorted(
        (json.loads(p.read_text()) for p in day.glob("*/summary.json") if p.parent.name.isdigit()),
        key=lambda s: s["tasks"],
    )
    ceiling = echo["rows"][0]["result"]["rps"] if echo else None
    lines = [f"# Benchmarks, {day.name}", "", *_setup(sizes), ""]
    if echo:
        lines += ["## Ceiling: bare grpc.aio echo, same process model and ghz settings", ""]
        lines += _table(echo["rows"], None)
    for size in sizes:
        lines += [
            "",
            f"## {size['tasks']:,} tasks, {size['users']:,} users "
            f"(commit {size['commit']}, {size['finished_at']})",
            "",
        ]
        lines += _table(size["rows"], ceiling)
        notes = [f"- {r['scenario']}: {n}" for r in size["rows"] for n in r.get("notes", [])]
        lines += ["", *notes] if notes else []
    lines += ["", "## Feed p50 by database size (ms)", "", *_growth(sizes)]
    lines += ["", "## Targets", "", *_targets(sizes, ceiling)]
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return output


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _setup(sizes: list[dict[str, Any]]) -> list[str]:
    plan = sizes[0]["plan"] if sizes else {}
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    return [
        f"Machine: {os.cpu_count()} cores ({model}), {memory:.0f} GiB, shared by the server, "
        "ghz, PostgreSQL and Redis.",
        "Server: `python -m server serve` with production settings (APP_ENV=prod, JSON logs, "
        "one process per core, Fly-Client-IP trusted), every interceptor and rate limit on. "
        "PostgreSQL is `make run`'s private cluster, which runs with fsync off: write figures are "
        "optimistic next to a durable disk.",
        f"ghz: {plan.get('concurrency')} concurrent calls over {plan.get('connections')} "
        f"connections; {plan.get('warmup')} s warm-up, then {plan.get('duration')} s measured "
        "unless a row says otherwise. Reproduce with `make bench` "
        '(`BENCH_TASKS="10000 100000 1000000"` for every size).',
    ]


def _ms(value: float) -> str:
    return f"{value:.1f}" if value == value else "-"  # NaN: ghz had no latencies


def _cpu(value: float) -> str:
    return f"{value:.2f}" if value == value else "-"


def _table(rows: list[dict[str, Any]], ceiling: float | None) -> list[str]:
    head = (
        "| scenario | load | req/s | of echo | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU ms/call | ghz CPU ms/call |"
    )
    out = [head, "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for row in rows:
        r = row["result"]
        ratio = f"{100 * r['rps'] / ceiling:.0f} %" if ceiling else "-"
        bad = {code: n for code, n in r["statuses"].items() if code != "OK"}
        errors = "0" if not bad else ", ".join(f"{n} {code}" for code, n in bad.items())
        out.append(
            f"| {row['title']} | {row['settings']} | {r['rps']:,.0f} | {ratio} | "
            f"{_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | {_ms(r['p99_ms'])} | {errors} | "
            f"{_cpu(r.get('server_cpu_ms', float('nan')))} | "
            f"{_cpu(r.get('ghz_cpu_ms', float('nan')))} |"
        )
    return out


def _find(size: dict[str, Any], scenario: str) -> dict[str, Any] | None:
    return next((r["result"] for r in size["rows"] if r["scenario"] == scenario), None)


def _growth(sizes: list[dict[str, Any]]) -> list[str]:
    if not sizes:
        return ["(no sizes measured)"]
    head = (
        "| scenario | " + " | ".join(f"{s['tasks']:,}" for s in sizes) + " | largest / smallest |"
    )
    out = [head, "|---|" + "---:|" * (len(sizes) + 1)]
    for scenario in GROWTH_SCENARIOS:
        p50s = [(_find(s, scenario) or {}).get("p50_ms", float("nan")) for s in sizes]
        ratio = p50s[-1] / p50s[0] if len(sizes) > 1 and p50s[0] else float("nan")
        grown = f"{ratio:.2f}x" if ratio == ratio else "-"  # NaN: one size, or no latencies
        out.append(f"| {scenario} | " + " | ".join(_ms(v) for v in p50s) + f" | {grown} |")
    return out


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**missed**")


def _targets(sizes: list[dict[str, Any]], ceiling: float | None) -> list[str]:
    out = ["| target | measured | verdict |", "|---|---|---|"]
    for size in sizes:
        label = f"{size['tasks']:,} tasks"
        top, half = _find(size, "feed_normal"), _find(size, "feed_normal_half")
        if top and ceiling:
            ratio = top["rps"] / ceiling
            out.append(
                f"| cached GetFeed ≥ {TARGET_RATIO:.0%} of echo ({label}) | "
                f"{top['rps']:,.0f} / {ceiling:,.0f} req/s = {ratio:.0%} | "
                f"{_verdict(ratio >= TARGET_RATIO)} |"
            )
        if half:
            out.append(
                f"| cached GetFeed p99 ≤ {TARGET_P99_MS:g} ms at half load ({label}) | "
                f"{_ms(half['p99_ms'])} ms at {half['rps']:,.0f} req/s | "
                f"{_verdict(half['p99_ms'] <= TARGET_P99_MS)} |"
            )
        nearby = _find(size, "feed_nearby")
        if nearby:
            held = nearby["rps"] >= TARGET_NEARBY_RPS * 0.98
            ok = held and nearby["p99_ms"] <= TARGET_P99_MS
            scope = "" if size["tasks"] == GROWTH_TO else "; the target is on 1M"
            out.append(
                f"| uncached NEARBY p99 ≤ {TARGET_P99_MS:g} ms at {TARGET_NEARBY_RPS} "
                f"req/s ({label}{scope}) | {_ms(nearby['p99_ms'])} ms at "
                f"{nearby['rps']:,.0f} req/s | {_verdict(ok)} |"
            )
        errors = sum(
            sum(n for code, n in r["result"]["statuses"].items() if code != "OK")
            for r in size["rows"]
        )
        out.append(
            f"| zero errors in every scenario ({label}) | {errors} | {_verdict(errors == 0)} |"
        )
    small = next((s for s in sizes if s["tasks"] == GROWTH_FROM), None)
    large = next((s for s in sizes if s["tasks"] == GROWTH_TO), None)
    a = _find(small, GROWTH_TARGET) if small else None
    b = _find(large, GROWTH_TARGET) if large else None
    label = f"{GROWTH_TARGET} p50 grows < {TARGET_GROWTH:g}x from 10k to 1M"
    if a and b:
        growth = b["p50_ms"] / a["p50_ms"]
        out.append(
            f"| {label} | {_ms(a['p50_ms'])} → {_ms(b['p50_ms'])} ms = {growth:.2f}x | "
            f"{_verdict(growth < TARGET_GROWTH)} |"
        )
    else:
        out.append(f"| {label} | needs both sizes the same day | not measured |")
    return out
