"""Point-in-time recovery with pgBackRest: `python -m server restore --to TIME|latest [--into
DIR|URL]` (see server/backup.py for the set-up, docs/RUNBOOK.md for the operator's steps).

- in place (no --into): the stanza's own cluster, which must be stopped, is restored with
  --delta; started again it replays WAL to the target, promotes onto a new timeline and goes on
  archiving.
- --into DIR: a new cluster in DIR, recovered and left running on --port, with archiving off
  (a copy never writes into the repository).
- --into URL: the same in a temporary cluster, whose database is then copied (pg_dump |
  pg_restore) into the new or empty database at URL; the temporary cluster is deleted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.backup import BackupError, as_owner, report, repository, run
from server.config import Settings


def parse_target(text: str) -> datetime | None:
    """`--to`: an ISO 8601 time (UTC unless it names an offset), or 'latest' (None)."""
    if text.strip().lower() == "latest":
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BackupError(
            f"--to {text!r} is not a time: give one in ISO 8601, e.g. 2026-12-02T03:10:00Z"
            " (UTC unless an offset is given), or 'latest'"
        ) from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value > datetime.now(UTC) + timedelta(minutes=1):
        raise BackupError(f"--to {value:%Y-%m-%d %H:%M:%S} UTC is in the future")
    return value


def _target_options(settings: Settings, target: datetime | None) -> list[str]:
    """pgBackRest's options for the target, after checking that a backup ends before it."""
    backups = repository(settings).backups
    if not backups:
        raise BackupError("the repository holds no backup yet: nothing to restore from")
    if target is None:
        return []  # recover to the end of the archived WAL, then promote
    if target < backups[0].stopped:
        raise BackupError(
            f"the oldest backup ends at {backups[0].stopped:%Y-%m-%d %H:%M:%S} UTC:"
            " no restore to an earlier time (retention keeps 7 days)"
        )
    return [
        "--type=time",
        f"--target={target:%Y-%m-%d %H:%M:%S.%f}+00",
        "--target-action=promote",
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(directory: Path, tool: str) -> str:
    """The tool of the cluster's major version (Debian keeps each in its own folder)."""
    version = (directory / "PG_VERSION").read_text().strip()
    candidate = Path(f"/usr/lib/postgresql/{version}/bin/{tool}")
    found = str(candidate) if candidate.exists() else shutil.which(tool)
    if found is None:
        raise BackupError(f"{tool} (PostgreSQL {version}) is not installed")
    return found


def _owner_can_write(directory: Path) -> bool:
    probe = [*as_owner(), "test", "-w", str(directory), "-a", "-x", str(directory)]
    return subprocess.run(probe, cwd="/", check=False).returncode == 0  # noqa: S603


def _check_unused(directory: Path) -> Path:
    directory = directory.absolute()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"--into {directory}: not an empty folder (restore into a new one)")
    return directory


def _prepare(directory: Path) -> Path:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    if not _owner_can_write(directory):
        raise BackupError(
            f"--into {directory}: the postgres user cannot reach this folder (is it inside a"
            " private home folder?); choose one it can, e.g. under /var/lib/postgresql"
        )
    return directory


