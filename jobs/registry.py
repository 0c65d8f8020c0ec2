"""The module the worker loads: the broker, then every actor module."""

from jobs import maintenance
from jobs.broker import broker

__all__ = ["broker", "maintenance"]
