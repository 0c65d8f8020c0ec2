"""The command line: `python -m server <command>` (serve, worker, scheduler, migrate, ...).

Settings come from the environment (and .env.local); a missing or invalid one ends the command
with a single line naming it, and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from server import backup
from server.config import Settings, SettingsError, load_settings

Handler = Callable[[Settings, argparse.Namespace], int]


def _handler(name: str) -> Handler:
    """The command's function, imported only when it runs (each needs different libraries)."""
    from importlib import import_module

    module, _, function = name.rpartition(".")
    handler: Handler = getattr(import_module(module), function)
    return handler


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    command("serve", "server.commands.serve", "run the gRPC server (SERVER_PROCESSES processes)")
    worker = command(
        "worker", "jobs.commands.worker", "run the Dramatiq worker and the outbox relay"
    )
    worker.add_argument("--processes", type=int, help="default: WORKER_PROCESSES")
    worker.add_argument("--threads", type=int, help="default: WORKER_THREADS")
    command("scheduler", "jobs.commands.scheduler", "send the periodic jobs (run exactly one)")

    migrate = command("migrate", "server.commands.migrate", "apply pending migrations")
    migrate.add_argument("--rollback", action="store_true", help="roll back instead")
    migrate.add_argument("--steps", type=int, default=1, help="how many to roll back (default 1)")
    migrate.add_argument("--all", action="store_true", help="roll back every migration")
    migrate.add_argument(
        "--to", metavar="ID", help="apply only up to this migration, e.g. 0003_uploads"
    )

    seed = command(
        "seed", "server.commands.seed", "fill the database with realistic, deterministic data"
    )
    seed.add_argument("--users", type=int, default=1000)
    seed.add_argument("--tasks", type=int, default=10_000)
    seed.add_argument("--region", help="state codes or metro names, comma-separated (default: all)")
    seed.add_argument("--seed", type=int, default=42, help="random seed (same seed, same data)")
    seed.add_argument("--batch", type=int, default=20_000, help="tasks per COPY transaction")
    seed.add_argument("--replace", action="store_true", help="wipe a non-empty database first")
    command("audit", "server.commands.audit", "check every invariant over whole tables")
    admin = command("admin", "server.commands.admin", "admin rights from the command line")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    grant = admin_commands.add_parser(
        "grant", help="make a user an admin (the first one, or any), logged with the actor cli"
    )
    grant.add_argument("email", help="the user's email address")
    grant.add_argument(
        "--reason", default="granted on the command line", help="logged with the grant"
    )
    backup.register(command)  # backup, restore (server/backup.py)

    dead = command(
        "dead-letters", "jobs.commands.dead_letters", "list (or --redrive) dead-lettered jobs"
    )
    dead.add_argument("--queue", help="only this queue")
    dead.add_argument("--redrive", action="store_true", help="send them back to their queue")
    dead.add_argument("message_ids", nargs="*", help="with --redrive: only these messages")

    capture = command(
        "capture", "server.commands.capture", "run the local SendGrid/Twilio stand-in"
    )
    capture.add_argument("--port", type=int, help="default: the port of CAPTURE_URL")
    captured = command("captured", "server.commands.captured", "list what the stand-in captured")
    captured.add_argument("--kind", choices=["email", "sms"])

    mem = command("memory", "server.commands.memory", "tracemalloc in every server process")
    mem.add_argument("--url", help="the server's HTTP port (default: http://127.0.0.1:HTTP_PORT)")
    mem.add_argument("--seconds", type=float, default=60.0, help="how long to trace (default 60)")
    mem.add_argument("--top", type=int, default=15, help="lines to print per process")
    mem.add_argument("--frames", type=int, default=1, help="frames kept per allocation")
    mem.add_argument("--group-by", choices=["lineno", "filename", "traceback"], default="lineno")
    mem.add_argument("--keep", action="store_true", help="leave tracemalloc on afterwards")
    mem.add_argument("--token", help="default: ADMIN_HTTP_TOKEN")

    hot = command("reload", "server.commands.reload", "run a command, restarting it on changes")
    hot.add_argument("--migrate", action="store_true", help="apply changed migrations first")
    hot.add_argument("target", nargs=argparse.REMAINDER, help="serve | worker | scheduler ...")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"hustle: {exc}", file=sys.stderr)
        return 2
    return _handler(args.handler)(settings, args)


if __name__ == "__main__":
    sys.exit(main())
