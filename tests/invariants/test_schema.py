"""The schema as a whole: every migration really rolls back, every index says why it exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg

from server import migrate

PG_DUMP = shutil.which("pg_dump", path="/usr/lib/postgresql/15/bin") or shutil.which("pg_dump")


def schema(url: str) -> str:
    """The schema as pg_dump prints it, without yoyo's own bookkeeping tables."""
    assert PG_DUMP, "pg_dump is missing"
    dump = subprocess.run(
        [
            PG_DUMP,
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=_yoyo*",
            "--exclude-table=yoyo_lock",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # (\restrict lines carry a random key per dump: not part of the schema)
    noise = ("-- Dumped", "\\restrict", "\\unrestrict")
    return "\n".join(line for line in dump.splitlines() if not line.startswith(noise))


def migration_ids() -> list[str]:
    return sorted(
        p.stem
        for p in Path(migrate.MIGRATIONS_DIR).glob("*.sql")
        if not p.stem.endswith(".rollback")
    )


def test_each_rollback_undoes_its_migration(empty_database_url: str) -> None:
    url = empty_database_url
    for migration in migration_ids():
        before = schema(url)
        assert migrate.apply(url, up_to=migration).applied == [migration]
        after = schema(url)
        assert after != before, f"{migration} changed nothing"
        assert migrate.rollback(url).rolled_back == [migration]
        assert schema(url) == before, f"rolling back {migration} left something behind"
        migrate.apply(url, up_to=migration)
        assert schema(url) == after, f"re-applying {migration} gave another schema"


def test_apply_rollback_all_reapply_is_identical(empty_database_url: str) -> None:
    url = empty_database_url
    migrate.apply(url)
    first = schema(url)
    migrate.rollback(url, count=len(migration_ids()))
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '%%yoyo%%'"
            )
        ]
        functions = [
            r[0]
            for r in conn.execute(
                "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            )
        ]
    assert (tables, functions) == ([], [])
    migrate.apply(url)
    assert schema(url) == first


def test_every_index_is_justified(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        missing = [
            r[0]
            for r in conn.execute(
                "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " JOIN pg_class t ON t.oid = x.indrelid"
                " WHERE t.relnamespace = 'public'::regnamespace AND NOT x.indisprimary"
                "   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
                "   AND obj_description(i.oid, 'pg_class') IS NULL AND t.relname NOT LIKE '%%yoyo%%'"
                "   AND t.relname <> 'spatial_ref_sys'"
            )
        ]
    assert missing == [], "indexes without a COMMENT saying which access path they serve"


def test_every_hx_name_is_a_catalogue_code(database_url: str) -> None:
    from server.errors import CATALOGUE

    with psycopg.connect(database_url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                " UNION ALL SELECT relname FROM pg_class WHERE relkind = 'i' AND relnamespace = 'public'::regnamespace"
            )
        ]
    codes = {f"HX{m}" for name in names for m in re.findall(r"_hx(\d{3})(?:_|$)", name)}
    assert codes
    assert codes <= set(CATALOGUE)
