"""The backup commands' arguments, and when backups are scheduled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from server.backup import BackupError
from server.restore import parse_target
from tests.processes import ROOT


def test_restore_targets_are_iso_times_utc_unless_an_offset_is_given() -> None:
    assert parse_target("latest") is None
    assert parse_target(" LATEST ") is None
    assert parse_target("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_target("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_target("2026-01-02T05:04:05+02:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("an hour ago", "is not a time"),
        ("", "is not a time"),
        ((datetime.now(UTC) + timedelta(hours=2)).isoformat(), "is in the future"),
    ],
)
def test_a_bad_restore_target_says_what_to_give(text: str, says: str) -> None:
    with pytest.raises(BackupError, match=says):
        parse_target(text)


def test_backups_are_scheduled_only_where_a_stanza_is_configured() -> None:
    probe = (
        "import json; from jobs.registry import broker; print(json.dumps({name: str("
        "broker.get_actor(name).options.get('periodic')) for name in"
        " ('backup.full', 'backup.incremental')}))"
    )

    def schedules(stanza: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGBACKREST_")}
        env.update(
            DATABASE_URL="postgresql://unused@127.0.0.1:1/unused",
            REDIS_URL="redis://127.0.0.1:1/0",
            **({"PGBACKREST_STANZA": stanza} if stanza else {}),
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        found: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
        return found

    assert schedules("hustle") == {
        "backup.full": "0 3 * * 0",
        "backup.incremental": "0 */6 * * *",
    }
    assert schedules(None) == {"backup.full": "None", "backup.incremental": "None"}
