"""FeedService: the feed law as a property, NEARBY geometry, the cache's invalidations, and the
GIST index at 100k tasks."""

from __future__ import annotations

import itertools
import math
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hustle.v1 import common_pb2, feed_pb2, feed_pb2_grpc
from server import security
from server.app import HustleServer, Resources
from server.config import Settings
from server.db import load_queries
from tests.api.market import Market
from tests.helpers import eventually, free_port
from tests.invariants.world import World
from tests.jobs_harness import Worker, job_env, start_worker
from tests.processes import Process, wait_until_serving

F = feed_pb2
EARTH_RADIUS_M = 6371008.7714  # the sphere of PostGIS's geography <-> and ST_DWithin(..., false)


def haversine(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


# --- the feed law, as a property ---------------------------------------------------------------

CENTRE = (34.05, -118.25)
RADIUS = 40_000

worker_st = st.fixed_dictionaries({
    "state": st.sampled_from(["CA", "NV"]),
    "tier": st.integers(1, 4),
    "trades": st.dictionaries(st.sampled_from(["electrician", "plumber"]), st.sampled_from(["valid", "expired"]),
                              max_size=2),
    "insurance": st.sampled_from(["none", "valid", "expired"]),
    "background": st.sampled_from(["none", "valid", "expired"]),
})  # fmt: skip
task_st = st.fixed_dictionaries({
    "poster": st.integers(0, 7),  # < number of workers: a worker's own task
    "state": st.sampled_from(["CA", "NV"]),
    "tier": st.integers(1, 4),
    "trade": st.sampled_from([None, "electrician", "plumber"]),
    "insurance": st.booleans(),
    "background": st.booleans(),
    "funded": st.booleans(),
    "taken": st.booleans(),
    "lat": st.floats(-0.45, 0.45),
    "lng": st.floats(-0.45, 0.45),
})  # fmt: skip
scenario_st = st.fixed_dictionaries({
    "workers": st.lists(worker_st, min_size=1, max_size=4),
    "tasks": st.lists(task_st, min_size=0, max_size=18),
    "page_size": st.integers(1, 4),
})  # fmt: skip


def eligible(worker: dict[str, Any], task: dict[str, Any], worker_index: int) -> bool:
    """The rule of DOMAIN.md, written again here independently of the SQL predicate."""

    def valid(kind: str) -> bool:
        return worker[kind] == "valid"

    return (task["funded"] and not task["taken"] and task["poster"] != worker_index
            and task["state"] == worker["state"] and worker["tier"] >= task["tier"]
            and (task["trade"] is None or worker["trades"].get(task["trade"]) == "valid")
            and (not task["insurance"] or valid("insurance"))
            and (not task["background"] or valid("background")))  # fmt: skip


class Scene:
    """Builds a scenario in the database through the legal paths; expired credentials are made
    by letting time pass for them (their expiry moved into the past with triggers off)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.world = World(conn)
        self.conn = conn

    def reset(self) -> None:
        self.conn.execute("SET session_replication_role = replica")
        for table in ("xp_ledger", "proof_photos", "proofs", "disputes", "escrows", "notifications", "tasks",
                      "verification_documents", "verification_records", "capability_profiles", "uploads",
                      "sessions", "trust_ledger", "job_runs", "outbox", "idempotency_keys", "users"):  # fmt: skip
            self.conn.execute(f"DELETE FROM {table}")
        self.conn.execute("SET session_replication_role = origin")

    def credential(
        self, user: uuid.UUID, admin: uuid.UUID, kind: str, status: str, trade: str | None = None
    ) -> None:
        if status == "none":
            return
        record = self.world.verification(user, kind, trade=trade, approve_by=admin)
        if status == "expired":
            self.conn.execute("SET session_replication_role = replica")
            self.conn.execute(
                "UPDATE verification_records SET submitted_at = now() - interval '2 days',"
                " reviewed_at = now() - interval '2 days', expires_at = now() - interval '1 hour' WHERE id = %s",
                (record,),
            )
            self.conn.execute("SET session_replication_role = origin")

    def build(self, scenario: dict[str, Any]) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        admin = self.world.admin()
        workers, tokens = [], []
        for spec in scenario["workers"]:
            user = self.world.user(state=spec["state"], tier=spec["tier"])
            for trade, status in spec["trades"].items():
                self.credential(user, admin, "TRADE_LICENSE", status, trade)
            self.credential(user, admin, "INSURANCE", spec["insurance"])
            self.credential(user, admin, "BACKGROUND_CHECK", spec["background"])
            self.world.profile(user)
            token = secrets.token_urlsafe(24)
            self.world.rows("INSERT INTO sessions (user_id, token_hash, expires_at) VALUES (%s, %s, now() + interval '1 day')",
                            user, security.token_hash(token))  # fmt: skip
            workers.append(user)
            tokens.append(token)
        taker = self.world.worker(
            state="CA", tier=4, trades=("electrician", "plumber"), insurance=True, background=True
        )
        nv_taker = self.world.worker(
            state="NV", tier=4, trades=("electrician", "plumber"), insurance=True, background=True
        )
        ids: list[str] = []
        for spec in scenario["tasks"]:
            index = spec["poster"]
            poster = (
                workers[index] if index < len(workers) else self.world.user(state=spec["state"])
            )
            spec["poster"] = index if index < len(workers) else -1
            task = self.world.task(poster, state=spec["state"], tier=spec["tier"], trade=spec["trade"],
                                   insurance=spec["insurance"], background=spec["background"], funded=spec["funded"],
                                   lat=CENTRE[0] + spec["lat"], lng=CENTRE[1] + spec["lng"])  # fmt: skip
            if spec["taken"] and spec["funded"]:
                self.world.accept(task, taker if spec["state"] == "CA" else nv_taker)
            spec["taken"] = spec["taken"] and spec["funded"]
            ids.append(str(task))
        return (
            [str(w) for w in workers],
            tokens,
            [dict(s, id=i) for s, i in zip(scenario["tasks"], ids, strict=True)],
        )


@pytest.fixture
def feed_server(database_url: str, redis_url: str) -> Iterator[str]:
    port, http = free_port(), free_port()
    process = Process(["serve"], {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "GRPC_HOST": "127.0.0.1",
                                  "GRPC_PORT": str(port), "HTTP_PORT": str(http), "SERVER_PROCESSES": "1",
                                  "RATE_LIMIT_READ_PER_MINUTE": "100000", "LOG_LEVEL": "WARNING"})  # fmt: skip
    try:
        wait_until_serving(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        process.popen.terminate()
        process.wait(timeout=30)
        process.stop()


def whole_feed(
    stub: feed_pb2_grpc.FeedServiceStub, token: str, request: F.GetFeedRequest
) -> list[F.FeedItem]:
    items: list[F.FeedItem] = []
    while True:
        page = stub.GetFeed(request, metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        items.extend(page.items)
        if not page.next_page_token:
            return items
        assert len(page.items) == request.page_size
        request = F.GetFeedRequest(**{**{f.name: getattr(request, f.name) for f in request.DESCRIPTOR.fields
                                         if f.name != "location" or request.HasField(f.name)},
                                      "page_token": page.next_page_token})  # fmt: skip


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(scenario=scenario_st)
def test_feed_law(scenario: dict[str, Any], feed_server: str, database_url: str) -> None:
    """Every task in any page passes the eligibility predicate, and every eligible task within
    the query appears exactly once across the pages (NORMAL and NEARBY)."""
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        grpc.insecure_channel(feed_server) as channel,
    ):
        scene = Scene(conn)
        scene.reset()
        workers, tokens, tasks = scene.build(scenario)
        stub = feed_pb2_grpc.FeedServiceStub(channel)
        for index, (worker, token, spec) in enumerate(
            zip(workers, tokens, scenario["workers"], strict=True)
        ):
            expected = {t["id"] for t in tasks if eligible(spec, t, index)}
            normal = whole_feed(
                stub,
                token,
                F.GetFeedRequest(mode=F.FEED_MODE_NORMAL, page_size=scenario["page_size"]),
            )
            got = [item.task.task_id for item in normal]
            assert len(got) == len(set(got)), "a task appeared twice"
            assert set(got) == expected
            for task_id in got:  # and the database's own predicate agrees, task by task
                assert conn.execute(
                    "SELECT is_eligible(%s::uuid, %s::uuid)", (worker, task_id)
                ).fetchone() == (True,)

            nearby = whole_feed(stub, token, F.GetFeedRequest(
                mode=F.FEED_MODE_NEARBY, location=common_pb2.LatLng(latitude=CENTRE[0], longitude=CENTRE[1]),
                radius_meters=RADIUS, page_size=scenario["page_size"]))  # fmt: skip
            near = [item.task.task_id for item in nearby]
            assert len(near) == len(set(near))
            distances = {
                t["id"]: haversine(*CENTRE, CENTRE[0] + t["lat"], CENTRE[1] + t["lng"])
                for t in tasks
            }
            within = {i for i in expected if distances[i] <= RADIUS - 1}
            borderline = {i for i in expected if abs(distances[i] - RADIUS) < 1}
            assert within <= set(near) <= within | borderline
            assert [item.distance_meters for item in nearby] == sorted(
                item.distance_meters for item in nearby
            )


# --- NEARBY geometry, caching, URGENT, the index -------------------------------------------------


@pytest.fixture
async def market(
    settings: Settings, resources: Resources, conn: psycopg.Connection[Any]
) -> AsyncIterator[Market]:
    server = HustleServer(
        settings.model_copy(update={"rate_limit_read_per_minute": 10_000}), resources
    )
    await server.start()
    from grpc import aio

    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield Market(channel, conn)
    await server.stop(grace=0)


async def feed_ids(market: Market, token: Any, **request: Any) -> list[str]:
    page = await market.feed.GetFeed(F.GetFeedRequest(**request), metadata=token.auth, timeout=10)
    return [item.task.task_id for item in page.items]


async def test_nearby_returns_only_tasks_in_the_radius_sorted_by_distance(market: Market) -> None:
    poster, worker = market.poster(), market.worker()
    here = (34.0522, -118.2437)
    offsets_km = [0.5, 3.0, 9.0, 15.0, 17.0, 30.0]  # north of here
    made = {}
    for km in offsets_km:
        task = await market.post(poster, lat=here[0] + km / 111.195, lng=here[1])
        made[task.task_id] = km
    page = await market.feed.GetFeed(F.GetFeedRequest(mode=F.FEED_MODE_NEARBY, location=common_pb2.LatLng(
        latitude=here[0], longitude=here[1])), metadata=worker.auth, timeout=10)  # fmt: skip
    got = [(made[i.task.task_id], i.distance_meters) for i in page.items]
    assert [km for km, _ in got] == [0.5, 3.0, 9.0, 15.0]  # the default radius is 16 km
    for km, meters in got:
        assert meters == pytest.approx(km * 1000, rel=0.005)
    wider = await feed_ids(market, worker, mode=F.FEED_MODE_NEARBY, radius_meters=80_000,
                           location=common_pb2.LatLng(latitude=here[0], longitude=here[1]))  # fmt: skip
    assert len(wider) == 6
    error = None
    try:
        await market.feed.GetFeed(
            F.GetFeedRequest(mode=F.FEED_MODE_NEARBY), metadata=worker.auth, timeout=10
        )
    except grpc.aio.AioRpcError as exc:
        error = exc
    assert error is not None
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_nearby_pages_through_tasks_at_the_same_spot_in_order(market: Market) -> None:
    """The index returns tasks at one distance in any order; pages must still be exact."""
    poster, worker = market.poster(), market.worker()
    here = (34.0522, -118.2437)
    spots = [0.2, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 5.0]  # km north; 5 share a spot
    for km in spots:
        await market.post(poster, lat=here[0] + km / 111.195, lng=here[1])
    request = F.GetFeedRequest(mode=F.FEED_MODE_NEARBY, page_size=2,
                               location=common_pb2.LatLng(latitude=here[0], longitude=here[1]))  # fmt: skip
    items: list[F.FeedItem] = []
    while True:
        page = await market.feed.GetFeed(request, metadata=worker.auth, timeout=10)
        items.extend(page.items)
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert len(items) == len(spots)
    assert len({i.task.task_id for i in items}) == len(spots)
    keys = [(i.distance_meters, -i.task.created_at.ToNanoseconds(), i.task.task_id) for i in items]
    ties = [k for k in keys if k[0] == keys[1][0]]
    assert len(ties) == 5
    # nearest first; at one distance newest first, then the larger id first
    assert [k[:2] for k in keys] == sorted(k[:2] for k in keys)
    for a, b in itertools.pairwise(keys):
        if a[:2] == b[:2]:
            assert a[2] > b[2]


async def test_a_task_taken_by_someone_else_leaves_the_feed_at_once(market: Market) -> None:
    poster, alice, bob = market.poster(), market.worker(), market.worker()
    task = await market.post(poster)
    assert task.task_id in await feed_ids(market, bob, mode=F.FEED_MODE_NORMAL)
    assert task.task_id in await feed_ids(market, bob, mode=F.FEED_MODE_NORMAL)  # now cached
    await market.accept(alice, task.task_id)
    assert task.task_id not in await feed_ids(market, bob, mode=F.FEED_MODE_NORMAL)
    newer = await market.post(poster)  # and a newly funded task appears at once too
    assert newer.task_id in await feed_ids(market, bob, mode=F.FEED_MODE_NORMAL)


async def test_cache_hits_and_misses_are_counted(market: Market) -> None:
    from server import metrics

    poster, worker = market.poster(), market.worker()
    await market.post(poster)
    hits = metrics.FEED_CACHE.labels("NORMAL", "hit")
    misses = metrics.FEED_CACHE.labels("NORMAL", "miss")
    before = (hits._value.get(), misses._value.get())
    await feed_ids(market, worker, mode=F.FEED_MODE_NORMAL)
    await feed_ids(market, worker, mode=F.FEED_MODE_NORMAL)
    assert (hits._value.get() - before[0], misses._value.get() - before[1]) == (1, 1)


async def test_urgent_feed_shows_urgent_tasks_of_the_last_half_hour(market: Market) -> None:
    poster, worker = market.poster(), market.worker()
    fresh = await market.post(poster, urgent=True)
    calm = await market.post(poster)
    stale = await market.post(poster, urgent=True)
    market.world.conn.execute(
        "SET session_replication_role = replica"
    )  # 31 minutes pass for `stale`
    market.world.conn.execute("UPDATE tasks SET created_at = now() - interval '31 minutes' WHERE id = %s",
                              (stale.task_id,))  # fmt: skip
    market.world.conn.execute("SET session_replication_role = origin")
    urgent = await feed_ids(market, worker, mode=F.FEED_MODE_URGENT)
    assert urgent == [fresh.task_id]
    assert calm.task_id in await feed_ids(market, worker, mode=F.FEED_MODE_NORMAL)


@pytest.fixture
def capability_worker(database_url: str, redis_url: str, capture: Any) -> Iterator[Worker]:
    yield from start_worker(job_env(database_url, redis_url, capture.url))


async def test_a_capability_change_shows_in_the_next_feed_call(
    market: Market, capability_worker: Worker
) -> None:
    poster, worker = market.poster(), market.worker()
    task = await market.post(poster, trade="electrician")
    assert task.task_id not in await feed_ids(
        market, worker, mode=F.FEED_MODE_NORMAL
    )  # cached without it
    version = market.world.value(
        "SELECT version FROM capability_profiles WHERE user_id = %s", worker.user_id
    )
    market.world.verification(
        worker.user_id, "TRADE_LICENSE", trade="electrician", approve_by=market.world.admin()
    )
    # the job is done when it has logged so: its commit, then the cache's new profile version
    done = "capability profile recomputed"

    def finished() -> bool:
        output = capability_worker.process.output
        return any(done in line and str(worker.user_id) in line for line in output.splitlines())

    await eventually(finished, bool, timeout=30, what=lambda: capability_worker.process.output)
    profile = "SELECT version FROM capability_profiles WHERE user_id = %s"
    assert market.world.value(profile, worker.user_id) == version + 1
    assert task.task_id in await feed_ids(market, worker, mode=F.FEED_MODE_NORMAL)


def test_nearby_uses_the_gist_index_on_100k_tasks(conn: psycopg.Connection[Any]) -> None:
    world = World(conn)
    worker = world.worker(state="CA")
    poster = world.user(state="CA")
    conn.execute(
        "SET session_replication_role = replica"
    )  # a bulk load: consistent by construction
    conn.execute(
        "INSERT INTO tasks (id, poster_id, title, category, price_cents, address, location_state, location, deadline,"
        " state, funded_at)"
        " SELECT gen_random_uuid(), %s, 'task ' || i, 'CLEANING', 1000 + i %% 9000, 'somewhere',"
        "        (ARRAY['CA','NV','TX','NY'])[1 + i %% 4],"
        "        ST_SetSRID(ST_MakePoint(-122 + (i %% 1000) * 0.01, 32 + (i / 1000) * 0.04), 4326)::geography,"
        "        now() + interval '3 days', CASE WHEN i %% 3 = 0 THEN 'CANCELLED' ELSE 'OPEN' END, now()"
        "   FROM generate_series(1, 100000) i", (poster,))  # fmt: skip
    conn.execute("INSERT INTO escrows (task_id, amount_cents, currency, state, payment_reference)"
                 " SELECT id, price_cents, 'USD', 'FUNDED', 'pi' FROM tasks WHERE title LIKE 'task %%'")  # fmt: skip
    conn.execute("SET session_replication_role = origin")
    conn.execute("ANALYZE tasks, escrows")
    assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (100_000,)
    sql = load_queries()["feed_nearby"].sql.replace("%(", "%%(").replace("%%(", "%(")
    params = {"user_id": worker, "point": "SRID=4326;POINT(-118.25 34.05)", "radius": 16000,
              "after_distance": None, "after_created": None, "after_id": None, "limit": 51}  # fmt: skip
    # the scan is inside nearby_open_tasks: auto_explain shows the plan it really ran with
    plans: list[str] = []
    conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
    for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements = on",
                    "auto_explain.log_level = notice", "client_min_messages = notice"):  # fmt: skip
        conn.execute(f"SET {setting}")  # type: ignore[arg-type]
    conn.execute("LOAD 'auto_explain'")
    rows = conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
    conn.execute("SET auto_explain.log_min_duration = -1")
    assert rows, "the worker has tasks nearby"
    plan = next(p for p in plans if "FROM tasks t" in p)
    assert "tasks_feed_location_idx" in plan, plan
    assert "Seq Scan on tasks" not in plan, plan
    # nearest-first straight from the index (KNN), not every task in the radius sorted
    assert "Order By: (location <->" in plan, plan
