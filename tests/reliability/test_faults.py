"""The fault suite: real processes under a load of reads and writes while something breaks.

One stack for the module: `python -m server serve` with 2 processes, two `python -m server
worker` commands (each with its outbox relay), `python -m server capture` (SendGrid's and
Twilio's stand-in), a PostgreSQL cluster and a Redis (append-only file, as `make run` runs it) of
the suite's own. A load of reads (GetServerInfo, GetMe, GetFeed) and writes (RequestPasswordReset,
which sends one email to a distinct address each time) runs through every scenario:

  Redis stopped, then started again · Redis flushed while messages wait for a retry ·
  PostgreSQL restarted · a worker SIGKILLed while it delivers · the server SIGTERMed under load

Each asserts: every call ended OK or UNAVAILABLE (from the server with a retry delay, or from
the transport while nothing listened), never CANCELLED, UNKNOWN or INTERNAL; every email asked
for was delivered exactly once; recovery without restarting any process, within the bound the
scenario states. The figures (time to recover, delivery lag) are printed (`pytest -s`) and quoted
in README "Reliability".
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import grpc
import psycopg
import pytest
import redis
from grpc import aio

from hustle.v1 import auth_pb2, auth_pb2_grpc, feed_pb2, feed_pb2_grpc, user_pb2, user_pb2_grpc
from server import security
from tests.helpers import TEST_BUCKET, PrivatePostgres, PrivateRedis, eventually, free_port
from tests.invariants.world import ARGON
from tests.load import Load, Outcome, load_until_gone, server_info, unexpected
from tests.processes import Process, pid_with_local_port, wait_until_serving
from tests.reliability.conftest import empty_tables

# SIGTERM and restarts under load: its bounds are about time, so it runs alone (make test).
pytestmark = pytest.mark.serial

RESET_SUBJECT = "Reset your Hustle password"
ACCOUNTS = 600  # addresses for RequestPasswordReset, each asked once


@dataclass
class Stack:
    db_url: str
    pg: PrivatePostgres
    redis: PrivateRedis
    server: Process
    grpc_port: int
    http_port: int
    capture: Process
    capture_url: str
    workers: list[tuple[Process, int]]  # (process, metrics port)
    readers: list[str]  # bearer tokens
    accounts: Iterator[str]
    asked: list[str] = field(default_factory=list)  # resets answered OK: an email is owed
    asked_at: dict[str, float] = field(default_factory=dict)  # when (epoch seconds)
    maybe: list[str] = field(default_factory=list)  # resets answered UNAVAILABLE: at most one

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    # --- the calls of the load ------------------------------------------------------------
    def calls(self) -> list[tuple[str, Callable[[aio.Channel, int], Awaitable[Any]]]]:
        async def get_me(channel: aio.Channel, n: int) -> Any:
            token = self.readers[n % len(self.readers)]
            return await user_pb2_grpc.UserServiceStub(channel).GetMe(
                user_pb2.GetMeRequest(), metadata=bearer(token), timeout=30
            )

        async def get_feed(channel: aio.Channel, n: int) -> Any:
            token = self.readers[n % len(self.readers)]
            return await feed_pb2_grpc.FeedServiceStub(channel).GetFeed(
                feed_pb2.GetFeedRequest(mode=feed_pb2.FEED_MODE_NORMAL),
                metadata=bearer(token),
                timeout=30,
            )

        async def request_reset(channel: aio.Channel, _: int) -> Any:
            email = next(self.accounts)
            try:
                reply = await auth_pb2_grpc.AuthServiceStub(channel).RequestPasswordReset(
                    auth_pb2.RequestPasswordResetRequest(email=email), timeout=30
                )
            except aio.AioRpcError:
                self.maybe.append(email)
                raise
            self.asked.append(email)
            self.asked_at[email] = time.time()
            return reply

        return [
            ("GetServerInfo", server_info),
            ("GetMe", get_me),
            ("RequestPasswordReset", request_reset),
            ("GetFeed", get_feed),
            ("GetMe", get_me),
        ]

    # --- what the stand-in received, the workers' metrics, health ---------------------------
    async def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        async with aiohttp.ClientSession() as http:
            if body is None:
                async with http.get(f"{self.capture_url}{path}") as r:
                    return await r.json()
            async with http.post(f"{self.capture_url}{path}", json=body) as r:
                return await r.json()

    async def deliveries(self) -> collections.Counter[str]:
        return collections.Counter(to for to, _ in await self.received())

    async def received(self) -> list[tuple[str, float]]:
        """(address, when the stand-in accepted it, epoch seconds) of every reset email."""
        emails = await self.control("/captured?kind=email")
        return [
            (to, datetime.fromisoformat(e["received_at"]).timestamp())
            for e in emails
            if e["subject"] == RESET_SUBJECT
            for to in e["to"]
        ]

    async def health(self) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.http_port}/health") as r,
        ):
            return r.status

    def worker_metrics(self) -> str:
        import urllib.request

        text = ""
        for process, port in self.workers:
            if process.popen.poll() is None:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text += r.read().decode()
        return text


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def _env(db_url: str, redis_url: str, capture_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "CAPTURE_URL": capture_url,
        "S3_BUCKET": TEST_BUCKET,
        "DB_POOL_MIN_SIZE": "2",
        "DB_POOL_MAX_SIZE": "8",
        "HEALTH_CHECK_INTERVAL_SECONDS": "2",
        "SHUTDOWN_GRACE_SECONDS": "15",
        # the load is one client: lift the limits out of its way
        "RATE_LIMIT_AUTH_PER_MINUTE": "100000000",
        "RATE_LIMIT_READ_PER_MINUTE": "100000000",
        "RATE_LIMIT_WRITE_PER_MINUTE": "100000000",
        # jobs retry quickly and long enough to outlive the outages below
        "JOB_MIN_BACKOFF_MS": "200",
        "JOB_MAX_BACKOFF_MS": "2000",
        "JOB_MAX_RETRIES": "40",
        "RELAY_SWEEP_SECONDS": "1",
        "OUTBOX_RESEND_AFTER_SECONDS": "2",
        # a dead worker is noticed after 3 s, and looked for on every broker call
        # (production: 15 s and 10 %, README "Reliability")
        "JOB_HEARTBEAT_TIMEOUT_SECONDS": "3",
        "JOB_MAINTENANCE_CHANCE": "1",
    }


def _make_accounts(db_url: str) -> tuple[list[str], list[str]]:
    """Reader sessions and reset addresses, made directly in the database (no argon2 per call)."""
    run = uuid.uuid4().hex[:6]
    emails = [f"reset-{run}-{n}@example.com" for n in range(ACCOUNTS)]
    tokens = [security.new_token() for _ in range(4)]
    with psycopg.connect(db_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO users (email, password_hash, full_name, location_state)"
            " VALUES (%s, %s, 'Reset Tester', 'CA')",
            [(email, ARGON) for email in emails],
        )
        for n, token in enumerate(tokens):
            cur.execute(
                "WITH u AS (INSERT INTO users (email, password_hash, full_name, location_state)"
                " VALUES (%s, %s, 'Load Reader', 'CA') RETURNING id)"
                " INSERT INTO sessions (user_id, token_hash, expires_at)"
                " SELECT id, %s, now() + interval '1 day' FROM u",
                (f"reader-{run}-{n}@example.com", ARGON, security.token_hash(token)),
            )
    return tokens, emails


def _start_worker(env: dict[str, str]) -> tuple[Process, int]:
    port = free_port()
    process = Process(
        ["worker", "--processes", "1", "--threads", "4"], {**env, "WORKER_METRICS_PORT": str(port)}
    )
    return process, port


def _wait_for_line(process: Process, text: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.output:
        assert process.popen.poll() is None, process.output[-3000:]
        assert time.monotonic() < deadline, (
            f"no {text!r} within {timeout} s:\n{process.output[-3000:]}"
        )
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    private_postgres.ensure_running()
    db_url = private_postgres.url("hustle")
    empty_tables(db_url)
    readers, emails = _make_accounts(db_url)
    redis_server = PrivateRedis(str(tmp_path_factory.mktemp("redis")), persistent=True)
    redis_server.start()
    capture_port = free_port()
    capture_url = f"http://127.0.0.1:{capture_port}"
    env = _env(db_url, redis_server.url, capture_url)
    grpc_port, http_port = free_port(), free_port()
    started: list[Process] = []
    try:
        capture = Process(["capture", "--port", str(capture_port)], env)
        started.append(capture)
        server = Process(
            ["serve"],
            {**env, "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(grpc_port),
             "HTTP_PORT": str(http_port), "SERVER_PROCESSES": "2", "LOG_LEVEL": "WARNING"},
        )  # fmt: skip
        started.append(server)
        workers = [_start_worker(env), _start_worker(env)]
        started += [w for w, _ in workers]
        wait_until_serving(grpc_port, server, timeout=120)
        for worker, _ in workers:
            _wait_for_line(worker, "outbox relay listening")
        _wait_for_line(capture, "capturing SendGrid and Twilio requests")
        yield Stack(db_url, private_postgres, redis_server, server, grpc_port, http_port,
                    capture, capture_url, workers, readers, iter(emails))  # fmt: skip
    finally:
        for process in started:
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in started:
            try:
                process.wait(timeout=30)
            except Exception:
                process.stop()
        redis_server.stop()
        private_postgres.ensure_running()


async def _stack_is_whole(stack: Stack) -> None:
    """Every scenario starts from a working stack (a failed one must not fail the next)."""
    stack.pg.ensure_running()
    if stack.redis.process is None:
        stack.redis.start()
    await stack.control("/control/hold", {"seconds": 0})
    await stack.control("/control/fail", {"count": 0})
    async with aio.insecure_channel(stack.target) as channel:
        await eventually(lambda: _ok(channel), bool, timeout=30, what="the server to answer")


async def _ok(channel: aio.Channel) -> bool:
    try:
        await server_info(channel, 0)
    except aio.AioRpcError:
        return False
    return True


def _check_calls(outcomes: list[Outcome], healed: float, within: float) -> float:
    """Every call OK or a retryable UNAVAILABLE; none but OK from `healed + within` on. Returns
    how long after `healed` the last failure was (0: none after)."""
    bad = unexpected(outcomes)
    assert bad == [], collections.Counter((o.call, o.kind, o.detail[:80]) for o in bad)
    late = [o for o in outcomes if o.at >= healed + within and o.kind != "ok"]
    assert late == [], late[:5]
    assert [o for o in outcomes if o.at >= healed + within], "no call after the recovery bound"
    failed_after = [o.at - healed for o in outcomes if o.at >= healed and o.kind != "ok"]
    return max(failed_after, default=0.0)


async def _delivered_exactly_once(stack: Stack, within: float) -> dict[str, float]:
    """Wait until every email owed was delivered; each exactly once. Returns when each arrived
    (epoch seconds)."""
    owed = set(stack.asked)
    counts = await eventually(
        stack.deliveries,
        lambda c: owed <= set(c),
        timeout=within,
        what=lambda: f"{len(owed)} emails delivered\n{stack.workers[-1][0].output[-3000:]}",
    )
    doubled = {to: n for to, n in counts.items() if n > 1}
    assert doubled == {}, doubled
    assert set(counts) <= owed | set(stack.maybe)
    return dict(await stack.received())


def _lag(stack: Stack, arrived: dict[str, float], start: float, end: float) -> float:
    """The longest wait, from the call to its email, of the emails asked for in [start, end)."""
    asked = {e: t for e, t in stack.asked_at.items() if start <= t < end}
    assert asked, "no email was asked for meanwhile"
    return max(arrived[e] - t for e, t in asked.items())


def _failures(outcomes: list[Outcome]) -> str:
    kinds = collections.Counter(o.kind for o in outcomes)
    return (
        f"{sum(kinds.values()) - kinds['ok']} of {sum(kinds.values())} calls not OK {dict(kinds)}"
    )


def _note(stack: Stack, name: str, value: float | str) -> None:
    shown = f"{value:.2f} s" if isinstance(value, float) else value
    print(f"FIGURE {name} = {shown}")  # the suite's measurements (pytest -s shows them)


def _metric(text: str, prefix: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


async def test_redis_stopped_then_started(stack: Stack) -> None:
    await _stack_is_whole(stack)
    async with aio.insecure_channel(stack.target) as channel:
        # a session cached in Redis, then revoked while Redis is down
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        users = user_pb2_grpc.UserServiceStub(channel)
        revoked = stack.readers.pop()
        await users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(revoked), timeout=30)

        async with Load(stack.target, stack.calls(), concurrency=12, channels=4, rate=60) as load:
            await asyncio.sleep(1.0)
            stack.redis.stop()
            down, down_at = time.monotonic(), time.time()
            await asyncio.sleep(1.0)
            assert await stack.health() == 200  # degraded, still serving
            await auth.SignOut(auth_pb2.SignOutRequest(), metadata=bearer(revoked), timeout=30)
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - down)))
            stack.redis.start()
            healed, healed_at = time.monotonic(), time.time()
            await asyncio.sleep(3.0)
        _note(stack, "redis_restart_calls", _failures(load.outcomes))
        _note(
            stack, "redis_restart_last_failure_after_heal", _check_calls(load.outcomes, healed, 2.0)
        )
        during = load.between(down + 0.5, healed)
        assert during
        # a tolerated outage: reads and writes served all along (the emails wait in the outbox)
        assert [o for o in during if o.kind != "ok"] == []
        arrived = await _delivered_exactly_once(stack, 20)
        _note(stack, "redis_restart_email_lag", _lag(stack, arrived, down_at, healed_at))
        after = _lag(stack, arrived, down_at, healed_at) - (healed_at - down_at)
        _note(stack, "redis_restart_emails_done_after_heal_at_most", after)
        # the revocation made during the outage holds once Redis is back with its old data
        refused = await eventually(
            lambda: _code(
                users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(revoked), timeout=30)
            ),
            lambda code: code == grpc.StatusCode.UNAUTHENTICATED,
            timeout=20,
        )
        assert refused == grpc.StatusCode.UNAUTHENTICATED


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_redis_flushed_while_messages_wait(stack: Stack) -> None:
    await _stack_is_whole(stack)
    resent_before = _metric(stack.worker_metrics(), "outbox_resent_total")
    async with Load(stack.target, stack.calls(), concurrency=12, channels=4, rate=60) as load:
        await stack.control("/control/fail", {"count": 1_000_000, "status": 503})
        failing_at = time.time()
        await asyncio.sleep(2.5)  # emails asked for meanwhile wait in Redis for a retry
        waiting = len(stack.asked)
        redis.Redis.from_url(stack.redis.url).flushall()
        flushed, flushed_at = time.monotonic(), time.time()
        await stack.control("/control/fail", {"count": 0})
        await asyncio.sleep(2.0)
    _note(stack, "redis_flush_calls", _failures(load.outcomes))
    _check_calls(load.outcomes, flushed, 1.0)
    arrived = await _delivered_exactly_once(stack, 30)
    lost = [
        arrived[e] - flushed_at for e, t in stack.asked_at.items() if failing_at <= t < flushed_at
    ]
    _note(stack, "redis_flush_lost_emails_delivered_after_flush_within", max(lost))
    resent = _metric(stack.worker_metrics(), "outbox_resent_total") - resent_before
    assert waiting
    assert resent >= 1, resent


async def test_postgres_restarted(stack: Stack) -> None:
    await _stack_is_whole(stack)
    async with Load(stack.target, stack.calls(), concurrency=12, channels=4, rate=60) as load:
        await asyncio.sleep(1.0)
        cut_at = time.time()
        await asyncio.to_thread(stack.pg.restart)
        healed, healed_at = time.monotonic(), time.time()
        await asyncio.sleep(3.5)
        statuses = [await stack.health() for _ in range(6)]  # SO_REUSEPORT: both processes
    assert statuses == [200] * 6
    _note(stack, "postgres_restart_calls", _failures(load.outcomes))
    _note(
        stack, "postgres_restart_last_failure_after_heal", _check_calls(load.outcomes, healed, 2.0)
    )
    # the relays outlived it: what was asked for after the restart is delivered too
    arrived = await _delivered_exactly_once(stack, 20)
    _note(stack, "postgres_restart_email_lag", _lag(stack, arrived, cut_at - 1.0, healed_at + 2.0))


async def test_worker_killed_while_delivering(stack: Stack) -> None:
    await _stack_is_whole(stack)
    await stack.control("/control/hold", {"seconds": 120})
    held_from = time.time()
    async with Load(stack.target, stack.calls(), concurrency=12, channels=4, rate=60) as load:
        held = await eventually(lambda: stack.control("/control/held"), bool, timeout=20)
        victim = pid_with_local_port(held[0]["peer_port"])
        assert victim is not None
        os.kill(victim, signal.SIGKILL)  # a Dramatiq worker process, mid-request to the provider
        killed, killed_at = time.monotonic(), time.time()
        await asyncio.sleep(0.5)
        await stack.control("/control/hold", {"seconds": 0})
        owed_before_kill = len(stack.asked)
        await asyncio.sleep(2.0)
    _check_calls(load.outcomes, killed, 0.0)
    assert owed_before_kill
    arrived = await _delivered_exactly_once(stack, 40)
    stuck = [
        arrived[e] - killed_at for e, t in stack.asked_at.items() if held_from <= t < killed_at
    ]
    _note(stack, "worker_kill_held_emails_delivered_after_kill_within", max(stuck))
    survivors = [w for w, _ in stack.workers if w.popen.poll() is None]
    assert len(survivors) == 1  # the killed one's command stopped as a whole


async def test_server_sigterm_under_load(stack: Stack) -> None:
    await _stack_is_whole(stack)
    outcomes = await load_until_gone(
        stack.grpc_port, stack.server, concurrency=64, channels=8, warmup=1.5
    )
    assert await asyncio.to_thread(stack.server.wait, 40) == 0, stack.server.output[-3000:]
    counts = collections.Counter(o.kind for o in outcomes)
    _note(stack, "sigterm_calls", _failures(outcomes))
    assert counts["ok"] >= 128, counts
    assert set(counts) <= {"ok", "unavailable-retry", "unavailable-transport"}, counts
