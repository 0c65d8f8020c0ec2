"""scripts/services.sh for a clone under a private home folder (mode 700, as /root is).

The `postgres` user cannot enter such a folder, so the script must keep the cluster where that
user can reach it and never hand PostgreSQL a path through the private folder. A throwaway
checkout (just the script, and a link to this checkout's venv for moto) is brought up and
down with its own ports, in a path with spaces; the suite's own services are left alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="scripts/services.sh runs PostgreSQL as the postgres user: needs root",
)


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
            found[name] = rest.removeprefix("${" + name + ":-").removesuffix("}")
        return found


def private_checkout(base: Path, services: dict[str, str] | None = None) -> Checkout:
    """A copy of what scripts/services.sh needs, inside a mode-700 folder, paths with spaces.

    `services` may name services to use instead of starting them (DATABASE_URL, ...); the
    others get free ports of their own.
    """
    home = base / "private home"
    home.mkdir(mode=0o700)
    os.chmod(home, 0o700)
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


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    # PostgreSQL is what cannot reach a private folder: Redis and S3 are the suite's own here
    made = private_checkout(
        tmp_path,
        {name: os.environ[name] for name in ("REDIS_URL", "S3_ENDPOINT_URL") if name in os.environ},
    )
    yield made
    cleaned = made.services("clean")
    assert cleaned.returncode == 0, cleaned.stderr


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def test_up_and_down_from_a_private_home_with_spaces(checkout: Checkout) -> None:
    suite_database = os.environ["DATABASE_URL"]

    up = checkout.services("up")
    assert up.returncode == 0, up.stderr
    url = checkout.variables()["DATABASE_URL"]
    assert f":{checkout.env['HUSTLE_PG_PORT']}/" in url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        data_directory = conn.execute("SHOW data_directory").fetchone()
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    assert data_directory is not None
    # PostgreSQL was never given a path through the folder it cannot enter
    assert not data_directory[0].startswith(str(checkout.root.parent))
    assert (checkout.root / ".dev" / "pg").resolve() / "data" == Path(data_directory[0])

    again = checkout.services("up")
    assert again.returncode == 0, again.stderr
    with psycopg.connect(url) as conn:  # the second `up` reused the running cluster
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone() == started

    down = checkout.services("down")
    assert down.returncode == 0, down.stderr
    assert not answers(url)
    status = checkout.services("status")
    assert "pg: stopped" in status.stdout, status.stdout
    assert answers(suite_database)  # the suite's own cluster was not touched
