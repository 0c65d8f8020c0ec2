"""Callers and request data for the ghz configs, drawn from a seeded bench database.

ghz sends one metadata template for a whole run and picks request data round-robin by request
number, so the callers are named by what a template can compute:

    bench-reader-<i>     i < READERS: workers whose feeds have rows (`randomInt 0 READERS`)
    bench-poster-<i>     i < POSTERS: users who post tasks
    bench-nearby-<n>     request n of the NEARBY run: reader n mod READERS, who asks around a
                         point in their own state (data file row n), so every request misses the
                         cache and still finds eligible tasks
    bench-accept-<n>     request n of the AcceptTask run: a worker the eligibility predicate
                         admits for task n of the data file; each task is taken exactly once
    bench-nearbylight-<n>  the same for the NEARBY run at a light load, with its own rows
    bench-*warm-<n>      the same for the warm-ups, with their own rows, so that a warm-up
                         neither fills the measured run's cache nor takes its tasks

Sessions are inserted straight into the database (token hash as the server computes it); the
previous run's bench sessions are deleted first.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from server import security
from server.db import Query, load_queries
from server.seed import DEV_PASSWORD

READERS = 2_000
POSTERS = 2_000
USER_AGENT = "hustle-bench"
DATA_DIR = Path(__file__).resolve().parent / "data"
QUERIES: Mapping[str, Query] = load_queries(Path(__file__).resolve().parent / "sql")
MAX_ACCEPTS_PER_WORKER = 4  # well under the write limit (20 a minute) across warm-up and run
# data file (under DATA_DIR, without .json) per token role that walks a file row by row
FILES = {
    "nearby": "feed_nearby",
    "nearbywarm": "feed_nearby_warm",
    "nearbylight": "feed_nearby_light",
    "accept": "accept_task",
    "acceptwarm": "accept_task_warm",
}
JITTER_DEGREES = 0.02  # ~2 km: a NEARBY point near, not on, an open task


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many rows each data file needs (more than the run can send: a wrap-around would
    repeat a request, and for AcceptTask that is an error)."""

    nearby: int
    nearby_warm: int
    nearby_light: int
    accept: int
    accept_warm: int
    tasks: int = 5_000
    creates: int = 2_000
    sign_ins: int = 5_000


@dataclass(frozen=True, slots=True)
class Fixtures:
    readers: int
    accept: int
    accept_warm: int
    nearby: int
    nearby_warm: int
    nearby_light: int


def token(role: str, n: int | str) -> str:
    return f"bench-{role}-{n}"


def token_template(role: str) -> str:
    """ghz's metadata template for request n's token of this role."""
    return token(role, "{{.RequestNumber}}")


def _rows(conn: psycopg.Connection[Any], name: str, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES[name].sql, params)
        return cur.fetchall()


def _write(name: str, rows: Iterable[Mapping[str, Any]]) -> None:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    (DATA_DIR / f"{name}.json").write_text(json.dumps(list(rows)), encoding="utf-8")


