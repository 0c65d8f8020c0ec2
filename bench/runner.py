"""`make bench`: the scenarios, in order, against a server started with production settings.

Per database size: start the server, warm the sessions, then for each scenario a warm-up and a
measured run (fixed duration at fixed concurrency, or a fixed rate where the target names one).
The echo ceiling runs once per invocation with the same ghz settings. Every ghz report is kept
(without per-request details) and the day's summary is rendered to bench/results/<date>.md.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from loguru import logger

from bench import database, fixtures, ghz, postgres, profile, report, servers, watch

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench"  # logs, profiles, metrics files: not recorded
RESULTS = Path(__file__).resolve().parent / "results"
BENCH_REDIS_DB = 12


@dataclass(frozen=True, slots=True)
class Plan:
    sizes: list[int]
    duration: int = 20  # seconds per measured run
    warmup: int = 5  # seconds per warm-up
    concurrency: int = 64
    connections: int = 8
    nearby_rps: int = 500
    nearby_light_rps: int = 50  # a load every size sustains: p50 is the call's own latency
    cold_rps: int = 200
    sustained_seconds: int = 60
    sustained_rps: int = 0  # 0: half the measured cached-feed maximum
    soak_seconds: int = 600  # the mixed-traffic soak (0: none)
    soak_bound_mib_per_hour: float = 20.0  # the RSS slope a server process may show in it
    profile: bool = False  # py-spy the server during the cached and the uncached feed runs
    accept_rps_bound: int = 800  # the most accepts a second the pool is sized for
    watch_streams: int = 2000  # open WatchFeed streams in the watch scenario
    watch_rate: float = 50.0  # tasks created a second meanwhile
    watch_seconds: int = 30
    only: frozenset[str] = frozenset()  # run only these scenarios (empty: all)
    server_root: Path | None = None  # run the server of another checkout (a "before" run)

    def wants(self, scenario: str) -> bool:
        return not self.only or scenario in self.only


@dataclass
class Row:
    scenario: str
    title: str
    settings: str
    result: dict[str, Any]
    notes: list[str] = field(default_factory=list)


class Session:
    """One size's run: the ghz binary, where reports go, and the rows measured so far."""

    def __init__(self, binary: str, plan: Plan, folder: Path) -> None:
        self.binary, self.plan, self.folder = binary, plan, folder
        self.rows: list[Row] = []
        self.server: servers.Running | None = None  # whose CPU time each call is charged
        self.database: postgres.Cluster | None = None  # and whose database CPU time

    def call(
        self, config: str, host: str, name: str, *, keep: bool = False, **overrides: Any
    ) -> ghz.Result:
        """One ghz run; its report goes to the results when `keep`, else under .bench/."""
        base: dict[str, Any] = {
            "concurrency": self.plan.concurrency,
            "connections": self.plan.connections,
        }
        folder = self.folder if keep else WORK / "ghz" / self.folder.name
        before = self.server.cpu_seconds() if self.server else 0.0
        db_before = self.database.cpu_seconds() if self.database else 0.0
        ticks = servers.cpu_ticks()
        result = ghz.run(self.binary, config, host, folder / f"{name}.json", **(base | overrides))
        steal, total = (now - then for now, then in zip(servers.cpu_ticks(), ticks, strict=True))
        if total:
            result = replace(result, steal_pct=round(100 * steal / total, 1))
        if self.server and result.count:
            spent = self.server.cpu_seconds() - before
            result = replace(result, server_cpu_ms=round(spent * 1000 / result.count, 3))
        if self.database and result.count:
            spent = self.database.cpu_seconds() - db_before
            result = replace(result, db_cpu_ms=round(spent * 1000 / result.count, 3))
        return result

    def measure(
        self,
        config: str,
        title: str,
        host: str,
        *,
        warm: Mapping[str, Any] | None = None,
        name: str | None = None,
        **overrides: Any,
    ) -> ghz.Result:
        """A warm-up (unless warm is empty) then the measured run; records a row."""
        name = name or config
        if warm is None or warm:
            warm_overrides = {"duration": f"{self.plan.warmup}s", **overrides, **(warm or {})}
            self.call(config, host, f"{name}.warmup", **warm_overrides)
        run = {"duration": f"{self.plan.duration}s", **overrides}
        result = self.call(config, host, name, keep=True, **run)
        row = Row(name, title, _describe(self.plan, run), asdict(result))
        if result.steal_pct >= 1:
            row.notes.append(f"the VM's host took {result.steal_pct:g} % of the CPU time (steal)")
        self.rows.append(row)
        logger.info(
            f"{name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms, {result.error_count} errors, "
            f"server CPU {result.server_cpu_ms:.2f} ms/call"
        )
        if result.error_count:
            logger.warning(f"{name}: errors {result.statuses} {result.errors}")
        return result


