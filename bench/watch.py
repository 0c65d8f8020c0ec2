"""The watch scenario (issue 16): many open WatchFeed streams while tasks are created at a fixed
rate. Measured: each server process's RSS with the streams open, the latency from a task's commit
to its ENTERED event reaching a client (p50, p99), and the events lost (must be 0).

Streams are NEARBY feeds of workers spread over one metropolitan box, so that each new task
concerns the few streams within the radius of it (as it would: a task is of interest near it);
tasks are written straight to PostgreSQL (insert and fund, one transaction each: the same
triggers as the API's), so that the rate is the writer's, not a rate limiter's. Which streams a
task should reach is known in advance: every watcher may take every task (same state, no
requirements), so it is the watchers within the radius, by the same great-circle distance the
hub uses; lost = expected - received, extra = received - expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import secrets
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from grpc import aio

from hustle.v2 import common_pb2, feed_pb2, feed_pb2_grpc
from server import security
from server.domain.watch import haversine

# Los Angeles: the box watchers and tasks are placed in (~55 x 46 km)
SOUTH, NORTH, WEST, EAST = 33.80, 34.30, -118.55, -118.05
OPENING_AT_ONCE = 200  # streams being opened at any moment (the others wait their turn)
ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


@dataclass(frozen=True, slots=True)
class Watcher:
    user_id: str
    token: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Outcome:
    expected: int
    received: int
    lost: int
    extra: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1) of the values; nan for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(len(ordered), rank) - 1]


def outcome(
    expected: Mapping[str, set[int]],
    received: Mapping[tuple[str, int], float],
    committed: Mapping[str, float],
) -> Outcome:
    """What a run delivered. `expected`: task -> the streams it should reach; `received`:
    (task, stream) -> when the stream got it; `committed`: task -> when its transaction
    committed (the same clock)."""
    wanted = {(task, stream) for task, streams in expected.items() for stream in streams}
    got = set(received)
    latencies = [
        (received[pair] - committed[pair[0]]) * 1000
        for pair in got & wanted
        if pair[0] in committed
    ]
    return Outcome(
        expected=len(wanted),
        received=len(got & wanted),
        lost=len(wanted - got),
        extra=len(got - wanted),
        p50_ms=round(statistics.median(latencies), 2) if latencies else float("nan"),
        p99_ms=round(percentile(latencies, 0.99), 2),
        max_ms=round(max(latencies), 2) if latencies else float("nan"),
    )


def expected_streams(
    watchers: list[Watcher], latitude: float, longitude: float, radius: float
) -> set[int]:
    return {
        i
        for i, w in enumerate(watchers)
        if haversine(w.latitude, w.longitude, latitude, longitude) <= radius
    }


def make_watchers(url: str, count: int, rng: random.Random) -> tuple[list[Watcher], str]:
    """`count` workers of CA with capability profiles and sessions, at random points of the box,
    and a poster; returns them and the poster's id."""
    watchers: list[Watcher] = []
    run = secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True) as conn:
        poster = conn.execute(
            "INSERT INTO users (email, password_hash, full_name, location_state)"
            " VALUES (%s, %s, 'Bench Poster', 'CA') RETURNING id::text",
            (f"watch-poster-{run}@bench.test", ARGON),
        ).fetchone()
        assert poster is not None
        ids = conn.execute(
            "INSERT INTO users (email, password_hash, full_name, location_state)"
            " SELECT 'watch-' || %s || '-' || n || '@bench.test', %s, 'Bench Watcher ' || n, 'CA'"
            "   FROM generate_series(1, %s) n RETURNING id::text",
            (run, ARGON, count),
        ).fetchall()
        conn.execute(
            "SELECT count(recompute_capability(id)) FROM users WHERE id = ANY(%s::uuid[])",
            ([i for (i,) in ids],),
        )
        expires = datetime.now(UTC) + timedelta(days=1)
        with (
            conn.cursor() as cur,
            cur.copy("COPY sessions (user_id, token_hash, expires_at) FROM STDIN") as copy,
        ):
            for (user_id,) in ids:
                token = secrets.token_urlsafe(32)
                copy.write_row((user_id, security.token_hash(token), expires))
                watchers.append(
                    Watcher(user_id, token, rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST))
                )
    return watchers, poster[0]


TASK_SQL = """
WITH task AS (
    INSERT INTO tasks (poster_id, title, category, price_cents, address, location_state, location,
                       deadline)
    VALUES (%(poster)s, 'Bench watch task', 'HANDYMAN', 2500, '1 Bench St', 'CA',
            ST_SetSRID(ST_MakePoint(%(lng)s, %(lat)s), 4326)::geography, now() + interval '2 days')
    RETURNING id, price_cents, currency)
INSERT INTO escrows (task_id, amount_cents, currency)
SELECT id, price_cents, currency FROM task RETURNING task_id::text
"""
FUND_SQL = (
    "UPDATE escrows SET state = 'FUNDED', payment_reference = 'pi_bench_watch' WHERE task_id = %s"
)


def create_tasks(
    url: str,
    poster: str,
    rate: float,
    seconds: float,
    rng: random.Random,
    committed: dict[str, float],
    places: dict[str, tuple[float, float]],
) -> None:
    """Insert and fund tasks at `rate` a second for `seconds`, each in its own transaction;
    record when each committed."""
    with psycopg.connect(url) as conn:
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < seconds:
            due = started + n / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            lat, lng = rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)
            row = conn.execute(TASK_SQL, {"poster": poster, "lat": lat, "lng": lng}).fetchone()
            assert row is not None
            conn.execute(FUND_SQL, (row[0],))
            conn.commit()
            committed[row[0]] = time.time()
            places[row[0]] = (lat, lng)
            n += 1