def _wait_promoted(
    directory: Path, host: str, port: int, log: Path, timeout: float, show: bool
) -> None:
    """Wait until the restored cluster has replayed to its target, promoted (PostgreSQL then
    deletes recovery.signal) and accepts connections."""
    from tqdm import tqdm

    ready = [_pg_bin(directory, "pg_isready"), "-q", "-h", host, "-p", str(port)]
    ready += ["-U", "postgres"]
    status = [*as_owner(), _pg_bin(directory, "pg_ctl"), "status", "-D", str(directory)]
    started = time.monotonic()
    deadline = started + timeout
    seen_running = False
    with tqdm(
        desc="replaying WAL",
        bar_format="{desc} [{elapsed}]",
        file=sys.stderr,
        disable=not show,
    ) as bar:
        while True:
            promoted = not (directory / "recovery.signal").exists()
            if promoted and subprocess.run(ready, cwd="/", check=False).returncode == 0:  # noqa: S603
                return
            lines = log.read_text(errors="replace").splitlines() if log.exists() else []
            restored = sum("restored log file" in line for line in lines)
            bar.set_description_str(f"replaying WAL: {restored} segment(s) from the repository")
            running = subprocess.run(status, capture_output=True, cwd="/", check=False)  # noqa: S603
            seen_running = seen_running or running.returncode == 0
            # (pg_ctl start returns before the postmaster writes its pid file)
            if running.returncode != 0 and (seen_running or time.monotonic() - started > 10):
                fatal = [line for line in lines if "FATAL" in line or "PANIC" in line]
                raise BackupError(
                    "the restored cluster stopped during recovery: "
                    + (" / ".join(fatal[-3:]) or f"see {log}")
                )
            if time.monotonic() > deadline:
                raise BackupError(f"recovery did not finish within {timeout:.0f} s: see {log}")
            time.sleep(0.25)


def _start(directory: Path, options: str) -> Path:
    log = directory / "restore.log"
    started = subprocess.run(  # noqa: S603 - our own argv
        [
            *as_owner(),
            _pg_bin(directory, "pg_ctl"),
            "start",
            "-W",
            "-D",
            str(directory),
            "-l",
            str(log),
            "-o",
            options,
        ],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    if started.returncode != 0:
        raise BackupError(f"the restored cluster did not start: {started.stderr.strip()}")
    return log


def _stop(directory: Path) -> None:
    subprocess.run(  # noqa: S603 - our own argv
        [*as_owner(), _pg_bin(directory, "pg_ctl"), "stop", "-m", "fast", "-D", str(directory)],
        capture_output=True,
        cwd="/",
        check=False,
    )


def _recover(
    settings: Settings,
    target: datetime | None,
    directory: Path,
    *,
    port: int,
    host: str,
    options: str,
    timeout: float,
    show: bool,
) -> None:
    """Restore a new cluster into `directory` (archiving off: a copy never writes into the
    repository), start it with `options` and wait until it has recovered to `target`."""
    directory = _check_unused(directory)
    target_options = _target_options(settings, target)
    _prepare(directory)
    run(
        settings,
        "restore",
        [f"--pg1-path={directory}", "--archive-mode=off", *target_options],
        show=show,
    )
    log = _start(directory, options)
    try:
        _wait_promoted(directory, host, port, log, timeout, show)
    except BaseException:
        _stop(directory)
        raise


def restore_into_folder(
    settings: Settings,
    target: datetime | None,
    directory: Path,
    *,
    port: int | None = None,
    timeout: float = 6 * 3600,
    show: bool = True,
) -> str:
    """A new cluster in `directory`, recovered to `target` and left running on `port` with the
    source's own configuration and access rules (but no socket). Its URL."""
    port = port or _free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
    _recover(
        settings,
        target,
        directory,
        port=port,
        host="127.0.0.1",
        options=options,
        timeout=timeout,
        show=show,
    )
    return f"postgresql://postgres@127.0.0.1:{port}"


def restore_into_database(
    settings: Settings,
    target: datetime | None,
    url: str,
    *,
    database: str,
    timeout: float = 6 * 3600,
    show: bool = True,
) -> None:
    """Recover `database` to `target` in a temporary cluster and copy it into the (new or
    empty) database at `url`; the temporary cluster is then deleted.

    The temporary cluster listens on no TCP port: only on a socket in a folder of its own that
    only postgres (and root) can enter, where a private pg_hba.conf trusts local connections,
    so the copy works whatever the source's access rules and exposes nothing meanwhile."""
    import psycopg

    _refuse_non_empty(url)
    # a folder the postgres user can reach (mkdtemp makes it 700, owned by us)
    work = Path(tempfile.mkdtemp(prefix="hustle-restore-", dir="/var/tmp"))
    os.chmod(work, 0o755)  # noqa: S103 - what is inside is private to postgres
    private = work / "socket"
    private.mkdir(mode=0o700)
    (private / "pg_hba.conf").write_text("local all all trust\n")
    if os.geteuid() == 0:
        for path in (private, private / "pg_hba.conf"):
            shutil.chown(path, "postgres", "postgres")
    port = _free_port()
    options = (
        f"-p {port} -c listen_addresses='' -c unix_socket_directories='{private}'"
        f" -c hba_file='{private}/pg_hba.conf'"
    )
    source = f"host={private} port={port} user=postgres dbname={database}"
    try:
        _recover(
            settings,
            target,
            work / "data",
            port=port,
            host=str(private),
            options=options,
            timeout=timeout,
            show=show,
        )
        try:
            with psycopg.connect(source) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN"
                    " ('pg_catalog', 'information_schema')"
                ).fetchone()
            _copy_database(work / "data", source, url, int(row[0] if row else 0), show)
        finally:
            _stop(work / "data")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _refuse_non_empty(url: str) -> None:
    import psycopg
    from psycopg import sql

    target = psycopg.conninfo.conninfo_to_dict(url)
    name = str(target.get("dbname") or "")
    if not name:
        raise BackupError(f"--into {url}: name the database to restore into")
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN"
            " ('pg_catalog', 'information_schema')"
        ).fetchone()
    if tables and tables[0]:
        raise BackupError(f"--into {url}: that database has tables; restore into a new one")


