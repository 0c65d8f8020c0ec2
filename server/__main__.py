"""The command line: `python -m server serve | worker | migrate`.

Settings come from the environment (and .env.local); a missing or invalid one ends the command
with a single line naming it, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from server.config import Settings, SettingsError, load_settings


def _metrics_dir(settings: Settings, role: str) -> None:
    """Give this process tree an empty prometheus multiprocess folder, before metrics load."""
    if settings.prometheus_multiproc_dir is not None:
        folder = settings.prometheus_multiproc_dir / role
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"hustle-{role}-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    _metrics_dir(settings, "server")
    from server import supervisor

    return supervisor.run(settings)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    """Run Dramatiq's CLI in a session of its own and hand it each stop signal exactly once.

    Process managers such as honcho signal a whole process group; Dramatiq's workers would then
    get the signal twice (once directly, once forwarded by Dramatiq's main process) and take the
    second one as "kill now", dropping in-flight jobs. Here only Dramatiq's main process is
    signalled, and it stops its workers gracefully (WORKER_SHUTDOWN_TIMEOUT = the drain grace).
    """
    _metrics_dir(settings, "worker")
    command = [
        sys.executable, "-m", "dramatiq", "jobs.registry",
        "--processes", str(args.processes or settings.worker_processes),
        "--threads", str(args.threads or settings.worker_threads),
        "--worker-shutdown-timeout", str(int(settings.shutdown_grace_seconds * 1000)),
        "--skip-logging",
    ]  # fmt: skip
    child = subprocess.Popen(command, start_new_session=True)  # noqa: S603 - our own argv
    forwarded = False

    def forward(_signum: int, _frame: object) -> None:
        nonlocal forwarded
        if not forwarded:
            forwarded = True
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return child.wait()


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from server import migrate, observability

    observability.configure_logging(settings)
    url = settings.database_conninfo
    if args.rollback:
        migrate.rollback(url, count=10**6 if args.all else args.steps)
    else:
        migrate.apply(url, up_to=args.to)
    return 0


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from server import observability, seed

    observability.configure_logging(settings)
    if settings.app_env.value == "prod":
        print("hustle: refusing to seed a production database (APP_ENV=prod)", file=sys.stderr)
        return 2
    options = seed.SeedOptions(
        users=args.users, tasks=args.tasks, region=args.region, seed=args.seed,
        batch=args.batch, replace=args.replace,
    )  # fmt: skip
    try:
        asyncio.run(seed.seed(settings.database_conninfo, options))
    except (seed.SeedError, ValueError) as exc:
        print(f"hustle: {exc}", file=sys.stderr)
        return 1
    return 0


def _audit(settings: Settings, _: argparse.Namespace) -> int:
    """Check every invariant over whole tables; exit 1 when any row breaks one."""
    import asyncio

    import psycopg

    from server.db import Session, load_queries

    async def run() -> list[tuple[str, int]]:
        async with await psycopg.AsyncConnection.connect(settings.database_conninfo) as conn:
            rows = await Session(conn, load_queries(), settings.slow_query_seconds).all("audit")
            return [(r["rule"], r["violations"]) for r in rows]

    results = asyncio.run(run())
    for rule, violations in results:
        print(f"{'ok ' if violations == 0 else 'BAD'} {violations:>9}  {rule}")
    return 1 if any(v for _, v in results) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gRPC server (SERVER_PROCESSES processes)")
    worker = commands.add_parser("worker", help="run the Dramatiq worker")
    worker.add_argument("--processes", type=int, help="default: WORKER_PROCESSES")
    worker.add_argument("--threads", type=int, help="default: WORKER_THREADS")
    migrate = commands.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--rollback", action="store_true", help="roll back instead")
    migrate.add_argument("--steps", type=int, default=1, help="how many to roll back (default 1)")
    migrate.add_argument("--all", action="store_true", help="roll back every migration")
    migrate.add_argument(
        "--to", metavar="ID", help="apply only up to this migration, e.g. 0003_uploads"
    )
    seed = commands.add_parser("seed", help="fill the database with realistic, deterministic data")
    seed.add_argument("--users", type=int, default=1000)
    seed.add_argument("--tasks", type=int, default=10_000)
    seed.add_argument("--region", help="state codes or metro names, comma-separated (default: all)")
    seed.add_argument("--seed", type=int, default=42, help="random seed (same seed, same data)")
    seed.add_argument("--batch", type=int, default=20_000, help="tasks per COPY transaction")
    seed.add_argument("--replace", action="store_true", help="wipe a non-empty database first")
    commands.add_parser("audit", help="check every invariant over whole tables")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"hustle: {exc}", file=sys.stderr)
        return 2
    handlers = {
        "serve": _serve, "worker": _worker, "migrate": _migrate, "seed": _seed, "audit": _audit,
    }  # fmt: skip
    return handlers[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
