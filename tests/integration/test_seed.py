"""`python -m server seed`: consistent, deterministic, regional; and the audit that checks it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest

from server import seed
from server.db import Session, load_queries
from server.domain import system

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def fingerprint(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM"
            " (SELECT id, poster_id, worker_id, title, price_cents, location::text, state, created_at, deadline"
            "  FROM tasks) t"
        ).fetchone()
        assert row is not None
        return int(row[0]), str(row[1])


async def test_seed_is_consistent_and_deterministic(database_url: str) -> None:
    options = seed.SeedOptions(users=300, tasks=3000, seed=7, batch=1000, now=NOW)
    await seed.seed(database_url, options)  # raises when the audit finds any violation
    first = fingerprint(database_url)
    assert first[0] == 3000
    with psycopg.connect(database_url) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM tasks GROUP BY state").fetchall())
        assert set(states) == {
            "OPEN",
            "ACCEPTED",
            "PROOF_SUBMITTED",
            "DISPUTED",
            "COMPLETED",
            "CANCELLED",
            "EXPIRED",
        }
        assert conn.execute("SELECT count(*) FROM xp_ledger").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM capability_profiles").fetchone()[0] == 300
        # threads on taken tasks, some of them read, none on a task nobody took
        read, total = conn.execute("SELECT count(read_at), count(*) FROM messages").fetchone()
        assert 0 < read < total
        assert 0 < conn.execute("SELECT count(*) FROM message_settings").fetchone()[0] < 300
        assert (
            conn.execute(
                "SELECT count(*) FROM messages m JOIN tasks t ON t.id = m.task_id WHERE t.worker_id IS NULL"
            ).fetchone()[0]
            == 0
        )
        # every user's tier history, one step at a time from 'account created' (the audit
        # checks each ends at the user's tier)
        assert conn.execute("SELECT count(DISTINCT user_id) FROM trust_ledger").fetchone()[0] == 300
        assert (
            conn.execute("SELECT count(*) FROM trust_ledger WHERE old_tier IS NOT NULL").fetchone()[
                0
            ]
            > 0
        )
        # ratings of completed tasks: mostly revealed pairs, some automatic, some still blind
        revealed, automatic, blind, windows = conn.execute(
            "SELECT count(*) FILTER (WHERE revealed_at IS NOT NULL), count(*) FILTER (WHERE is_auto),"
            " count(*) FILTER (WHERE revealed_at IS NULL), (SELECT count(*) FROM rating_windows)"
            " FROM ratings"
        ).fetchone()
        assert revealed > blind > 0
        assert automatic > 0
        assert windows > 0
        # admins granted through the admin log (the first by the command line), a few
        # suspended accounts with theirs (the audit checks each has one)
        grants = conn.execute(
            "SELECT actor_label, count(*) FROM admin_actions WHERE action = 'admin.grant'"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert grants == [("cli", 1)]  # 300 users: one admin
        suspended = "SELECT count(*) FROM users WHERE account_status = 'SUSPENDED'"
        assert conn.execute(suspended).fetchone()[0] == 1
        # open, funded tasks for the feed, some urgent and recent
        assert (
            conn.execute(
                "SELECT count(*) FROM tasks WHERE state = 'OPEN' AND funded_at IS NOT NULL AND urgent"
                " AND created_at > %s - interval '30 minutes'",
                (NOW,),
            ).fetchone()[0]
            > 0
        )

    with pytest.raises(seed.SeedError, match="--replace"):
        await seed.seed(database_url, options)
    await seed.seed(database_url, replace(options, replace=True))
    assert fingerprint(database_url) == first
    await seed.seed(database_url, replace(options, replace=True, seed=8))
    assert fingerprint(database_url) != first


async def test_region_keeps_everything_in_its_metros(database_url: str) -> None:
    await seed.seed(
        database_url, seed.SeedOptions(users=100, tasks=500, region="CA,Austin", now=NOW)
    )
    with psycopg.connect(database_url) as conn:
        states = {r[0] for r in conn.execute("SELECT DISTINCT location_state FROM tasks")}
        assert states == {"CA", "TX"}
        far = conn.execute(
            "SELECT count(*) FROM tasks WHERE location_state = 'TX'"
            " AND NOT ST_DWithin(location, 'POINT(-97.7431 30.2672)'::geography, 26000)"
        ).fetchone()[0]
        assert far == 0


async def test_unknown_region_is_refused(database_url: str) -> None:
    with pytest.raises(ValueError, match="no metro matches"):
        await seed.seed(database_url, seed.SeedOptions(users=10, tasks=10, region="Atlantis"))


async def test_audit_finds_a_broken_row(database_url: str) -> None:
    await seed.seed(database_url, seed.SeedOptions(users=50, tasks=200, now=NOW))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        session = Session(conn, load_queries(), 1.0)
        assert all(f.violations == 0 for f in await system.audit(session))
        # what a buggy bulk import could do with the triggers off
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            "DELETE FROM proof_photos WHERE proof_id = (SELECT min(proof_id::text)::uuid FROM proof_photos)"
        )
        broken = {f.rule: f.violations for f in await system.audit(session) if f.violations}
    assert broken == {"proof without 1 to 5 photos (INV-9)": 1}
