"""Write the Grafana dashboards (ops/grafana/dashboards/*.json) from the panels listed here.

    python scripts/gen_dashboards.py

The JSON is what Grafana provisions (ops/grafana/provisioning/); this script is where they are
edited, so that every panel has the same shape and the layout needs no hand-placed gridPos.
tests/unit/test_ops.py fails when the JSON is not what this script writes, and checks that
every expression parses and names only metrics the code exports (or rules record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "ops" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources/
HUSTLE = 'grpc_service=~"hustle\\\\..+"'  # the API's own services (not health, reflection)


@dataclass
class Panel:
    title: str
    targets: list[tuple[str, str]]  # (expr, legend)
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    width: int = 12
    height: int = 8
    thresholds: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class Row:
    title: str


def ts(title: str, *targets: tuple[str, str], unit: str = "short", description: str = "") -> Panel:
    return Panel(title, list(targets), unit=unit, description=description)


def stat(
    title: str, expr: str, unit: str, thresholds: list[tuple[float, str]], description: str = ""
) -> Panel:
    return Panel(
        title,
        [(expr, "")],
        unit=unit,
        kind="stat",
        description=description,
        width=6,
        height=4,
        thresholds=thresholds,
    )


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in panel.thresholds]
    body: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": expr,
                "legendFormat": legend or "__auto",
                "range": True,
            }
            for i, (expr, legend) in enumerate(panel.targets)
        ],
    }
    if panel.kind == "timeseries":
        body["options"] = {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        body["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    return body


def dashboard(uid: str, title: str, description: str, items: list[Panel | Row]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    x = y = row_height = 0
    for number, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += row_height
            x = row_height = 0
            panels.append(
                {
                    "id": number,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                    "panels": [],
                }
            )
            y += 1
            continue
        if x + item.width > 24:
            y += row_height
            x = row_height = 0
        panels.append(_panel(item, number, x, y))
        x += item.width
        row_height = max(row_height, item.height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["hustle"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {"title": "Hustle", "type": "dashboards", "tags": ["hustle"], "asDropdown": True}
        ],
        "panels": panels,
    }


def _memory(role: str) -> list[Panel | Row]:
    return [
        Row(f"Memory of each {role} process"),
        ts(
            "Resident memory (RSS)",
            (f'process_rss_bytes{{role="{role}"}}', "{{instance}} pid {{pid}}"),
            unit="bytes",
        ),
        ts(
            "RSS growth per hour (1 h regression)",
            (
                f'pid:process_rss_bytes:growth_per_hour_1h{{role="{role}"}}',
                "{{instance}} pid {{pid}}",
            ),
            unit="bytes",
            description="HustleMemoryGrowing fires above 32 MiB/h for an hour.",
        ),
        ts(
            "C allocator in use (grpcio core, OpenSSL, big objects)",
            (f'process_malloc_bytes{{role="{role}"}}', "{{instance}} pid {{pid}}"),
            unit="bytes",
            description="Invisible to tracemalloc; see memray in docs/ARCHITECTURE.md.",
        ),
        ts(
            "Python allocator blocks",
            (f'python_heap_allocated_blocks{{role="{role}"}}', "{{instance}} pid {{pid}}"),
            description="Grows with live Python objects: a leak of objects shows here first.",
        ),
    ]


def api() -> dict[str, Any]:
    return dashboard(
        "hustle-api",
        "Hustle / API",
        "Calls, errors and latency by method; rate limits; health; server memory.",
        [
            stat(
                "Calls per second",
                f"sum(grpc_method:grpc_server_handled:rate5m{{{HUSTLE}}})",
                "reqps",
                [],
            ),
            stat(
                "Server error ratio",
                "max(job:grpc_server_error_ratio:rate5m)",
                "percentunit",
                [(0.01, "orange"), (0.05, "red")],
            ),
            stat(
                "p99 latency",
                "max(job:grpc_server_handling_seconds:p99_5m)",
                "s",
                [(0.5, "orange"), (1, "red")],
            ),
            stat(
                "Dependencies down",
                "count(min by (dependency) (dependency_up) == 0) or vector(0)",
                "short",
                [(1, "red")],
            ),
            Row("Calls"),
            ts(
                "Calls per second by method",
                (
                    f"sum by (grpc_service, grpc_method) "
                    f"(rate(grpc_server_handled_total{{{HUSTLE}}}[$__rate_interval]))",
                    "{{grpc_service}}/{{grpc_method}}",
                ),
                unit="reqps",
            ),
            ts(
                "Non-OK answers per second by code",
                (
                    'sum by (grpc_code) (rate(grpc_server_handled_total{grpc_code!="OK"}'
                    "[$__rate_interval]))",
                    "{{grpc_code}}",
                ),
                unit="reqps",
                description="Client mistakes (INVALID_ARGUMENT, NOT_FOUND, ...) included.",
            ),
            ts(
                "Server error ratio by method",
                (
                    "grpc_method:grpc_server_error_ratio:rate5m > 0",
                    "{{grpc_service}}/{{grpc_method}}",
                ),
                unit="percentunit",
                description="UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS, DEADLINE_EXCEEDED, "
                "UNIMPLEMENTED over all calls. HustleApiErrorRatioHigh fires above 5%.",
            ),
            ts(
                "p99 latency by method",
                (
                    "grpc_method:grpc_server_handling_seconds:p99_5m",
                    "{{grpc_service}}/{{grpc_method}}",
                ),
                unit="s",
            ),
            ts(
                "p50 and p99 latency, all methods",
                ("max(job:grpc_server_handling_seconds:p50_5m)", "p50"),
                ("max(job:grpc_server_handling_seconds:p99_5m)", "p99"),
                unit="s",
            ),
            ts(
                "Calls in flight",
                (
                    f"sum(grpc_server_started_total{{{HUSTLE}}})"
                    f" - sum(grpc_server_handled_total{{{HUSTLE}}})",
                    "in flight",
                ),
            ),
            Row("Admission and health"),
            ts(
                "Refused by the rate limiter, per second",
                ("sum by (group) (rate(rate_limited_total[$__rate_interval]))", "{{group}}"),
                unit="reqps",
            ),
            ts(
                "Counted by per-process budgets (Redis unreachable)",
                (
                    "sum by (group) (rate(rate_limiter_fallback_total[$__rate_interval]))",
                    "{{group}}",
                ),
                unit="reqps",
            ),
            ts(
                "Dependencies (1 up, 0 down)",
                ("min by (dependency) (dependency_up)", "{{dependency}}"),
            ),
            ts("Targets up", ('up{job=~"hustle-.+"}', "{{job}} {{instance}}")),
            *_memory("server"),
        ],
    )


def database() -> dict[str, Any]:
    return dashboard(
        "hustle-database",
        "Hustle / Database",
        "Pool saturation and waiting, named statements' latency and rate, slow statements.",
        [
            stat(
                "Pool saturation (max over machines)",
                "max(instance:db_pool_saturation:ratio)",
                "percentunit",
                [(0.7, "orange"), (0.9, "red")],
            ),
            stat(
                "Callers waiting for a connection",
                "sum(db_pool_requests_waiting)",
                "short",
                [(1, "red")],
            ),
            stat(
                "Slow statements per minute",
                "sum(rate(db_slow_queries_total[5m])) * 60",
                "short",
                [(1, "orange"), (6, "red")],
            ),
            stat("Connections open (limit)", "sum(db_pool_connections_max)", "short", []),
            Row("Pool"),
            ts(
                "Pool saturation",
                ("instance:db_pool_saturation:ratio", "{{job}} {{instance}}"),
                unit="percentunit",
                description="Checked out over DB_POOL_MAX_SIZE x pools. Alert above 90% for 5 m.",
            ),
            ts(
                "Connections in use and limit",
                ("sum by (job, instance) (db_pool_connections_in_use)", "in use {{instance}}"),
                ("sum by (job, instance) (db_pool_connections_max)", "limit {{instance}}"),
            ),
            ts(
                "Callers waiting for a connection",
                ("sum by (job, instance) (db_pool_requests_waiting)", "{{job}} {{instance}}"),
            ),
            Row("Statements"),
            ts(
                "p99 by statement (top 10)",
                ("topk(10, query:db_query_duration_seconds:p99_5m)", "{{query}}"),
                unit="s",
            ),
            ts(
                "Statements per second (top 10)",
                (
                    "topk(10, sum by (query) "
                    "(rate(db_query_duration_seconds_count[$__rate_interval])))",
                    "{{query}}",
                ),
                unit="ops",
            ),
            ts(
                "Database time per second by statement (top 10)",
                (
                    "topk(10, sum by (query) "
                    "(rate(db_query_duration_seconds_sum[$__rate_interval])))",
                    "{{query}}",
                ),
                unit="s",
                description="Where the database's time goes: rate x latency.",
            ),
            ts(
                "Slower than SLOW_QUERY_SECONDS, per minute",
                (
                    "sum by (query) (rate(db_slow_queries_total[$__rate_interval])) * 60",
                    "{{query}}",
                ),
            ),
        ],
    )


def jobs() -> dict[str, Any]:
    return dashboard(
        "hustle-jobs",
        "Hustle / Jobs",
        "The outbox relay, Dramatiq actors, retries and dead letters; worker memory.",
        [
            stat(
                "Outbox backlog", "max(outbox_backlog)", "short", [(100, "orange"), (1000, "red")]
            ),
            stat(
                "Oldest unsent outbox row",
                "max(outbox_oldest_age_seconds)",
                "s",
                [(60, "orange"), (300, "red")],
            ),
            stat(
                "Dead letters kept",
                "sum(jobs_dead_letter_queue_size) or vector(0)",
                "short",
                [(1, "red")],
            ),
            stat(
                "Job failure ratio (15 m)",
                'sum(rate(jobs_processed_total{outcome="failure"}[15m]))'
                ' / sum(rate(jobs_processed_total{outcome=~"success|failure"}[15m]))',
                "percentunit",
                [(0.05, "orange"), (0.2, "red")],
            ),
            Row("Outbox relay"),
            ts(
                "Backlog and oldest row",
                ("max(outbox_backlog)", "rows waiting"),
                ("max(outbox_oldest_age_seconds)", "oldest, s"),
            ),
            ts(
                "Sent to the broker per second by actor",
                (
                    "sum by (actor) (rate(outbox_dispatched_total[$__rate_interval]))",
                    "{{actor}}",
                ),
                unit="ops",
            ),
            ts(
                "Relay batches refused by the broker",
                ("sum(increase(outbox_relay_errors_total[$__rate_interval]))", "refused"),
            ),
            Row("Actors"),
            ts(
                "Runs per second by actor and outcome",
                (
                    "sum by (actor, outcome) (rate(jobs_processed_total[$__rate_interval]))",
                    "{{actor}} {{outcome}}",
                ),
                unit="ops",
            ),
            ts(
                "Failure ratio by actor (15 m)",
                ("actor:jobs_failure_ratio:rate15m", "{{actor}}"),
                unit="percentunit",
            ),
            ts(
                "p99 run time by actor",
                (
                    "histogram_quantile(0.99, sum by (actor, le) "
                    "(rate(jobs_duration_seconds_bucket[$__rate_interval])))",
                    "{{actor}}",
                ),
                unit="s",
            ),
            ts(
                "Retries and dead letters per minute",
                (
                    "sum by (actor) (rate(jobs_retries_total[$__rate_interval])) * 60",
                    "retries {{actor}}",
                ),
                (
                    "sum by (actor) (rate(jobs_dead_lettered_total[$__rate_interval])) * 60",
                    "dead-lettered {{actor}}",
                ),
            ),
            ts(
                "Dead letters kept by queue",
                ("sum by (queue) (jobs_dead_letter_queue_size)", "{{queue}}"),
            ),
            Row("Uploads, verification, capabilities"),
            ts(
                "p99 processing time",
                (
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(verification_processing_duration_seconds_bucket[$__rate_interval])))",
                    "verification document",
                ),
                (
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(capability_recompute_duration_seconds_bucket[$__rate_interval])))",
                    "capability recompute",
                ),
                unit="s",
            ),
            ts(
                "Rejected uploads and failed recomputes per minute",
                (
                    "sum by (purpose) (rate(upload_rejections_total[$__rate_interval])) * 60",
                    "rejected {{purpose}}",
                ),
                (
                    "sum(rate(capability_recompute_failures_total[$__rate_interval])) * 60",
                    "recompute failures",
                ),
            ),
            *_memory("worker"),
        ],
    )


def feed() -> dict[str, Any]:
    return dashboard(
        "hustle-feed",
        "Hustle / Feed",
        "The geo feed: cache hit ratio, database reads, invalidations and GetFeed latency.",
        [
            stat(
                "Cache hit ratio (NORMAL)",
                'max(mode:feed_cache_hit_ratio:rate5m{mode="NORMAL"})',
                "percentunit",
                [],
            ),
            stat(
                "GetFeed p99",
                'max(grpc_method:grpc_server_handling_seconds:p99_5m{grpc_method="GetFeed"})',
                "s",
                [(0.25, "orange"), (1, "red")],
            ),
            stat("Feed pages per second", "sum(mode:feed_cache_requests:rate5m)", "reqps", []),
            stat(
                "Invalidations per minute",
                "sum(rate(feed_cache_invalidations_total[5m])) * 60",
                "short",
                [],
            ),
            Row("Cache"),
            ts(
                "Hit ratio by mode",
                ("mode:feed_cache_hit_ratio:rate5m", "{{mode}}"),
                unit="percentunit",
                description="NEARBY pages are keyed by the point asked for: mostly misses.",
            ),
            ts(
                "Lookups per second by mode and result",
                (
                    "sum by (mode, result) (rate(feed_cache_requests_total[$__rate_interval]))",
                    "{{mode}} {{result}}",
                ),
                unit="reqps",
            ),
            ts(
                "Invalidations per second by cause",
                (
                    "sum by (reason) (rate(feed_cache_invalidations_total[$__rate_interval]))",
                    "{{reason}}",
                ),
                unit="ops",
            ),
            Row("Database reads and latency"),
            ts(
                "Page read from PostgreSQL, p99 by mode",
                (
                    "histogram_quantile(0.99, sum by (mode, le) "
                    "(rate(feed_query_duration_seconds_bucket[$__rate_interval])))",
                    "{{mode}}",
                ),
                unit="s",
            ),
            ts(
                "GetFeed latency",
                (
                    "histogram_quantile(0.5, sum by (le) (rate(grpc_server_handling_seconds_bucket"
                    '{grpc_method="GetFeed"}[$__rate_interval])))',
                    "p50",
                ),
                (
                    'grpc_method:grpc_server_handling_seconds:p99_5m{grpc_method="GetFeed"}',
                    "p99",
                ),
                unit="s",
            ),
        ],
    )


DASHBOARDS = {"api": api, "database": database, "jobs": jobs, "feed": feed}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
