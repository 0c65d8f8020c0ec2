"""Backups and point-in-time recovery: thin wrappers over pgBackRest, and pg_dump exports.

pgBackRest does the work (full, differential and incremental backups, WAL archiving, retention,
restore to a point in time); these commands name the common cases and show progress:

    python -m server backup [--type full|diff|incr]    take one now (default: incr, or full
                                                        when there is none yet)
    python -m server backup list                       what can be restored, and to when
    python -m server restore --to TIME|latest [--into DIR|URL]
    python -m server backup --logical [--output FILE]  a pg_dump export, for moving data

They run where pgBackRest and the cluster are (its configuration: PGBACKREST_CONFIG, or
pgBackRest's own default /etc/pgbackrest/pgbackrest.conf; its stanza: PGBACKREST_STANZA; both
set by `make run` for the private cluster). As root they run pgBackRest as `postgres`, the
owner of the cluster. Restores are in server/restore.py; docs/RUNBOOK.md has the operator's
steps; jobs/backups.py schedules backups.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.config import Settings

_PERCENT = re.compile(r", (\d+(?:\.\d+)?)%\)")
_LEVEL = re.compile(r"^\S+ \S+ P\d+ +(\w+): (.*)$")  # "2026-12-02 04:44:01.123 P00 INFO: ..."
_LOCK_HELD = 50  # pgBackRest's exit code when another backup of the stanza holds the lock


class BackupError(Exception):
    """A backup or restore did not happen; the message says why, in one or a few lines."""


class BackupBusy(BackupError):
    """Another backup of the same stanza is running."""


@dataclass(frozen=True, slots=True)
class Backup:
    label: str
    kind: str  # full | diff | incr
    started: datetime
    stopped: datetime
    size: int  # bytes of the database when it was taken
    repo_size: int  # bytes it adds to the repository (compressed, deduplicated)
    wal_start: str
    wal_stop: str


@dataclass(frozen=True, slots=True)
class Repository:
    stanza: str
    status: str
    backups: tuple[Backup, ...]
    wal_min: str | None
    wal_max: str | None
    pg_version: str | None


# --- running pgBackRest -----------------------------------------------------------------------


def as_owner() -> list[str]:
    """As root, run the cluster's tools as its owner (`postgres`), as archive_command does."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _stanza(settings: Settings) -> str:
    if not settings.pgbackrest_stanza:
        raise BackupError(
            "backups are not configured here: set PGBACKREST_STANZA (and PGBACKREST_CONFIG"
            " unless it is /etc/pgbackrest/pgbackrest.conf); `make run` sets both for its"
            " private cluster"
        )
    if shutil.which("pgbackrest") is None:
        raise BackupError("pgbackrest is not installed: apt-get install -y pgbackrest")
    return settings.pgbackrest_stanza


def _argv(settings: Settings, command: str, options: Sequence[str]) -> list[str]:
    config = [f"--config={settings.pgbackrest_config}"] if settings.pgbackrest_config else []
    return [*as_owner(), "pgbackrest", *config, f"--stanza={_stanza(settings)}", *options, command]


def _progress_bar(label: str, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=100.0,
        desc=label,
        unit="%",
        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
        file=sys.stderr,
        disable=not show,
    )


def run(settings: Settings, command: str, options: Sequence[str], *, show: bool = True) -> None:
    """Run one pgBackRest command, its per-file percentages as a progress bar.

    Raises BackupError with pgBackRest's own error line when it fails (BackupBusy when another
    backup holds the stanza's lock).
    """
    argv = _argv(settings, command, ["--log-level-console=detail", *options])
    errors: list[str] = []
    with (
        _progress_bar(command, show) as bar,
        subprocess.Popen(  # noqa: S603 - our own argv
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/"
        ) as child,
    ):
        assert child.stdout is not None
        for line in child.stdout:
            line = line.rstrip("\n")
            percent = _PERCENT.search(line)
            if percent:
                bar.update(max(0.0, float(percent.group(1)) - bar.n))
                continue
            parsed = _LEVEL.match(line)
            level, text = parsed.groups() if parsed else ("", line)
            if level in {"ERROR", "WARN"} or (not parsed and line.strip()):
                errors.append(f"{level}: {text}" if level else text)
                if show:
                    bar.write(errors[-1], file=sys.stderr)
            elif level == "INFO" and "command begin" not in text and show:
                bar.write(text, file=sys.stderr)
        code = child.wait()
        if code == 0:
            bar.update(100.0 - bar.n)
    if code == _LOCK_HELD:
        raise BackupBusy(f"another {command} of this stanza is running: " + " ".join(errors))
    if code != 0:
        detail = next((e for e in reversed(errors) if e.startswith("ERROR")), None)
        raise BackupError(f"pgbackrest {command} failed (exit {code}): {detail or errors[-1:]}")


