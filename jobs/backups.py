"""Scheduled backups (pgBackRest), sent by the scheduler when PGBACKREST_STANZA is set.

A full backup every Sunday at 03:00 UTC and an incremental one every 6 hours; WAL archiving
(archive_timeout = 60 s) covers the time between them, so any minute of the last 7 days
(pgBackRest's retention, which runs after each backup) can be restored. They run on a queue of
their own, so that a long backup never holds up the minute-by-minute schedules. pgBackRest
must run where the cluster is: these jobs only make sense for a self-hosted PostgreSQL that
the worker can reach that way (docs/RUNBOOK.md); with a provider's managed PostgreSQL, leave
PGBACKREST_STANZA unset and use the provider's point-in-time recovery.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from loguru import logger
from periodiq import cron

from jobs.broker import broker, settings
from server import backup

FULL = "0 3 * * 0"
INCREMENTAL = "0 */6 * * *"


def _when(spec: str) -> dict[str, Any]:
    """The periodic option, only when backups are configured (periodiq schedules any actor
    that has one)."""
    return {"periodic": cron(spec)} if settings.pgbackrest_stanza else {}


def _take(kind: str) -> None:
    try:
        made = backup.take(settings, kind, show=False)
    except backup.BackupBusy as exc:  # the other one covers this slot; not a failure
        logger.bind(kind=kind).warning(f"backup skipped: {exc}")
        return
    logger.bind(label=made.label, kind=made.kind, repo_bytes=made.repo_size).info("backup done")


@dramatiq.actor(
    actor_name="backup.full",
    broker=broker,
    queue_name="backups",
    max_retries=2,
    time_limit=6 * 3600 * 1000,
    **_when(FULL),
)
def full_backup() -> None:
    """Weekly: a full backup (then retention expires what is older than 7 days)."""
    _take("full")


@dramatiq.actor(
    actor_name="backup.incremental",
    broker=broker,
    queue_name="backups",
    max_retries=2,
    time_limit=3 * 3600 * 1000,
    **_when(INCREMENTAL),
)
def incremental_backup() -> None:
    """Every 6 hours: what changed since the last backup (a full one if there is none)."""
    _take("incr")