def merge_rerun(earlier: Mapping[str, Any], rerun: Mapping[str, Any]) -> dict[str, Any]:
    """The day's summary of a size after `--only` re-measured some of its scenarios: the earlier
    run's other rows are kept (an `--only` run would otherwise drop them from the day's report),
    and each re-measured row says when and on which commit it was measured."""
    fresh = {row["scenario"] for row in rerun["rows"]}
    note = f"re-measured alone at {rerun['finished_at']} (commit {rerun['commit']})"
    rows = []
    for row in earlier["rows"]:
        if row["scenario"] not in fresh:
            rows.append(row)
    for row in rerun["rows"]:
        rows.append({**row, "notes": [*row["notes"], note]})
    return {**earlier, "rows": rows}


def _describe(plan: Plan, run: Mapping[str, Any]) -> str:
    parts = [f"c={run.get('concurrency', plan.concurrency)}"]
    if run.get("rps"):
        parts.append(f"{run['rps']} req/s")
    if run.get("total"):
        parts.append(f"n={run['total']}")
    elif run.get("duration"):
        parts.append(str(run["duration"]))
    return ", ".join(parts)


def main(plan: Plan) -> int:
    binary = ghz.find_or_install()
    base_env = dict(os.environ)
    day = datetime.now(UTC).date().isoformat()
    results = RESULTS / (day if plan.server_root is None else f"{day}-{_commit(plan)}")
    for index, tasks in enumerate(plan.sizes):
        url = database.prepare(base_env["DATABASE_URL"], tasks, base_env, plan.server_root or ROOT)
        session = Session(binary, plan, results / str(tasks))
        if index == 0 and plan.wants("echo"):
            _echo(session, base_env)
        _run_size(session, tasks, url, base_env)
        summary = {
            "tasks": tasks,
            "users": database.users_for(tasks),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": _commit(plan),
            "plan": _plan_json(plan),
            "rows": [asdict(r) for r in session.rows],
        }
        path = session.folder / "summary.json"
        if plan.only and path.exists():
            summary = merge_rerun(json.loads(path.read_text()), summary)
        session.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=1) + "\n")
    # a before run of the same day (--server-root) is the baseline of the "halved" targets
    before = sorted(RESULTS.glob(f"{day}-*/"), key=lambda p: p.stat().st_mtime)
    baseline = before[-1] if plan.server_root is None and before else None
    written = report.render(results, results.parent / f"{results.name}.md", baseline)
    logger.info(f"results: {written.relative_to(ROOT)}")
    return 0


def _echo(session: Session, base_env: Mapping[str, str]) -> None:
    """The ceiling: bench/echo.py in the server's process model, same ghz settings."""
    ceiling = RESULTS / session.folder.parent.name / "echo"
    echo = Session(session.binary, session.plan, ceiling)
    with servers.start("bench.echo", [], base_env, WORK / "echo.log", root=ROOT) as running:
        echo.server = running
        echo.measure("echo", "Echo ceiling (bare grpc.aio, no interceptors)", running.host)
    (ceiling / "summary.json").write_text(
        json.dumps({"rows": [asdict(r) for r in echo.rows]}, indent=1) + "\n"
    )