def repository(settings: Settings) -> Repository:
    """What the repository holds (`pgbackrest info`)."""
    done = subprocess.run(  # noqa: S603 - our own argv
        _argv(settings, "info", ["--output=json"]),
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pgbackrest info failed: {(done.stderr or done.stdout).strip()}")
    found: list[dict[str, Any]] = json.loads(done.stdout)
    if not found:
        raise BackupError(f"pgBackRest knows no stanza {settings.pgbackrest_stanza!r}")
    stanza = found[0]
    wal = [a for a in stanza.get("archive", []) if a.get("min")]
    versions = [db["version"] for db in stanza.get("db", [])]

    def moment(value: int) -> datetime:
        return datetime.fromtimestamp(value, UTC)

    return Repository(
        stanza=stanza["name"],
        status=stanza["status"]["message"],
        backups=tuple(
            Backup(
                label=b["label"],
                kind=b["type"],
                started=moment(b["timestamp"]["start"]),
                stopped=moment(b["timestamp"]["stop"]),
                size=int(b["info"]["size"]),
                repo_size=int(b["info"]["repository"]["delta"]),
                wal_start=b["archive"]["start"],
                wal_stop=b["archive"]["stop"],
            )
            for b in stanza.get("backup", [])
        ),
        wal_min=wal[0]["min"] if wal else None,
        wal_max=wal[-1]["max"] if wal else None,
        pg_version=versions[-1] if versions else None,
    )


def take(settings: Settings, kind: str | None = None, *, show: bool = True) -> Backup:
    """A backup now (`kind` full, diff or incr; None: pgBackRest's default, incr, which is
    full when there is none yet), then pgBackRest's retention (expire) runs. The new backup."""
    run(settings, "backup", [f"--type={kind}"] if kind else [], show=show)
    backups = repository(settings).backups
    if not backups:
        raise BackupError("pgbackrest backup ended but the repository lists no backup")
    return backups[-1]


# --- logical exports ------------------------------------------------------------------------------


def logical_export(settings: Settings, output: Path | None, *, show: bool = True) -> Path:
    """pg_dump of DATABASE_URL in its custom format (load with pg_restore), for moving data."""
    import psycopg
    from tqdm import tqdm

    url = settings.database_conninfo
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT current_database(), current_setting('server_version_num')::int / 10000,"
            " (SELECT count(*) FROM pg_tables WHERE schemaname NOT IN"
            "  ('pg_catalog', 'information_schema'))"
        ).fetchone()
    assert row is not None
    name, major, tables = row
    output = output or Path(f"hustle-{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.dump")
    tool = Path(f"/usr/lib/postgresql/{major}/bin/pg_dump")
    pg_dump = str(tool) if tool.exists() else shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(f"pg_dump (PostgreSQL {major}) is not installed")
    last: list[str] = []
    with (
        tqdm(total=tables, desc="dumping tables", file=sys.stderr, disable=not show) as bar,
        subprocess.Popen(  # noqa: S603 - our own argv
            [pg_dump, "--format=custom", "--verbose", f"--file={output}", f"--dbname={url}"],
            stderr=subprocess.PIPE,
            text=True,
        ) as child,
    ):
        assert child.stderr is not None
        for line in child.stderr:
            last = [*last[-4:], line.strip()]
            if "dumping contents of table" in line:
                bar.update(1)
    if child.returncode != 0:
        raise BackupError("pg_dump failed: " + " / ".join(last))
    return output


# --- the commands ---------------------------------------------------------------------------------


def _size(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TB"


def _print_list(settings: Settings) -> None:
    repo = repository(settings)
    print(f"stanza {repo.stanza}: {repo.status} (PostgreSQL {repo.pg_version or '?'})")
    if not repo.backups:
        print("no backup yet: python -m server backup")
        return
    print(f"WAL archived: {repo.wal_min} … {repo.wal_max}")
    print(
        f"restorable to any time from {repo.backups[0].stopped:%Y-%m-%d %H:%M:%S} UTC"
        " to the last archived WAL (python -m server restore --to TIME|latest)"
    )
    print(f"{'label':<34} {'type':<5} {'started (UTC)':<20} {'took':>6} {'size':>9} {'in repo':>9}")
    for b in repo.backups:
        took = (b.stopped - b.started).total_seconds()
        print(
            f"{b.label:<34} {b.kind:<5} {b.started:%Y-%m-%d %H:%M:%S} {took:>5.0f}s"
            f" {_size(b.size):>9} {_size(b.repo_size):>9}"
        )


def report(fail: Callable[[], None]) -> int:
    try:
        fail()
    except BackupError as exc:
        print(f"hustle: {exc}", file=sys.stderr)
        return 1
    return 0


def backup_command(settings: Settings, args: argparse.Namespace) -> int:
    def go() -> None:
        if args.logical:
            written = logical_export(settings, Path(args.output) if args.output else None)
            print(f"wrote {written} (load it with: pg_restore --no-owner -d URL {written})")
        elif args.action == "list":
            _print_list(settings)
        else:
            made = take(settings, args.type)
            print(f"backup {made.label} ({made.kind}) done: {_size(made.repo_size)} added")

    return report(go)


def register(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    """Add `backup` and `restore` to the command line (`server/__main__.py`)."""
    backup = command(
        "backup",
        "server.backup.backup_command",
        "take a backup now (pgBackRest), list them (`backup list`), or export (--logical)",
    )
    backup.add_argument("action", nargs="?", choices=["now", "list"], default="now")
    backup.add_argument("--type", choices=["full", "diff", "incr"], help="default: incr")
    backup.add_argument("--logical", action="store_true", help="a pg_dump export instead")
    backup.add_argument("--output", "-o", help="with --logical: the file to write")
    restore = command(
        "restore",
        "server.restore.restore_command",
        "restore to a point in time (pgBackRest): in place, into a new folder, or a database",
    )
    restore.add_argument(
        "--to", required=True, metavar="TIME", help="ISO 8601 (UTC unless an offset), or latest"
    )
    restore.add_argument(
        "--into",
        metavar="DIR|URL",
        help="a new folder for a restored cluster (left running on --port), or a database URL"
        " to copy the restored database into; default: the stanza's own cluster, stopped",
    )
    restore.add_argument("--port", type=int, help="with --into DIR (default: a free port)")
    restore.add_argument("--database", help="with --into URL: which one (default: DATABASE_URL's)")