async def _stream(
    stub: feed_pb2_grpc.FeedServiceStub,
    index: int,
    watcher: Watcher,
    radius: int,
    ready: list[bool],
    all_live: asyncio.Event,
    opening: asyncio.Semaphore,
    received: dict[tuple[str, int], float],
    failures: list[str],
) -> None:
    request = feed_pb2.WatchFeedRequest(
        mode=feed_pb2.FEED_MODE_NEARBY,
        location=common_pb2.LatLng(latitude=watcher.latitude, longitude=watcher.longitude),
        radius_meters=radius,
    )
    await opening.acquire()  # clients arrive a few hundred at a time, not all in one instant
    call: Any = stub.WatchFeed(request, metadata=(("authorization", f"Bearer {watcher.token}"),))
    admitted = False
    try:
        async for message in call:
            if not admitted:
                admitted = True
                opening.release()
            if message.kind == feed_pb2.FEED_EVENT_KIND_HEARTBEAT and not ready[index]:
                ready[index] = True
                if all(ready):
                    all_live.set()
            elif message.kind == feed_pb2.FEED_EVENT_KIND_ENTERED:
                received.setdefault((message.task_id, index), time.time())
    except aio.AioRpcError as error:
        if error.code().name != "CANCELLED":
            failures.append(f"stream {index}: {error.code().name} {error.details()}")
    except Exception as exc:  # reported with the run's figures
        failures.append(f"stream {index}: {type(exc).__name__}: {exc}")
    finally:
        if not admitted:
            opening.release()


async def _watch(
    host: str,
    watchers: list[Watcher],
    radius: int,
    connections: int,
    go: Any,
    stop: Any,
    received: dict[tuple[str, int], float],
    failures: list[str],
    ready_flags: list[bool],
    open_seconds: float,
) -> float:
    """Open every stream, set `go` once all are live (or `open_seconds` passed: the streams not
    live by then are left out of the figures); return the seconds it took to open them, and
    keep reading until `stop`."""
    # each channel its own subchannel pool: its own TCP connection (channels to the same target
    # share one connection by default), so that SO_REUSEPORT spreads them over the processes
    channels = [
        aio.insecure_channel(host, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    stubs = [feed_pb2_grpc.FeedServiceStub(c) for c in channels]
    ready = ready_flags
    all_live = asyncio.Event()
    opening = asyncio.Semaphore(OPENING_AT_ONCE)
    started = time.monotonic()
    readers = [
        asyncio.create_task(
            _stream(
                stubs[i % connections], i, w, radius, ready, all_live, opening, received, failures
            )
        )
        for i, w in enumerate(watchers)
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_live.wait(), open_seconds)
    opened = time.monotonic() - started
    go.set()
    await asyncio.to_thread(stop.wait)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for channel in channels:
        await channel.close()
    return opened


def _client_process(
    host: str,
    watchers: list[Watcher],
    radius: int,
    channels: int,
    open_seconds: float,
    go: Any,
    stop: Any,
    results: Any,
) -> None:
    """The streams' client, in a process of its own (so that neither the task writer nor the
    measuring wait on its GIL): what it received goes back through `results` at the end."""
    received: dict[tuple[str, int], float] = {}
    failures: list[str] = []
    ready = [False] * len(watchers)
    opened = asyncio.run(
        _watch(host, watchers, radius, channels, go, stop, received, failures, ready, open_seconds)
    )
    results.send((opened, received, failures, ready))
    results.close()


def run(
    url: str,
    host: str,
    *,
    streams: int = 2000,
    rate: float = 50.0,
    seconds: float = 30.0,
    radius: int = 3000,
    connections: int = 0,
    drain_seconds: float = 3.0,
    open_seconds: float = 120.0,
    rss: Any = None,
    seed: int = 16,
) -> dict[str, Any]:
    """One run; its figures (rss: a function returning the server's RSS by process)."""
    rng = random.Random(seed)
    watchers, poster = make_watchers(url, streams, rng)
    committed: dict[str, float] = {}
    places: dict[str, tuple[float, float]] = {}
    spawn = multiprocessing.get_context("spawn")
    go, stop = spawn.Event(), spawn.Event()
    mine, theirs = spawn.Pipe(duplex=False)
    channels = connections or max(8, streams // 100)  # ~100 streams per HTTP/2 connection
    client = spawn.Process(
        target=_client_process,
        args=(host, watchers, radius, channels, open_seconds, go, stop, theirs),
        name="watch-clients",
        daemon=True,
    )
    client.start()
    try:
        if not go.wait(timeout=open_seconds + 60):
            raise RuntimeError("the streams did not open")
        rss_open = rss() if rss else {}
        create_tasks(url, poster, rate, seconds, rng, committed, places)
        time.sleep(drain_seconds)
        rss_after = rss() if rss else {}
        stop.set()
        if not mine.poll(120):
            raise RuntimeError("the streams' client did not report")
        opened, received, failures, ready = mine.recv()
    finally:
        stop.set()
        client.join(timeout=30)
        if client.is_alive():
            client.kill()
    live = {i for i, flag in enumerate(ready) if flag}
    expected = {
        task: expected_streams(watchers, lat, lng, radius) & live
        for task, (lat, lng) in places.items()
    }
    result = outcome(expected, {k: v for k, v in received.items() if k[1] in live}, committed)
    return {
        "streams": streams,
        "streams_live": len(live),
        "connections": channels,
        "rate": rate,
        "seconds": seconds,
        "radius_m": radius,
        "tasks": len(committed),
        "open_seconds": round(opened, 1),
        "failures": failures[:5],
        "rss_open_mib": rss_open,
        "rss_after_mib": rss_after,
        **asdict(result),
    }