def _server_env(base_env: Mapping[str, str], url: str) -> dict[str, str]:
    """Production settings (fly.toml's [env] plus what fly secrets would hold)."""
    metrics_dir = WORK / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    return {
        **base_env,
        "APP_ENV": "prod",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": url,
        "REDIS_URL": _bench_redis(base_env["REDIS_URL"]),
        "SECRET_KEY": secrets.token_urlsafe(48),
        # never used by the API process (only workers send), but required in prod
        "SENDGRID_API_KEY": "SG.bench-unused",
        "TWILIO_ACCOUNT_SID": "ACbench-unused",
        "TWILIO_AUTH_TOKEN": "bench-unused",
        "CLIENT_IP_HEADER": "fly-client-ip",  # behind fly's proxy: Fly-Client-IP is the caller
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "SENTRY_DSN": "",
    }


def _bench_redis(url: str) -> str:
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{BENCH_REDIS_DB}"


def _run_size(session: Session, tasks: int, url: str, base_env: Mapping[str, str]) -> None:
    plan = session.plan
    sizes = fixtures.Sizes(
        nearby=plan.nearby_rps * plan.duration * 5 // 4 + 1_000,
        nearby_warm=plan.nearby_rps * plan.warmup * 5 // 4 + 500,
        nearby_light=plan.nearby_light_rps * plan.duration * 5 // 4 + 500,
        accept=plan.accept_rps_bound * plan.duration,
        accept_warm=plan.accept_rps_bound * plan.warmup,
    )
    started = time.monotonic()
    made = fixtures.build(url, sizes)
    logger.info(f"fixtures for {tasks:,} tasks in {time.monotonic() - started:.1f} s: {made}")
    env = _server_env(base_env, url)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    session.database = postgres.Cluster.of(url)
    root = plan.server_root or ROOT
    log = WORK / f"server-{tasks}.log"
    with servers.start("server", ["serve"], env, log, root=root) as running:
        session.server, host = running, running.host
        _warm_sessions(session, host, made)
        _feeds(session, running, made)
        if plan.wants("db_ceiling"):
            _ceiling(session, url)
        if plan.wants("get_task"):
            session.measure("get_task", "GetTask (OPEN task, any caller)", host)
        if plan.wants("create_task"):
            session.measure("create_task", "CreateTask", host)
        if plan.wants("accept_task"):
            _accept(session, host, made)
        if plan.wants("sign_in"):
            session.measure("sign_in", "SignIn (argon2id verify)", host)
        if plan.wants("feed_sustained"):
            _sustained(session, running, made)
        if plan.wants("soak") and plan.soak_seconds > 0:
            _soak(session, running, made)
        if plan.wants("watch"):
            _watch(session, running, url)
        rss = running.rss_by_process()
    session.rows.append(_memory_row(rss))


def _warm_sessions(session: Session, host: str, made: fixtures.Fixtures) -> None:
    """Each caller once through an authenticated call, as a returning user's session is cached
    (the callers of the scenarios that run)."""
    plan = session.plan
    feeds = (
        "feed_normal_cold",
        "feed_normal",
        "feed_normal_half",
        "feed_sustained",
        "get_task",
        "soak",
    )
    nearby = ("feed_nearby", "feed_nearby_light")
    for role, count, used_by in (
        ("reader", made.readers, feeds),
        ("nearby", made.nearby, ("feed_nearby",)),
        ("nearbywarm", made.nearby_warm, nearby),
        ("nearbylight", made.nearby_light, ("feed_nearby_light", "soak")),
        ("accept", made.accept, ("accept_task",)),
        ("acceptwarm", made.accept_warm, ("accept_task",)),
    ):
        if not any(plan.wants(scenario) for scenario in used_by):
            continue
        result = session.call(
            "feed_normal",  # its inline data gives way to --data (a data file would not)
            host,
            f"sessions.{role}",
            call="hustle.v1.UserService/GetMe",
            data="{}",
            metadata=_bearer(role),
            total=count,
            duration="0s",
        )
        if result.error_count:
            raise RuntimeError(f"warming {role} sessions failed: {result.statuses} {result.errors}")


def _bearer(role: str) -> str:
    return json.dumps({"authorization": f"Bearer {fixtures.token_template(role)}"})


