"""`python -m server reload [--migrate] COMMAND ...`: development hot reload (`make run`).

Runs `python -m server COMMAND ...` and restarts it whenever a Python, SQL or template file of
the project changes (watchfiles, which uses inotify through the Rust `notify` crate), so that
the server, the worker and the scheduler always run the code on disk. PostgreSQL, Redis and S3
are not touched: `make run` starts them before and leaves them running. With `--migrate`, a
change under migrations/ is applied (`python -m server migrate`) before the restart; only the
server's watcher migrates, so that one change is applied once.

A restart is the same as a deploy's: SIGINT, the command drains (SHUTDOWN_GRACE_SECONDS), then a
new process starts on the new code. A command that crashes (say, a syntax error) waits for the
next change.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import watchfiles
from loguru import logger

from server.config import ROOT, Settings

WATCHED_DIRS = ("server", "jobs", "hustle", "sql", "templates", "migrations")
SOURCE_SUFFIXES = frozenset({".py", ".sql", ".html", ".txt"})
SETTINGS_FILE = ".env.local"


class SourceFilter(watchfiles.DefaultFilter):
    """Python, SQL and template files (and .env.local); not caches, editors' temporary files or
    anything else that DefaultFilter already ignores (__pycache__, .swp, ~ ...)."""

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        name = Path(path).name
        if name == SETTINGS_FILE:
            return True
        return Path(path).suffix in SOURCE_SUFFIXES and super().__call__(change, path)


def watched_paths(root: Path = ROOT) -> list[Path]:
    paths = [root / name for name in WATCHED_DIRS if (root / name).is_dir()]
    if (root / SETTINGS_FILE).is_file():
        paths.append(root / SETTINGS_FILE)
    return paths


def touches_migrations(paths: Iterable[str], root: Path = ROOT) -> bool:
    folder = root / "migrations"
    return any(Path(path).is_relative_to(folder) for path in paths)


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


def run(settings: Settings, command: Sequence[str], *, migrate: bool, root: Path = ROOT) -> int:
    target = shlex.join([sys.executable, "-m", "server", *command])
    paths = watched_paths(root)
    logger.info(
        f"running `python -m server {shlex.join(command)}`; restarting it when"
        f" {', '.join(p.name for p in paths)} change"
    )

    def callback(changes: set[tuple[watchfiles.Change, str]]) -> None:
        changed = sorted({_relative(path, root) for _, path in changes})
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        logger.info(f"{shown} changed: restarting `{command[0]}`")
        if migrate and touches_migrations((path for _, path in changes), root):
            logger.info("migrations changed: applying them first")
            done = subprocess.run(
                [sys.executable, "-m", "server", "migrate"], cwd=root, check=False
            )
            if done.returncode != 0:
                logger.error(f"migrate failed (exit {done.returncode}); restarting anyway")

    # SIGTERM or SIGINT end it (watchfiles stops the command first)
    with contextlib.suppress(KeyboardInterrupt):
        watchfiles.run_process(
            *paths,
            target=target,
            target_type="command",
            callback=callback,
            watch_filter=SourceFilter(),
            # the command's own drain, and a little more, before SIGKILL
            sigint_timeout=int(settings.shutdown_grace_seconds) + 5,
        )
    return 0
