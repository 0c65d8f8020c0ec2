"""The Dramatiq broker: Redis from settings, async actors, worker resources, job context.

Importing this module configures the process (logging, Sentry, the global broker), which is
what Dramatiq expects of the module named on its command line (`jobs.registry`).
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware.asyncio import AsyncIO

from jobs.observability import JobContext
from jobs.runtime import WorkerResources
from server import observability
from server.config import Settings, load_settings


def build_broker(settings: Settings) -> RedisBroker:
    broker = RedisBroker(url=str(settings.redis_url))  # type: ignore[no-untyped-call]
    broker.add_middleware(AsyncIO())
    broker.add_middleware(WorkerResources(settings))
    broker.add_middleware(JobContext())
    return broker


settings = load_settings()
observability.configure_logging(settings)
observability.configure_sentry(settings)
broker = build_broker(settings)
dramatiq.set_broker(broker)