def _fill(
    session: Session, host: str, made: fixtures.Fixtures, name: str, **extra: Any
) -> ghz.Result:
    """Every reader's NORMAL feed once (request n: reader n), filling the cache."""
    return session.call(
        "feed_normal",
        host,
        name,
        metadata=_bearer("reader"),
        total=made.readers,
        duration="0s",
        **extra,
    )


def _feeds(session: Session, running: servers.Running, made: fixtures.Fixtures) -> None:
    plan, host = session.plan, running.host
    if plan.wants("feed_normal_cold"):
        cold = _fill(session, host, made, "feed_normal_cold", keep=True, rps=plan.cold_rps)
        session.rows.append(
            Row(
                "feed_normal_cold",
                "GetFeed NORMAL, cold cache (each reader's first)",
                f"c={plan.concurrency}, {plan.cold_rps} req/s, n={made.readers}",
                asdict(cold),
            )
        )
    if plan.wants("feed_normal") or plan.wants("feed_normal_half"):
        _fill(session, host, made, "feed_normal.fill")
        top = session.measure("feed_normal", "GetFeed NORMAL, cached", host)
        if plan.profile:
            _profile(session, running, "feed_normal")
        if plan.wants("feed_normal_half"):
            half = max(1, int(top.rps / 2))
            _fill(session, host, made, "feed_normal.refill")
            session.measure(
                "feed_normal",
                "GetFeed NORMAL, cached, at half the maximum rate",
                host,
                warm={},
                name="feed_normal_half",
                rps=half,
            )
    # Both warm up on the warm-up's points (the light run's warm-up asks a few of the main
    # run's warm-up points first: no matter); each measures on points of its own.
    warm = {"data_file": "bench/data/feed_nearby_warm.json", "metadata": _bearer("nearbywarm")}
    if plan.wants("feed_nearby_light"):
        session.measure(
            "feed_nearby",
            "GetFeed NEARBY, uncached, light load (the call's own latency)",
            host,
            warm=warm,
            name="feed_nearby_light",
            rps=plan.nearby_light_rps,
            data_file="bench/data/feed_nearby_light.json",
            metadata=_bearer("nearbylight"),
        )
    if plan.wants("feed_nearby"):
        session.measure(
            "feed_nearby",
            "GetFeed NEARBY, uncached (a new point each request)",
            host,
            warm=warm,
            rps=plan.nearby_rps,
        )
        if plan.profile:
            _profile(
                session,
                running,
                "feed_nearby",
                data_file="bench/data/feed_nearby_warm.json",
                metadata=_bearer("nearbywarm"),
                rps=plan.nearby_rps,
            )


def _ceiling(session: Session, url: str) -> None:
    """pgbench runs the NEARBY page statement at the NEARBY run's points (bench/postgres.py)."""
    plan = session.plan
    found = postgres.ceiling(
        url,
        "feed_nearby",
        limit=52,  # a 50-task page, one more to see if there is a next, one more for ties
        clients=plan.connections,
        seconds=plan.duration,
        work=WORK / "pgbench",
        root=plan.server_root or ROOT,
    )
    result = ghz.Result(
        count=found["count"],
        rps=found["tps"],
        p50_ms=found["latency_ms"],
        p95_ms=float("nan"),
        p99_ms=float("nan"),
        statuses={"OK": found["count"]},
        errors={},
        db_cpu_ms=found["db_cpu_ms"],
    )
    session.rows.append(
        Row(
            "db_ceiling",
            "DB ceiling: the NEARBY page statement alone, by pgbench (p50 column: its mean)",
            f"{found['clients']} clients, prepared, {plan.duration}s",
            asdict(result),
        )
    )
    logger.info(f"db_ceiling: {found['tps']:,.0f} pages/s, PG CPU {found['db_cpu_ms']} ms each")


def _memory_row(rss: dict[str, float]) -> Row:
    """Resident memory of each process after the run (the supervisor serves nothing)."""
    row = Row("memory", "Server memory after the run (RSS, MiB)", "", {"rss_mib": rss})
    return row


