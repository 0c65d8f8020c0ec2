"""The watch scenario's arithmetic: who should get each task, what was lost, the latencies."""

from __future__ import annotations

import math

from bench.runner import watch_row
from bench.watch import Watcher, expected_streams, outcome, percentile


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7
    assert math.isnan(percentile([], 0.5))


def test_lost_and_extra_deliveries_are_counted_and_latency_is_from_commit() -> None:
    expected = {"a": {0, 1}, "b": {1}}
    committed = {"a": 10.0, "b": 20.0}
    received = {("a", 0): 10.004, ("a", 1): 10.010, ("b", 2): 20.5}  # b to 2: not its stream
    found = outcome(expected, received, committed)
    assert (found.expected, found.received, found.lost, found.extra) == (3, 2, 1, 1)
    assert found.p50_ms == 7.0  # the median of 4 ms and 10 ms
    assert found.max_ms == 10.0


def test_the_streams_a_task_should_reach_are_those_within_the_radius() -> None:
    watchers = [
        Watcher("u0", "t", 34.05, -118.25),
        Watcher("u1", "t", 34.06, -118.25),  # ~1.1 km north
        Watcher("u2", "t", 34.20, -118.25),  # ~17 km north
    ]
    assert expected_streams(watchers, 34.05, -118.25, 3000) == {0, 1}
    assert expected_streams(watchers, 34.05, -118.25, 1000) == {0}


def test_the_row_reports_losses_as_errors() -> None:
    found = {
        "streams": 2000, "streams_live": 2000, "connections": 20, "rate": 50.0, "seconds": 30, "radius_m": 3000, "tasks": 1500,
        "open_seconds": 12.0, "failures": [], "rss_open_mib": {"process 1": 120.0},
        "rss_after_mib": {"process 1": 130.0}, "expected": 100, "received": 99, "lost": 1,
        "extra": 0, "p50_ms": 4.0, "p99_ms": 20.0, "max_ms": 30.0,
    }  # fmt: skip
    row = watch_row(found)
    assert row.result["error_count"] == 1
    assert row.result["statuses"]["LOST"] == 1
    assert row.result["rps"] == 3.3
    assert "1 lost" in row.notes[0]
    assert "process 1 120 → 130" in row.notes[1]
