"""bench/results/<date>.md from the day's summaries (every size measured that day)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

# Targets (issue 13: the feed at the speed of its index), at 100,000 tasks unless said.
TARGET_SIZE = 100_000
NEARBY_SERVER_CPU_MS = 1.5  # uncached NEARBY, server CPU per call
NEARBY_DB_CPU_MS = 2.0  # and PostgreSQL's
NEARBY_CEILING_SHARE = 0.60  # of the DB ceiling measured in the same run
CACHED_ECHO_FACTOR = 2.0  # cached GetFeed's server CPU per call, in echo's
LIGHT_P99_MS = 15.0  # NEARBY at 50 req/s, at 1,000,000 tasks
TARGET_GROWTH = 2.0
RSS_MIB = 150.0  # per server process after the sustained run
HALVED = ("get_task", "create_task", "accept_task")  # server CPU per call halved
GROWTH_FROM, GROWTH_TO = 10_000, 1_000_000
# p50 by size for these; the target's verdict is on a load every size sustains (at a rate past
# capacity p50 is mostly time spent queued, not the query)
GROWTH_SCENARIOS = ("feed_nearby_light", "feed_normal", "feed_normal_cold", "feed_nearby")
GROWTH_TARGET = "feed_nearby_light"
NOT_A_CALL = ("memory", "db_ceiling")  # rows that are not ghz runs of the server


def render(day: Path, output: Path, baseline: Path | None = None) -> Path:
    """The report of a day's run (`day`: its results folder). `baseline`: a results folder of
    the same command on the commit before a change, for the "halved" targets."""
    echo = _load(day / "echo" / "summary.json")
    sizes = _sizes(day)
    before = {s["tasks"]: s for s in _sizes(baseline)} if baseline else {}
    ceiling = echo["rows"][0]["result"] if echo else None
    lines = [f"# Benchmarks, {day.name}", "", *_setup(sizes), ""]
    if echo:
        lines += ["## Ceiling: bare grpc.aio echo, same process model and ghz settings", ""]
        lines += _table(echo["rows"], None, None)
    for size in sizes:
        lines += [
            "",
            f"## {size['tasks']:,} tasks, {size['users']:,} users "
            f"(commit {size['commit']}, {size['finished_at']})",
            "",
        ]
        lines += _table(size["rows"], ceiling, _find(size, "db_ceiling"))
        notes = [f"- {r['scenario']}: {n}" for r in size["rows"] for n in r.get("notes", [])]
        memory = _find(size, "memory")
        if memory:
            notes.append(
                "- memory after the run (RSS, MiB): "
                + ", ".join(f"{name} {mib:.0f}" for name, mib in memory["rss_mib"].items())
            )
        lines += ["", *notes] if notes else []
    lines += ["", "## Feed p50 by database size (ms)", "", *_growth(sizes)]
    lines += ["", "## Targets", "", *_targets(sizes, ceiling, before)]
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return output


def _sizes(day: Path | None) -> list[dict[str, Any]]:
    if day is None or not day.exists():
        return []
    return sorted(
        (json.loads(p.read_text()) for p in day.glob("*/summary.json") if p.parent.name.isdigit()),
        key=lambda s: s["tasks"],
    )


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
        "CPU per call: the CPU time of every server process (the supervisor included) and of "
        "every PostgreSQL process during the run, divided by its calls. DB ceiling: the NEARBY "
        "page statement alone at the NEARBY run's points, by pgbench (prepared, one client per "
        "ghz connection); *of ceiling* is a NEARBY row's rate as a share of it.",
    ]


def _ms(value: float) -> str:
    return f"{value:.1f}" if value == value else "-"  # NaN: ghz had no latencies


def _cpu(value: float) -> str:
    return f"{value:.2f}" if value == value else "-"


def _table(
    rows: list[dict[str, Any]], echo: dict[str, Any] | None, db: dict[str, Any] | None
) -> list[str]:
    head = (
        "| scenario | load | req/s | of echo | of DB ceiling | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU ms/call | PG CPU ms/call | ghz CPU ms/call |"
    )
    out = [head, "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for row in rows:
        if row["scenario"] == "memory":
            continue
        r = row["result"]
        ratio = f"{100 * r['rps'] / echo['rps']:.0f} %" if echo else "-"
        share = (
            f"{100 * r['rps'] / db['rps']:.0f} %"
            if db and row["scenario"].startswith("feed_nearby")
            else "-"
        )
        bad = {code: n for code, n in r["statuses"].items() if code != "OK"}
        errors = "0" if not bad else ", ".join(f"{n} {code}" for code, n in bad.items())
        out.append(
            f"| {row['title']} | {row['settings']} | {r['rps']:,.0f} | {ratio} | {share} | "
            f"{_ms(r['p50_ms'])} | {_ms(r['p95_ms'])} | {_ms(r['p99_ms'])} | {errors} | "
            f"{_cpu(r.get('server_cpu_ms', float('nan')))} | "
            f"{_cpu(r.get('db_cpu_ms', float('nan')))} | "
            f"{_cpu(r.get('ghz_cpu_ms', float('nan')))} |"
        )
    return out


def _find(size: dict[str, Any] | None, scenario: str) -> dict[str, Any] | None:
    if size is None:
        return None
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


def _targets(
    sizes: list[dict[str, Any]], echo: dict[str, Any] | None, before: dict[int, dict[str, Any]]
) -> list[str]:
    out = ["| target | measured | verdict |", "|---|---|---|"]
    main = next((s for s in sizes if s["tasks"] == TARGET_SIZE), None)
    nearby, db = _find(main, "feed_nearby"), _find(main, "db_ceiling")
    at = f"{TARGET_SIZE:,} tasks"
    if nearby:
        cpu, pg = nearby.get("server_cpu_ms", float("nan")), nearby.get("db_cpu_ms", float("nan"))
        out.append(
            f"| uncached NEARBY: server CPU ≤ {NEARBY_SERVER_CPU_MS:g} ms/call ({at}) | "
            f"{_cpu(cpu)} ms | {_verdict(cpu <= NEARBY_SERVER_CPU_MS)} |"
        )
        out.append(
            f"| uncached NEARBY: PostgreSQL CPU ≤ {NEARBY_DB_CPU_MS:g} ms/call ({at}) | "
            f"{_cpu(pg)} ms | {_verdict(pg <= NEARBY_DB_CPU_MS)} |"
        )
        if db:
            share = nearby["rps"] / db["rps"]
            out.append(
                f"| uncached NEARBY ≥ {NEARBY_CEILING_SHARE:.0%} of the DB ceiling ({at}) | "
                f"{nearby['rps']:,.0f} / {db['rps']:,.0f} pages/s = {share:.0%} | "
                f"{_verdict(share >= NEARBY_CEILING_SHARE)} |"
            )
    cached = _find(main, "feed_normal")
    if cached and echo:
        factor = cached["server_cpu_ms"] / echo["server_cpu_ms"]
        out.append(
            f"| cached GetFeed: server CPU ≤ {CACHED_ECHO_FACTOR:g}x the echo's ({at}) | "
            f"{_cpu(cached['server_cpu_ms'])} / {_cpu(echo['server_cpu_ms'])} ms = "
            f"{factor:.1f}x | {_verdict(factor <= CACHED_ECHO_FACTOR)} |"
        )
    large = next((s for s in sizes if s["tasks"] == GROWTH_TO), None)
    light = _find(large, GROWTH_TARGET)
    label = f"NEARBY at 50 req/s: p99 ≤ {LIGHT_P99_MS:g} ms ({GROWTH_TO:,} tasks)"
    if light:
        ok = light["p99_ms"] <= LIGHT_P99_MS
        out.append(f"| {label} | {_ms(light['p99_ms'])} ms | {_verdict(ok)} |")
    else:
        out.append(f"| {label} | needs the 1M size | not measured |")
    small = next((s for s in sizes if s["tasks"] == GROWTH_FROM), None)
    a, b = _find(small, GROWTH_TARGET), light
    label = f"{GROWTH_TARGET} p50 grows < {TARGET_GROWTH:g}x from 10k to 1M"
    if a and b:
        growth = b["p50_ms"] / a["p50_ms"]
        out.append(
            f"| {label} | {_ms(a['p50_ms'])} → {_ms(b['p50_ms'])} ms = {growth:.2f}x | "
            f"{_verdict(growth < TARGET_GROWTH)} |"
        )
    else:
        out.append(f"| {label} | needs both sizes the same day | not measured |")
    for size in sizes:
        sustained = next((r for r in size["rows"] if r["scenario"] == "feed_sustained"), None)
        if sustained and "rss_after_mib" in sustained["result"]:
            after = {k: v for k, v in sustained["result"]["rss_after_mib"].items()
                     if k != "supervisor"}  # fmt: skip
            first = sustained["result"]["rss_before_mib"]
            worst = max(after.values())
            grew = max(v - first.get(k, v) for k, v in after.items())
            out.append(
                f"| RSS per server process ≤ {RSS_MIB:g} MiB after the sustained run, flat "
                f"({size['tasks']:,} tasks) | at most {worst:.0f} MiB, grew ≤ {grew:.0f} MiB "
                f"over it | {_verdict(worst <= RSS_MIB)} |"
            )
    for size in sizes:
        soak = _find(size, "soak")
        if soak:
            bound = soak["bound_mib_per_hour"]
            serving = {k: v for k, v in soak["rss_slope_mib_per_hour"].items() if k != "supervisor"}
            worst = max(serving.values(), default=float("nan"))
            out.append(
                f"| Soak: RSS slope per server process ≤ {bound:g} MiB/h ({size['tasks']:,} "
                f"tasks) | at most {worst:+.1f} MiB/h | {_verdict(worst <= bound)} |"
            )
    for scenario in HALVED:
        now, then = _find(main, scenario), _find(before.get(TARGET_SIZE), scenario)
        label = f"{scenario}: server CPU per call halved ({at})"
        if now and then:
            ratio = now["server_cpu_ms"] / then["server_cpu_ms"]
            out.append(
                f"| {label} | {_cpu(then['server_cpu_ms'])} → {_cpu(now['server_cpu_ms'])} ms "
                f"= {ratio:.0%} | {_verdict(ratio <= 0.5)} |"
            )
        else:
            out.append(f"| {label} | needs a before run the same day | not measured |")
    for size in sizes:
        errors = sum(
            sum(n for code, n in r["result"]["statuses"].items() if code != "OK")
            for r in size["rows"]
            if r["scenario"] not in NOT_A_CALL
        )
        out.append(
            f"| zero errors in every scenario ({size['tasks']:,} tasks) | {errors} | "
            f"{_verdict(errors == 0)} |"
        )
    return out