def _profile(session: Session, running: servers.Running, config: str, **overrides: Any) -> None:
    """A separate run of `config` under py-spy (so that the measured figures carry no sampling)."""
    folder = WORK / "profile"
    children = [pid for pid in running.pids() if pid != running.process.pid]
    with profile.recording(children, session.plan.duration, folder, config):
        session.call(
            config,
            running.host,
            f"{config}.profiled",
            duration=f"{session.plan.duration}s",
            **overrides,
        )
    logger.info(f"profile of {config}: {folder / (config + '-summary.txt')}")


def _accept(session: Session, host: str, made: fixtures.Fixtures) -> None:
    plan = session.plan
    warm = {
        "data_file": "bench/data/accept_task_warm.json",
        "metadata": _bearer("acceptwarm"),
        "total": made.accept_warm,
        "duration": "0s",
    }
    if made.accept >= plan.accept_rps_bound * plan.duration:
        session.measure(
            "accept_task", "AcceptTask (each task once, an eligible worker)", host, warm=warm
        )
        return
    # A small database has fewer open tasks than a timed run could take: send exactly that many.
    session.measure(
        "accept_task",
        "AcceptTask (each task once, an eligible worker)",
        host,
        warm=warm,
        total=made.accept,
        duration="0s",
    )
    session.rows[-1].notes.append(
        f"{made.accept} open tasks to take: a fixed count, not a duration"
    )


def _sustained(session: Session, running: servers.Running, made: fixtures.Fixtures) -> None:
    plan = session.plan
    top = next((r.result["rps"] for r in session.rows if r.scenario == "feed_normal"), None)
    rate = plan.sustained_rps or (max(1, int(top / 2)) if top else 300)
    _fill(session, running.host, made, "feed_sustained.refill")
    before = running.rss_mib()
    each_before = running.rss_by_process()
    result = session.call(
        "feed_normal",
        running.host,
        "feed_sustained",
        keep=True,
        rps=rate,
        duration=f"{plan.sustained_seconds}s",
    )
    after = running.rss_mib()
    each_after = running.rss_by_process()
    row = Row(
        "feed_sustained",
        f"GetFeed NORMAL sustained ({plan.sustained_seconds} s, cache "
        "entries expiring and refilling as in production)",
        f"c={plan.concurrency}, {rate} req/s, {plan.sustained_seconds}s",
        asdict(result),
    )
    row.notes.append(f"server RSS {before:.0f} MiB before, {after:.0f} MiB after")
    row.notes.append(
        "RSS by process, before → after: "
        + ", ".join(
            f"{name} {each_before.get(name, 0):.0f} → {mib:.0f}" for name, mib in each_after.items()
        )
    )
    row.result["rss_before_mib"] = each_before
    row.result["rss_after_mib"] = each_after
    session.rows.append(row)
    logger.info(
        f"feed_sustained: {result.rps:,.0f} req/s, p99 {result.p99_ms:.1f} ms, "
        f"{result.error_count} errors; RSS {before:.0f} → {after:.0f} MiB"
    )


def _soak_mix(made: fixtures.Fixtures) -> tuple[tuple[str, int, dict[str, str]], ...]:
    """The soak's mixed traffic: (ghz config, requests per second, overrides). Reads at the rates
    of a busy afternoon for one machine, most of them cache hits, with NEARBY pages between. A
    run this long outlasts one caller per request: callers are drawn at random from their role."""
    nearby = fixtures.token("nearbylight", f"{{{{randomInt 0 {made.nearby_light}}}}}")
    return (
        ("feed_normal", 150, {}),  # its config draws readers at random already
        ("get_task", 60, {}),
        (
            "feed_nearby",
            20,
            {
                "data_file": "bench/data/feed_nearby_light.json",
                "metadata": json.dumps({"authorization": f"Bearer {nearby}"}),
            },
        ),
    )


SOAK_SAMPLE_SECONDS = 10.0
SOAK_SETTLE_SECONDS = 60.0  # the shortest settling time


