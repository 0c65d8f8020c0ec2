"""Periodic jobs, sent by the scheduler process (`python -m server scheduler`, periodiq)."""

from __future__ import annotations

import dramatiq
from loguru import logger
from periodiq import cron

from jobs import relay, runtime
from jobs.broker import broker, settings
from server import metrics
from server.domain import messages, notifications, proofs, ratings, tasks, trust, verification

_BATCH = 500


@dramatiq.actor(
    actor_name="task.expire",
    broker=broker,
    queue_name="schedules",
    periodic=cron("* * * * *"),
    max_retries=0,
    time_limit=55_000,
)
async def expire_tasks() -> None:
    """Every minute: OPEN tasks past their deadline become EXPIRED (escrows refunded)."""
    while await tasks.expire_due(runtime.db(), runtime.feed_cache(), _BATCH) == _BATCH:
        pass


@dramatiq.actor(
    actor_name="verification.expire",
    broker=broker,
    queue_name="schedules",
    periodic=cron("15 3 * * *"),
    max_retries=3,
    time_limit=600_000,
)
async def expire_verifications() -> None:
    """Daily: approved credentials past their expiry become EXPIRED."""
    while await verification.expire_due(runtime.db(), _BATCH) == _BATCH:
        pass


@dramatiq.actor(
    actor_name="outbox.sweep",
    broker=broker,
    queue_name="schedules",
    periodic=cron("* * * * *"),
    max_retries=0,
    time_limit=55_000,
)
async def sweep_outbox() -> None:
    """Every minute: dispatch whatever the relay has not (a safety net behind LISTEN/NOTIFY),
    and send again what Redis lost (behind the relay's own sweep)."""
    live = relay.live_seconds(settings)
    await relay.drain(runtime.db(), broker, settings.relay_batch_size, live)
    await relay.resend_lost(
        runtime.db(),
        broker,
        after=settings.outbox_resend_after_seconds,
        batch=settings.relay_batch_size,
        live=live,
    )
    await relay.observe_backlog(runtime.db())


@dramatiq.actor(
    actor_name="proof.review_timeout",
    broker=broker,
    queue_name="schedules",
    periodic=cron("5 * * * *"),
    max_retries=0,
    time_limit=600_000,
)
async def review_timeout() -> None:
    """Hourly: a proof not reviewed within 48 hours is accepted (task completed, worker paid)."""
    await proofs.approve_overdue(runtime.db())


@dramatiq.actor(
    actor_name="notification.purge",
    broker=broker,
    queue_name="schedules",
    periodic=cron("45 4 * * *"),
    max_retries=3,
    time_limit=600_000,
)
async def purge_notifications() -> None:
    """Daily: in-app notifications older than 30 days are deleted (and urgent-SMS decisions
    older than 90)."""
    purged, sends = await notifications.purge(runtime.db(), _BATCH * 10)
    metrics.NOTIFICATIONS_PURGED.inc(purged)
    logger.bind(purged=purged, urgent_sms_sends=sends).info("notifications purged")


@dramatiq.actor(
    actor_name="message.purge",
    broker=broker,
    queue_name="schedules",
    periodic=cron("55 4 * * *"),
    max_retries=3,
    time_limit=600_000,
)
async def purge_messages() -> None:
    """Daily: delete the messages of tasks that ended 90 days ago and were never disputed, and
    their photos (the only DELETE the messages table allows; a disputed task's thread is kept)."""
    deleted, objects = await messages.purge(runtime.db(), runtime.storage())
    logger.bind(deleted=deleted, photo_objects=objects).info("messages purged")


@dramatiq.actor(
    actor_name="rating.close",
    broker=broker,
    queue_name="schedules",
    periodic=cron("10 * * * *"),
    max_retries=0,
    time_limit=600_000,
)
async def close_ratings() -> None:
    """Hourly: each rating window closed without both ratings gets automatic 5-star ratings for
    the missing directions, and both are revealed."""
    while await ratings.close_due(runtime.db(), _BATCH) == _BATCH:
        pass


@dramatiq.actor(
    actor_name="trust.sweep",
    broker=broker,
    queue_name="schedules",
    periodic=cron("45 3 * * *"),
    max_retries=3,
    time_limit=3_600_000,
)
async def sweep_trust() -> None:
    """Daily: evaluate every user whose trust tier may move (lapsed verifications, cool-downs
    and account ages that ran out since their last event)."""
    await trust.sweep(runtime.db(), runtime.feed_cache())
