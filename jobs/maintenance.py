"""Housekeeping actors."""

from __future__ import annotations

import dramatiq
from loguru import logger
from periodiq import cron

from jobs import runtime
from jobs.broker import broker, settings
from server.domain import watch

# Dispatched outbox rows are kept this long for inspection, then purged.
OUTBOX_RETENTION_DAYS = 7
_PURGE_BATCH = 5000


@dramatiq.actor(
    actor_name="outbox.purge",
    broker=broker,
    queue_name="maintenance",
    periodic=cron("30 4 * * *"),
    max_retries=3,
    time_limit=300_000,
)
async def purge_outbox(retention_days: int = OUTBOX_RETENTION_DAYS) -> None:
    """Daily: delete outbox rows dispatched more than `retention_days` ago."""
    db = runtime.db()
    total = 0
    while True:
        purged = await db.execute(
            "purge_dispatched", retention_days=retention_days, batch=_PURGE_BATCH
        )
        total += purged
        if purged < _PURGE_BATCH:
            break
    keys = await db.execute("purge_idempotency_keys")
    logger.bind(purged=total, retention_days=retention_days, idempotency_keys=keys).info(
        "outbox purged"
    )


@dramatiq.actor(
    actor_name="watch.purge",
    broker=broker,
    queue_name="maintenance",
    periodic=cron("20 * * * *"),
    max_retries=3,
    time_limit=300_000,
)
async def purge_watch_events(retention_hours: int | None = None) -> None:
    """Hourly: delete watch events older than WATCH_RETENTION_HOURS (a stream resuming from a
    cursor before them is told to resync, HX601)."""
    hours = retention_hours or settings.watch_retention_hours
    purged = await watch.purge(runtime.db(), hours)
    logger.bind(purged=purged, retention_hours=hours).info("watch events purged")
