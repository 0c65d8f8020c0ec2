"""Settings: a missing or invalid variable stops start-up with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from server.config import SettingsError, load_settings
from tests.processes import ROOT

GOOD = {"database_url": "postgresql://u@localhost:5432/db", "redis_url": "redis://localhost:6379/0"}


def test_valid_settings_load_with_the_documented_defaults() -> None:
    s = load_settings(**GOOD)
    assert (s.db_pool_max_size, s.db_connect_timeout_seconds, s.db_pool_max_idle_seconds) == (
        20,
        30.0,
        10.0,
    )
    assert (s.slow_query_seconds, s.shutdown_grace_seconds, s.health_check_interval_seconds) == (
        1.0,
        30.0,
        10.0,
    )
    assert s.server_processes == (os.cpu_count() or 1)


def test_invalid_value_names_the_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**GOOD, grpc_port=70000)
    message = str(caught.value)
    assert "GRPC_PORT" in message
    assert "\n" not in message


def test_bad_database_url_is_refused() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings(database_url="mysql://x", redis_url=GOOD["redis_url"])


def test_every_setting_is_listed_in_env_example() -> None:
    from server.config import Settings

    listed = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line
    }
    missing = {name.upper() for name in Settings.model_fields} - listed
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_command_line_exits_2_with_one_line(tmp_path: object) -> None:
    env = {"PATH": os.environ["PATH"], "REDIS_URL": GOOD["redis_url"], "HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "server", "serve"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("hustle: invalid settings: DATABASE_URL")