def soak_settle_seconds(soak_seconds: float) -> float:
    """When the slope's samples start: the first half of the soak is warm-up. Fresh processes
    grow for minutes while their bounded caches fill (20,000 encoded cards per API version
    each, prepared statements, allocator arenas), a growth that levels off; a leak keeps its
    rate, so it shows in the second half as well."""
    return max(SOAK_SETTLE_SECONDS, soak_seconds / 2)


def rss_slopes(samples: Sequence[tuple[float, Mapping[str, float]]]) -> dict[str, float]:
    """Least-squares slope of each process's RSS, MiB per hour, over (seconds, {name: MiB})."""
    slopes: dict[str, float] = {}
    names = set().union(*(mib for _, mib in samples)) if samples else set()
    for name in sorted(names):
        points = [(t, mib[name]) for t, mib in samples if name in mib]
        if len(points) < 3:
            continue
        mean_t = sum(t for t, _ in points) / len(points)
        mean_m = sum(m for _, m in points) / len(points)
        spread = sum((t - mean_t) ** 2 for t, _ in points)
        if spread:
            slope = sum((t - mean_t) * (m - mean_m) for t, m in points) / spread
            slopes[name] = round(slope * 3600, 1)
    return slopes


def _soak(session: Session, running: servers.Running, made: fixtures.Fixtures) -> None:
    """Mixed traffic for soak_seconds, each process's RSS sampled meanwhile: its slope (MiB per
    hour, after the first minute) shows a leak that a one-minute run hides."""
    plan = session.plan
    _fill(session, running.host, made, "soak.fill")
    samples: list[tuple[float, dict[str, float]]] = []
    results: dict[str, ghz.Result] = {}
    failures: list[BaseException] = []

    def drive(config: str, rate: int, overrides: dict[str, str]) -> None:
        # ghz.run, not session.call: the three run at once, so the server's CPU time is the
        # soak's as a whole (below), not any one run's
        try:
            results[config] = ghz.run(
                session.binary,
                config,
                running.host,
                session.folder / f"soak.{config}.json",
                concurrency=plan.concurrency,
                connections=plan.connections,
                rps=rate,
                duration=f"{plan.soak_seconds}s",
                **overrides,
            )
        except BaseException as exc:  # reported below, after every driver has ended
            failures.append(exc)

    mix = _soak_mix(made)
    drivers = [
        threading.Thread(target=drive, args=one, name=f"soak-{one[0]}", daemon=True) for one in mix
    ]
    cpu_before = running.cpu_seconds()
    started = time.monotonic()
    for thread in drivers:
        thread.start()
    while (alive := next((t for t in drivers if t.is_alive()), None)) is not None:
        samples.append((time.monotonic() - started, running.rss_by_process()))
        alive.join(timeout=SOAK_SAMPLE_SECONDS)  # the next sample, or sooner when it ends
    samples.append((time.monotonic() - started, running.rss_by_process()))
    cpu_spent = running.cpu_seconds() - cpu_before
    if failures:
        raise RuntimeError(f"the soak's traffic failed: {failures[0]}") from failures[0]
    settle = soak_settle_seconds(plan.soak_seconds)
    settled = [(t, mib) for t, mib in samples if t >= settle]
    slopes = rss_slopes(settled)
    count = sum(r.count for r in results.values())
    errors = sum(r.error_count for r in results.values())
    statuses: dict[str, int] = {}
    for result in results.values():
        for code, n in result.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    elapsed = samples[-1][0]
    row = Row(
        "soak",
        f"Soak: mixed reads for {plan.soak_seconds // 60} min (RSS slope per process)",
        ", ".join(f"{config} {rate} req/s" for config, rate, _ in mix),
        {
            "count": count,
            "rps": round(count / elapsed, 1) if elapsed else 0.0,
            "error_count": errors,
            "statuses": statuses,
            "p50_ms": float("nan"),  # three kinds of call: their latencies do not add up
            "p95_ms": float("nan"),
            "p99_ms": max((r.p99_ms for r in results.values()), default=float("nan")),
            "server_cpu_ms": round(cpu_spent * 1000 / count, 3) if count else float("nan"),
            "rss_slope_mib_per_hour": slopes,
            "rss_first_mib": samples[0][1],
            "rss_last_mib": samples[-1][1],
            "bound_mib_per_hour": plan.soak_bound_mib_per_hour,
            "settle_seconds": settle,
            # every sample, so the slope can be re-fitted or drawn from the summary alone
            "rss_samples": [[round(t, 1), mib] for t, mib in samples],
        },
    )
    serving = {name: slope for name, slope in slopes.items() if name != "supervisor"}
    over = {name: slope for name, slope in serving.items() if slope > plan.soak_bound_mib_per_hour}
    row.notes.append(
        f"RSS slope after the first {settle:g} s (warm-up), MiB/h (least squares over a sample "
        f"every {SOAK_SAMPLE_SECONDS:g} s): "
        + ", ".join(f"{name} {slope:+.1f}" for name, slope in slopes.items())
        + f"; bound {plan.soak_bound_mib_per_hour:g} MiB/h per server process: "
        + ("exceeded by " + ", ".join(over) if over else "held")
    )
    row.notes.append(
        "RSS first → last sample: "
        + ", ".join(
            f"{name} {samples[0][1].get(name, 0):.0f} → {mib:.0f}"
            for name, mib in samples[-1][1].items()
        )
    )
    session.rows.append(row)
    logger.info(f"soak: {count:,} calls, {errors} errors, RSS slopes {slopes} MiB/h")


