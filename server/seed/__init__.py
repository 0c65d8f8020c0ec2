"""`python -m server seed`: fill a database with realistic, deterministic data, in bulk.

Phases: users with their trust histories (COPY, triggers off), verifications and their
documents, capability profiles (through recompute_capability), tasks with their escrows, proofs,
photos, disputes, messages and ratings (COPY with triggers off: the rows are consistent by
construction), XP (through the ledger's trigger), then the audit of every invariant and ANALYZE.
Seeded users sign in with the password `DEV_PASSWORD`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from loguru import logger
from tqdm import tqdm

from server import security
from server.db import Session, load_queries
from server.domain import system
from server.seed import generate, tables
from server.seed.catalog import select_metros

DEV_PASSWORD = "hustle-dev-password"  # noqa: S105 - the documented password of seeded dev users


@dataclass(frozen=True, slots=True)
class SeedOptions:
    users: int
    tasks: int
    region: str | None = None
    seed: int = 42
    batch: int = 20_000
    replace: bool = False
    now: datetime | None = None


class SeedError(Exception):
    """The seed cannot run (a non-empty database without --replace, bad options, a failed audit)."""


async def _copy(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    if not rows:
        return
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # constants of this module
    async with session.conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


async def seed(
    database_url: str, options: SeedOptions, *, slow_query_seconds: float = 60.0
) -> dict[str, float]:
    """Seed the database; returns the seconds each phase took."""
    if options.users < 2 or options.tasks < 0 or options.batch < 1:
        raise SeedError("--users must be at least 2, --tasks and --batch not negative")
    metros = select_metros(options.region)
    now = options.now or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    gen = generate.Generator(
        options.seed, metros, now, security.hash_password_blocking(DEV_PASSWORD)
    )
    timings: dict[str, float] = {}
    queries = load_queries()

    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        session = Session(conn, queries, slow_query_seconds)
        cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM users)")
        row = await cur.fetchone()
        if row and row[0]:
            if not options.replace:
                raise SeedError(
                    "the database already has users; pass --replace to wipe and reseed it"
                )
            await conn.execute("SET session_replication_role = replica")
            await session.execute("seed_truncate")
            await conn.execute("SET session_replication_role = origin")

        started = time.perf_counter()
        async with conn.transaction():
            # with triggers off: the trust ledger is copied with each user's tier history
            await conn.execute("SET LOCAL session_replication_role = replica")
            await _copy(session, "users", tables.USERS, gen.make_users(options.users))
            await _copy(session, "trust_ledger", tables.TRUST_LEDGER, gen.trust_ledger)
            await _copy(
                session, "message_settings", tables.MESSAGE_SETTINGS, gen.make_message_settings()
            )
        timings["users"] = time.perf_counter() - started

        started = time.perf_counter()
        uploads, records, documents = gen.make_verifications()
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await _copy(session, "uploads", tables.UPLOADS, uploads)
            await _copy(session, "verification_records", tables.VERIFICATIONS, records)
            await _copy(session, "verification_documents", tables.DOCUMENTS, documents)
        timings["verifications"] = time.perf_counter() - started

        started = time.perf_counter()
        await session.execute("seed_analyze_people")
        await session.scalar("seed_capabilities", int)
        timings["capability profiles"] = time.perf_counter() - started

        started = time.perf_counter()
        with tqdm(total=options.tasks, unit="task", desc="tasks", smoothing=0.1) as progress:
            for batch in gen.tasks(options.tasks, options.batch):
                async with conn.transaction():
                    await conn.execute("SET LOCAL session_replication_role = replica")
                    await _copy(session, "tasks", tables.TASKS, batch.tasks)
                    await _copy(session, "escrows", tables.ESCROWS, batch.escrows)
                    await _copy(session, "uploads", tables.UPLOADS, batch.uploads)
                    await _copy(session, "proofs", tables.PROOFS, batch.proofs)
                    await _copy(session, "proof_photos", tables.PHOTOS, batch.photos)
                    await _copy(session, "disputes", tables.DISPUTES, batch.disputes)
                    await _copy(session, "messages", tables.MESSAGES, batch.messages)
                    await _copy(session, "ratings", tables.RATINGS, batch.ratings)
                    await _copy(session, "rating_windows", tables.RATING_WINDOWS,
                                batch.rating_windows)  # fmt: skip
                progress.update(len(batch.tasks))
        timings["tasks"] = time.perf_counter() - started

        started = time.perf_counter()
        await session.execute("seed_analyze_tasks")
        await session.execute("seed_award_xp")
        timings["xp"] = time.perf_counter() - started

        started = time.perf_counter()
        await session.execute("seed_notifications", now=now)
        await session.execute("seed_notification_settings")
        await session.execute("seed_notification_preferences")
        timings["notifications"] = time.perf_counter() - started

        started = time.perf_counter()
        await session.execute("seed_admin_log")
        await session.execute("seed_suspend_users", count=max(1, options.users // 500), now=now)
        timings["admins"] = time.perf_counter() - started

        started = time.perf_counter()
        await session.scalar("seed_watch_events", int)
        await session.scalar("seed_watch_sequence", int)
        timings["watch log"] = time.perf_counter() - started

        started = time.perf_counter()
        await session.execute("seed_analyze_all")
        failures = [(f.rule, f.violations) for f in await system.audit(session) if f.violations]
        timings["audit and analyze"] = time.perf_counter() - started
        if failures:
            raise SeedError(
                "the seeded data breaks invariants: " + "; ".join(f"{r}: {n}" for r, n in failures)
            )
    finally:
        await conn.close()
    total = sum(timings.values())
    logger.bind(users=options.users, tasks=options.tasks, seconds=round(total, 1)).info(
        "seeded: " + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in timings.items())
    )
    return timings
