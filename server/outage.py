"""Living through a dependency's outage: one log line when it starts and one when it ends (not
one per call), what failed, and how long to wait before trying again.

    redis_down = Outage("session cache", "asking the database")
    try:
        cached = await redis.get(key)
    except RedisError as exc:
        redis_down.failed(exc)        # logs a WARNING the first time only
    else:
        redis_down.recovered()        # logs once when it is back (a no-op otherwise)

Both calls cost an attribute check when nothing changes, so they sit on hot paths.
"""

from __future__ import annotations

import random
import time

import psycopg
import psycopg_pool
import redis.exceptions
from loguru import logger

from server.errors import HxError


def cause_of(exc: BaseException) -> str:
    """What an exception says failed: 'database', 'redis' or 'unexpected' (a metric label)."""
    seen: BaseException | None = exc
    while seen is not None:  # look through wrappers (HX902 made from a lost connection, ...)
        if isinstance(seen, psycopg.Error | psycopg_pool.PoolTimeout):
            return "database"
        if isinstance(seen, redis.exceptions.RedisError):
            return "redis"
        if isinstance(seen, HxError) and seen.code == "HX902":
            return "database"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, OSError):
        return "database"
    return "unexpected"


class Outage:
    """Whether one dependency, as one component of one process uses it, is failing now."""

    __slots__ = ("_failures", "_fallback", "_name", "_since", "down")

    def __init__(self, name: str, fallback: str = "") -> None:
        self._name = name
        self._fallback = fallback
        self.down = False
        self._since = 0.0
        self._failures = 0

    def failed(self, exc: BaseException) -> None:
        self._failures += 1
        if self.down:
            return
        self.down = True
        self._since = time.monotonic()
        message = f"{self._name} unavailable" + (f"; {self._fallback}" if self._fallback else "")
        logger.bind(error=f"{type(exc).__name__}: {exc}"[:300]).warning(
            message + " (logged once until it is back)"
        )

    def recovered(self) -> None:
        if not self.down:
            return
        self.down = False
        logger.bind(
            failures=self._failures, outage_s=round(time.monotonic() - self._since, 1)
        ).info(f"{self._name} available again")
        self._failures = 0


class Backoff:
    """Exponential waits with jitter between retries of a loop: 0.5 s doubling to `ceiling`."""

    def __init__(self, first: float = 0.5, ceiling: float = 30.0) -> None:
        self._first = first
        self._ceiling = ceiling
        self._next = first

    def next(self) -> float:
        wait = self._next * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
        self._next = min(self._next * 2, self._ceiling)
        return wait

    def reset(self) -> None:
        self._next = self._first