def watch_row(found: Mapping[str, Any]) -> Row:
    """The watch scenario's row from its figures (bench/watch.py)."""
    seconds = found["seconds"] or 1
    row = Row(
        "watch",
        f"WatchFeed: {found['streams']:,} open streams, tasks created at {found['rate']:g}/s",
        f"NEARBY radius {found['radius_m']} m, {found['tasks']:,} tasks in {seconds} s",
        {
            "count": found["received"],
            "rps": round(found["received"] / seconds, 1),
            "error_count": found["lost"] + found["extra"],
            "statuses": {"OK": found["received"], "LOST": found["lost"], "EXTRA": found["extra"]},
            "p50_ms": found["p50_ms"],
            "p95_ms": float("nan"),
            "p99_ms": found["p99_ms"],
            **found,
        },
    )
    row.notes.append(
        f"commit → client latency of ENTERED events: p50 {found['p50_ms']} ms, p99 "
        f"{found['p99_ms']} ms, max {found['max_ms']} ms; {found['expected']:,} deliveries"
        f" expected, {found['lost']} lost, {found['extra']} extra"
    )
    row.notes.append(
        "server RSS with the streams open → after the run (MiB): "
        + ", ".join(
            f"{name} {mib:.0f} → {found['rss_after_mib'].get(name, float('nan')):.0f}"
            for name, mib in found["rss_open_mib"].items()
        )
        + f"; {found['streams_live']:,} of {found['streams']:,} streams live after"
        f" {found['open_seconds']} s, over {found['connections']} connections"
        + (f"; failures: {found['failures']}" if found["failures"] else "")
    )
    return row


def _watch(session: Session, running: servers.Running, url: str) -> None:
    plan = session.plan
    before = running.cpu_seconds()
    found = watch.run(
        url,
        running.host,
        streams=plan.watch_streams,
        rate=plan.watch_rate,
        seconds=plan.watch_seconds,
        rss=running.rss_by_process,
    )
    row = watch_row(found)
    if running.process.poll() is not None:  # a server process died: the group stopped
        row.notes.append(
            f"the server stopped during the run (exit {running.process.returncode}): see "
            f"{running.log.relative_to(ROOT)}; the CPU and memory figures are not the run's"
        )
    elif found["received"]:
        spent = running.cpu_seconds() - before
        row.result["server_cpu_ms"] = round(spent * 1000 / found["received"], 3)
    session.rows.append(row)
    logger.info(f"watch: {found}")


def _commit(plan: Plan) -> str:
    """The commit of the server measured (another checkout's, for a before run)."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=plan.server_root or ROOT,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


def _plan_json(plan: Plan) -> dict[str, Any]:
    found = asdict(plan)
    found["only"] = sorted(plan.only)
    found["server_root"] = str(plan.server_root) if plan.server_root else None
    return found
