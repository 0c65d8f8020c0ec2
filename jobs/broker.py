"""The Dramatiq broker: Redis from settings, with retries, time limits, async actors, the
periodic scheduler's middleware, worker resources and job observability.

Importing this module configures the process (logging, Sentry, the global broker), which is
what Dramatiq and periodiq expect of the module named on their command lines (`jobs.registry`).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
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

from jobs.observability import JobObservability
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
    ]
    return RedisBroker(url=str(settings.redis_url), middleware=middleware)  # type: ignore[no-untyped-call]


settings = load_settings()
logs.configure_logging(settings)
observability.configure_sentry(settings)
broker = build_broker(settings)
dramatiq.set_broker(broker)
