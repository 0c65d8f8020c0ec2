"""The Dramatiq broker: Redis from settings, with retries, time limits, async actors, the
periodic scheduler's middleware, worker resources and job observability.

Importing this module configures the process (logging, Sentry, the global broker), which is
what Dramatiq and periodiq expect of the module named on their command lines (`jobs.registry`).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from dramatiq.middleware.asyncio import AsyncIO
from periodiq import PeriodiqMiddleware

from jobs.delivery import OutboxDelivery
from jobs.observability import JobObservability
from jobs.relay import live_seconds
from jobs.runtime import WorkerResources
from server import logs, observability
from server.config import Settings, load_settings


def build_broker(settings: Settings) -> RedisBroker:
    middleware = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.job_max_retries,
            min_backoff=settings.job_min_backoff_ms,
            max_backoff=settings.job_max_backoff_ms,
        ),
        PeriodiqMiddleware(skip_delay=60),
        AsyncIO(),
        WorkerResources(settings),
        JobObservability(),
        OutboxDelivery(live_seconds(settings)),
    ]
    return RedisBroker(  # type: ignore[no-untyped-call]
        url=str(settings.redis_url),
        middleware=middleware,
        # A worker that stops calling Redis for this long (it died: SIGKILL, OOM) is declared
        # dead by the others, which put its unfinished messages back in their queues. Dramatiq's
        # default, 60 s, plus its 0.1 % chance of looking per call, took ~3 minutes (issue 19).
        heartbeat_timeout=int(settings.job_heartbeat_timeout_seconds * 1000),
        maintenance_chance=round(settings.job_maintenance_chance * MAINTENANCE_SCALE),
    )


settings = load_settings()
logs.configure_logging(settings)
observability.configure_sentry(settings)
broker = build_broker(settings)
dramatiq.set_broker(broker)
