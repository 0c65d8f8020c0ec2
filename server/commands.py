"""The server's commands (see `python -m server --help`); each returns an exit code."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from server.config import Settings


def metrics_dir(settings: Settings, role: str) -> None:
    """Give this process tree an empty prometheus multiprocess folder, before metrics load."""
    if settings.prometheus_multiproc_dir is not None:
        folder = settings.prometheus_multiproc_dir / role
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"hustle-{role}-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def serve(settings: Settings, _: argparse.Namespace) -> int:
    metrics_dir(settings, "server")
    from server import supervisor

    return supervisor.run(settings)


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    from server import logs, migrate

    logs.configure_logging(settings)
    url = settings.database_conninfo
    if args.rollback:
        migrate.rollback(url, count=10**6 if args.all else args.steps)
    else:
        migrate.apply(url, up_to=args.to)
    return 0


def seed(settings: Settings, args: argparse.Namespace) -> int:
    from server import logs, seed

    logs.configure_logging(settings)
    if settings.app_env.value == "prod":
        print("hustle: refusing to seed a production database (APP_ENV=prod)", file=sys.stderr)
        return 2
    options = seed.SeedOptions(
        users=args.users,
        tasks=args.tasks,
        region=args.region,
        seed=args.seed,
        batch=args.batch,
        replace=args.replace,
    )
    try:
        asyncio.run(seed.seed(settings.database_conninfo, options))
    except (seed.SeedError, ValueError) as exc:
        print(f"hustle: {exc}", file=sys.stderr)
        return 1
    return 0


def audit(settings: Settings, _: argparse.Namespace) -> int:
    """Check every invariant over whole tables; exit 1 when any row breaks one."""
    import psycopg

    from server.db import Session, load_queries
    from server.domain import system

    async def run() -> list[tuple[str, int]]:
        async with await psycopg.AsyncConnection.connect(settings.database_conninfo) as conn:
            found = await system.audit(Session(conn, load_queries(), settings.slow_query_seconds))
            return [(f.rule, f.violations) for f in found]

    results = asyncio.run(run())
    for rule, violations in results:
        print(f"{'ok ' if violations == 0 else 'BAD'} {violations:>9}  {rule}")
    return 1 if any(v for _, v in results) else 0


def admin(settings: Settings, args: argparse.Namespace) -> int:
    """`admin grant EMAIL`: make the user an admin (logged in admin_actions with the actor
    `cli`, in the same transaction); an existing admin is left as they are."""
    from server import logs
    from server.db import Database
    from server.domain import admin as rules
    from server.errors import HxError

    logs.configure_logging(settings)

    async def run() -> rules.Change:
        db = Database.from_settings(settings, name="hustle-cli")
        await db.open(wait=True)
        try:
            return await rules.grant_by_email(db, args.email, args.reason)
        finally:
            await db.close()

    try:
        change = asyncio.run(run())
    except HxError as exc:
        print(f"hustle: {exc.message}", file=sys.stderr)
        return 1
    who = f"{change.account.email} ({change.account.id})"
    if change.action is None:
        print(f"{who} is an admin already: nothing changed")
    else:
        print(f"{who} is now an admin (admin log #{change.action.id})")
    return 0


def capture(settings: Settings, args: argparse.Namespace) -> int:
    """Run the local SendGrid/Twilio stand-in at CAPTURE_URL (or --port)."""
    from urllib.parse import urlsplit

    from aiohttp import web

    from server import logs
    from server.capture import build_app

    logs.configure_logging(settings)
    where = urlsplit(settings.capture_url)
    port = args.port or where.port or 8025
    print(
        f"capturing SendGrid and Twilio requests on http://{where.hostname}:{port}"
        f" (list them: python -m server captured)",
        flush=True,
    )
    web.run_app(build_app(), host=where.hostname, port=port, print=None, access_log=None)
    return 0


def captured(settings: Settings, args: argparse.Namespace) -> int:
    """List what the capturing endpoint received (newest last)."""
    import json
    import urllib.request

    url = f"{settings.capture_url.rstrip('/')}/captured" + (
        f"?kind={args.kind}" if args.kind else ""
    )
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own endpoint
        entries = json.load(response)
    for entry in entries:
        if entry["kind"] == "email":
            print(f"{entry['received_at']}  email  to {', '.join(entry['to'])}: {entry['subject']}")
        else:
            print(f"{entry['received_at']}  sms    to {entry['to']}: {entry['body']}")
    if not entries:
        print("nothing captured yet")
    return 0


def memory(settings: Settings, args: argparse.Namespace) -> int:
    """tracemalloc in every process of a running server: start, wait, print the top growth."""
    from server import memory_client

    token = args.token or (
        settings.admin_http_token.get_secret_value() if settings.admin_http_token else None
    )
    if not token:
        print(
            "hustle: set ADMIN_HTTP_TOKEN (the server's) or pass --token: /debug/memory is off"
            " without it",
            file=sys.stderr,
        )
        return 2
    url = args.url or f"http://127.0.0.1:{settings.http_port}"
    options = memory_client.Options(
        url=url,
        token=token,
        seconds=args.seconds,
        top=args.top,
        frames=args.frames,
        group_by=args.group_by,
        keep=args.keep,
    )
    try:
        return memory_client.run(options)
    except memory_client.MemoryClientError as exc:
        print(f"hustle: {exc}", file=sys.stderr)
        return 1


def reload(settings: Settings, args: argparse.Namespace) -> int:
    """Development: run a command, restarting it when the project's code changes."""
    from server import logs
    from server import reload as hot_reload

    if not args.target:
        print(
            "hustle: reload needs a command, e.g. `python -m server reload serve`", file=sys.stderr
        )
        return 2
    logs.configure_logging(settings)
    return hot_reload.run(settings, args.target, migrate=args.migrate)