def build(url: str, sizes: Sizes, seed: int = 42) -> Fixtures:
    rng = random.Random(seed)
    sessions: list[tuple[str, str]] = []  # (user id, token)
    with psycopg.connect(url) as conn:
        conn.execute(QUERIES["forget_sessions"].sql)

        readers = _rows(conn, "readers", limit=READERS)
        if len(readers) < READERS:
            raise RuntimeError(f"the bench database has {len(readers)} readers; {READERS} needed")
        sessions += [(str(r["user_id"]), token("reader", i)) for i, r in enumerate(readers)]
        posters = _rows(conn, "posters", limit=POSTERS)
        sessions += [(str(p["user_id"]), token("poster", i)) for i, p in enumerate(posters)]

        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for row in _rows(conn, "open_points"):
            points[row["location_state"]].append((row["latitude"], row["longitude"]))
        for role, count in (
            ("nearby", sizes.nearby),
            ("nearbywarm", sizes.nearby_warm),
            ("nearbylight", sizes.nearby_light),
        ):
            requests = []
            for n in range(count):
                reader = readers[n % READERS]
                latitude, longitude = rng.choice(points[reader["location_state"]])
                requests.append(_nearby(rng, latitude, longitude))
                sessions.append((str(reader["user_id"]), token(role, n)))
            _write(FILES[role], requests)
            if role == "nearby":
                _nearby_table(conn, [str(readers[n % READERS]["user_id"]) for n in range(count)],
                              requests)  # fmt: skip

        deadline = (datetime.now(UTC) + timedelta(days=3)).isoformat()
        templates = _rows(conn, "task_templates", limit=sizes.creates)
        _write("create_task", (_create(row, deadline) for row in templates))
        _write(
            "sign_in",
            (
                {"email": r["email"], "password": DEV_PASSWORD}
                for r in _rows(conn, "sign_in_emails", limit=sizes.sign_ins)
            ),
        )

        pairs = _accept_pairs(conn, rng, sizes.accept + sizes.accept_warm)
        split = min(sizes.accept_warm, len(pairs) // 5)
        warm, measured = pairs[:split], pairs[split:]
        for role, chosen in (("accept", measured), ("acceptwarm", warm)):
            _write(FILES[role], ({"task_id": task} for task, _ in chosen))
            sessions += [(worker, token(role, n)) for n, (_, worker) in enumerate(chosen)]
        # GetTask reads OPEN tasks that no AcceptTask run takes: the soak, which comes after
        # accept_task, would otherwise read tasks that are no longer anyone's to see
        taken = {task for task, _ in pairs}
        readable = _rows(conn, "open_task_ids", limit=sizes.tasks + len(taken))
        chosen_ids = [str(r["id"]) for r in readable if str(r["id"]) not in taken][: sizes.tasks]
        _write("get_task", ({"task_id": task} for task in chosen_ids))

        _insert_sessions(conn, sessions)
    return Fixtures(
        READERS, len(measured), len(warm), sizes.nearby, sizes.nearby_warm, sizes.nearby_light
    )


def _nearby_table(
    conn: psycopg.Connection[Any], users: list[str], requests: list[dict[str, Any]]
) -> None:
    """The NEARBY run's requests as rows, for the DB ceiling (bench/postgres.py's pgbench)."""
    conn.execute(QUERIES["bench_nearby_table"].sql)
    with (
        conn.cursor() as cur,
        cur.copy("COPY bench_nearby (n, user_id, point, radius) FROM STDIN") as copy,
    ):
        for n, (user, request) in enumerate(zip(users, requests, strict=True), start=1):
            where = request["location"]
            point = f"SRID=4326;POINT({where['longitude']} {where['latitude']})"
            copy.write_row((n, user, point, request["radius_meters"]))


def _nearby(rng: random.Random, latitude: float, longitude: float) -> dict[str, Any]:
    return {
        "mode": "FEED_MODE_NEARBY",
        "location": {
            "latitude": round(latitude + rng.uniform(-JITTER_DEGREES, JITTER_DEGREES), 6),
            "longitude": round(longitude + rng.uniform(-JITTER_DEGREES, JITTER_DEGREES), 6),
        },
        "radius_meters": 16_000,
        "page_size": 50,
    }


def _create(row: Mapping[str, Any], deadline: str) -> dict[str, Any]:
    return {
        "title": row["title"],
        "description": row["description"],
        "category": row["category"],
        "price": {"amount_cents": row["price_cents"], "currency": row["currency"]},
        "address": row["address"],
        "location_state": row["location_state"],
        "location": {"latitude": row["latitude"], "longitude": row["longitude"]},
        "urgent": row["urgent"],
        "deadline": deadline,
        "requirements": {
            "required_trade": row["required_trade"] or "",
            "required_trust_tier": row["required_trust_tier"],
            "insurance_required": row["insurance_required"],
            "background_check_required": row["background_check_required"],
        },
    }


def _accept_pairs(conn: psycopg.Connection[Any], rng: random.Random, wanted: int) -> list[Any]:
    """Up to `wanted` (task, worker) pairs: every task once, no worker more than
    MAX_ACCEPTS_PER_WORKER times (a small database has fewer open tasks than a run could take:
    the runner then sends exactly as many requests as there are pairs)."""
    candidates = _rows(conn, "accept_candidates", limit=wanted * 2)
    per_worker: Counter[str] = Counter()
    pairs = []
    for row in candidates:
        worker = str(row["worker_id"])
        if per_worker[worker] < MAX_ACCEPTS_PER_WORKER:
            per_worker[worker] += 1
            pairs.append((str(row["task_id"]), worker))
    rng.shuffle(pairs)
    return pairs[:wanted]


def _insert_sessions(conn: psycopg.Connection[Any], sessions: list[tuple[str, str]]) -> None:
    expires = datetime.now(UTC) + timedelta(days=1)
    with (
        conn.cursor() as cur,
        cur.copy("COPY sessions (user_id, token_hash, expires_at, user_agent) FROM STDIN") as copy,
    ):
        for user_id, bearer in sessions:
            copy.write_row((user_id, security.token_hash(bearer), expires, USER_AGENT))
