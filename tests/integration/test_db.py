"""Named SQL: loading rules, the slow-query log and the per-statement histogram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from psycopg_pool import AsyncConnectionPool

from server import db as dbmod
from server import metrics


def test_every_shipped_query_loads() -> None:
    queries = dbmod.load_queries()
    assert {"schema_version", "ping", "purge_dispatched"} <= set(queries)
    assert queries["ping"].sql.startswith("/* ping */ ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "defined twice"),
        ("-- name: a\n\n-- name: b\nSELECT 2;\n", "is empty"),
        ("SELECT 0;\n-- name: a\nSELECT 1;\n", "before the first"),
    ],
)
def test_bad_sql_files_are_refused_at_load(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "x.sql").write_text(text)
    with pytest.raises(ValueError, match=problem):
        dbmod.load_queries(tmp_path)


async def test_slow_statement_is_logged_with_its_name_and_timed(
    tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "t.sql").write_text(
        "-- name: nap\nSELECT pg_sleep(%(seconds)s);\n-- name: quick\nSELECT 1;\n"
    )
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False)
    await pool.open(wait=True)
    database = dbmod.Database(pool, dbmod.load_queries(tmp_path), slow_query_seconds=0.2)
    records: list[Any] = []
    sink = logger.add(lambda m: records.append(m.record), level="WARNING")
    histogram = metrics.DB_QUERY_SECONDS.labels("nap")
    try:
        await database.scalar("quick", int)
        await database.execute("nap", seconds=0.3)
    finally:
        logger.remove(sink)
        await pool.close()
    slow = [r for r in records if r["message"] == "slow query"]
    assert [r["extra"]["query"] for r in slow] == ["nap"]
    assert slow[0]["extra"]["duration_ms"] >= 300
    assert slow[0]["level"].name == "WARNING"
    assert any(
        s.name.endswith("_count") and s.value >= 1 for m in histogram.collect() for s in m.samples
    )


async def test_the_pool_gauges_come_from_the_pools_counters(database_url: str) -> None:
    from server.config import load_settings

    database = dbmod.Database.from_settings(
        load_settings(database_url=database_url, db_pool_min_size=1, db_pool_max_size=3)
    )
    await database.open(wait=True)
    try:
        async with database.connection(), database.connection():
            database.observe_pool()
            assert metrics.DB_POOL_IN_USE._value.get() == 2
        database.observe_pool()
        assert metrics.DB_POOL_IN_USE._value.get() == 0
        assert metrics.DB_POOL_WAITING._value.get() == 0
    finally:
        await database.close()
