"""Throwaway checkouts for scripts/services.sh: just what the script needs, in a folder of the
test's choosing (a private one, a path with spaces), with ports of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Checkout:
    root: Path
    env: dict[str, str]

    def services(self, command: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["scripts/services.sh", command],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def variables(self) -> dict[str, str]:
        """The values .dev/env exports (`export NAME=${NAME:-value}` lines)."""
        found = {}
        for line in (self.root / ".dev" / "env").read_text().splitlines():
            name, _, rest = line.removeprefix("export ").partition("=")
            found[name] = rest.strip('"').removeprefix("${" + name + ":-").removesuffix("}")
        return found

    def server(self, *command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`python -m server COMMAND` on this checkout's services (this repository's code)."""
        return subprocess.run(
            [sys.executable, "-m", "server", *command],
            cwd=ROOT,
            env={**self.env, **self.variables(), "APP_ENV": "test", "LOG_FORMAT": "json"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def make_checkout(home: Path, services: dict[str, str] | None = None) -> Checkout:
    """A copy of what scripts/services.sh needs at `home`/"hustle clone" (a path with spaces).

    `services` may name services to use instead of starting them (REDIS_URL, ...); the others
    get free ports of their own.
    """
    root = home / "hustle clone"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "services.sh", root / "scripts" / "services.sh")
    (root / ".venv").symlink_to(ROOT / ".venv")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL"}
        and not name.startswith(("HUSTLE_", "PGBACKREST_"))
    }
    env.update(
        HUSTLE_PG_PORT=str(free_port()),
        HUSTLE_REDIS_PORT=str(free_port()),
        HUSTLE_S3_PORT=str(free_port()),
        HUSTLE_S3_TLS_PORT=str(free_port()),
    )
    env.update(services or {})
    return Checkout(root, env)


def wait_archived(url: str, timeout: float = 60) -> str:
    """Close the current WAL segment and wait until archive_command has stored it; its name."""
    import time

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE wal_probe ()")  # some WAL, so that the switch happens
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        segment = str(row[0])
        deadline = time.monotonic() + timeout
        while True:
            state = conn.execute(
                "SELECT coalesce(last_archived_wal, ''), failed_count, last_failed_wal"
                " FROM pg_stat_archiver"
            ).fetchone()
            assert state is not None
            if state[0] >= segment:
                return segment
            if time.monotonic() > deadline:
                raise AssertionError(f"{segment} not archived within {timeout} s: {state}")
            time.sleep(0.1)