def _copy_database(directory: Path, source: str, url: str, tables: int, show: bool) -> None:
    from tqdm import tqdm

    dump = subprocess.Popen(  # noqa: S603 - our own argv
        [_pg_bin(directory, "pg_dump"), "--format=custom", f"--dbname={source}"],
        stdout=subprocess.PIPE,
    )
    load = subprocess.Popen(  # noqa: S603 - our own argv
        [
            _pg_bin(directory, "pg_restore"),
            "--verbose",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            f"--dbname={url}",
        ],
        stdin=dump.stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert dump.stdout is not None
    assert load.stderr is not None
    dump.stdout.close()  # the loader holds the pipe now
    last: list[str] = []
    with tqdm(total=tables, desc="copying tables", file=sys.stderr, disable=not show) as bar:
        for line in load.stderr:
            last = [*last[-4:], line.strip()]
            if "processing data for table" in line:
                bar.update(1)
    if dump.wait() != 0 or load.wait() != 0:
        raise BackupError("copying the restored database failed: " + " / ".join(last))


def restore_in_place(settings: Settings, target: datetime | None, *, show: bool = True) -> None:
    """Restore the stanza's own cluster (PostgreSQL must be stopped) to `target`; it replays
    and promotes when started, and goes on archiving on a new timeline."""
    run(settings, "restore", ["--delta", *_target_options(settings, target)], show=show)


def restore_command(settings: Settings, args: argparse.Namespace) -> int:
    def go() -> None:
        target = parse_target(args.to)
        shown = (
            "the latest archived WAL" if target is None else f"{target:%Y-%m-%d %H:%M:%S.%f} UTC"
        )
        into: str | None = args.into
        if into is None:
            restore_in_place(settings, target)
            print(
                f"restored to {shown}. Start PostgreSQL (make run, or your service manager):"
                " it replays to that point, then promotes onto a new timeline"
            )
        elif re.match(r"^postgres(ql)?://", into):
            database = args.database or psycopg_dbname(settings.database_conninfo)
            restore_into_database(settings, target, into, database=database)
            print(f"database {database} as of {shown} copied into {into}")
        else:
            url = restore_into_folder(settings, target, Path(into), port=args.port)
            print(
                f"restored to {shown} in {into}, running at {url}\n"
                f"stop it with: runuser -u postgres -- pg_ctl stop -D {into}"
            )

    return report(go)


def psycopg_dbname(url: str) -> str:
    import psycopg

    return str(psycopg.conninfo.conninfo_to_dict(url).get("dbname") or "postgres")
