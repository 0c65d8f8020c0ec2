"""The module the worker and the scheduler load: the broker, then every actor module."""

from jobs import backups, capabilities, maintenance, messaging, schedules, uploads
from jobs.broker import broker, settings

__all__ = [
    "backups",
    "broker",
    "capabilities",
    "maintenance",
    "messaging",
    "schedules",
    "settings",
    "uploads",
]
