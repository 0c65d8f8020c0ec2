"""The wiring the worker and the scheduler load: the broker, every actor module, and the outbox
relay's process entry point (`--fork-function jobs.registry:relay`)."""

import asyncio
import signal

from jobs import (
    backups,
    capabilities,
    maintenance,
    messaging,
    notifications,
    relay,
    schedules,
    sessions,
    trust,
    uploads,
)
from jobs.broker import broker, settings
from server.lifecycle import die_with_parent

__all__ = [
    "backups",
    "broker",
    "capabilities",
    "maintenance",
    "messaging",
    "notifications",
    "relay",
    "relay_process",
    "schedules",
    "sessions",
    "settings",
    "trust",
    "uploads",
]


def relay_process() -> None:
    """The outbox relay as a Dramatiq fork process of `python -m server worker`."""
    die_with_parent()

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await relay.run(settings, broker, stop)

    asyncio.run(serve())
