"""Liveness of what the server depends on (PostgreSQL, Redis), checked every few seconds.

The result drives the standard `grpc.health.v1.Health` service (SERVING / NOT_SERVING for the
server and each of its services) and the HTTP `/health` endpoint, which names what is failing.
A *critical* dependency failing (the database) makes the server NOT_SERVING (/health 503); any
other (Redis: sessions, rate limits and the feed fall back to the database and per-process
budgets) makes it *degraded*: still SERVING, /health 200 with `"status": "degraded"` naming it,
so that a load balancer does not turn a tolerated outage into a full one.
Draining (SIGTERM) turns everything NOT_SERVING for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio
from loguru import logger

from server import metrics

Check = Callable[[], Awaitable[object]]
# while a dependency fails, it is checked this often (however long HEALTH_CHECK_INTERVAL is)
RECHECK_SECONDS = 0.5
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class HealthState:
    failing: dict[str, str] = field(default_factory=dict)  # dependency -> why
    critical: frozenset[str] = frozenset({"database"})  # without these nothing is served
    checked: bool = False
    draining: bool = False

    @property
    def serving(self) -> bool:
        """Calls are served (perhaps degraded): checked, not draining, nothing critical down."""
        return self.checked and not self.draining and not (self.critical & self.failing.keys())

    @property
    def degraded(self) -> dict[str, str]:
        """The failing dependencies the server serves without."""
        return {name: why for name, why in self.failing.items() if name not in self.critical}


class _HealthServicer(health_aio.HealthServicer):
    """grpcio's asyncio health servicer, plus the protocol's List (which it leaves to the
    generated base: a sync NotImplementedError, answered INTERNAL)."""

    async def List(self, request: Any, context: Any) -> Any:
        statuses = {
            name: health_pb2.HealthCheckResponse(status=status)
            for name, status in self._server_status.items()  # type: ignore[attr-defined]
        }
        # (the type stubs predate List)
        return health_pb2.HealthListResponse(statuses=statuses)  # type: ignore[attr-defined]


class HealthMonitor:
    def __init__(
        self,
        checks: dict[str, Check],
        service_names: Sequence[str],
        *,
        interval: float,
        timeout: float = 3.0,
        critical: frozenset[str] = frozenset({"database"}),
    ) -> None:
        self.servicer = _HealthServicer()
        self.state = HealthState(critical=critical)
        self._checks = checks
        self._services = ["", *service_names]
        self._interval = interval
        self._timeout = min(timeout, max(interval, 0.5))

    async def _probe(self, name: str, check: Check) -> str | None:
        try:
            await asyncio.wait_for(check(), self._timeout)
        except TimeoutError:
            return f"no answer within {self._timeout:g} s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}".strip()[:200]
        return None

    async def check_once(self) -> HealthState:
        names = list(self._checks)
        results = await asyncio.gather(*(self._probe(n, self._checks[n]) for n in names))
        failing = {name: why for name, why in zip(names, results, strict=True) if why}
        for name, why in failing.items():
            if name not in self.state.failing:
                logger.bind(dependency=name, error=why).warning("dependency down")
        for name in self.state.failing:
            if name not in failing:
                logger.bind(dependency=name).info("dependency up again")
        for name in names:
            metrics.DEPENDENCY_UP.labels(name).set(0 if name in failing else 1)
        self.state.failing = failing
        self.state.checked = True
        status = SERVING if self.state.serving else NOT_SERVING
        for service in self._services:
            await self.servicer.set(service, status)
        return self.state

    async def run(self) -> None:
        """Check forever, every `interval` seconds (the first check is `check_once` at start),
        and every RECHECK_SECONDS while something fails, so that recovery shows at once."""
        while not self.state.draining:
            failing = bool(self.state.failing)
            await asyncio.sleep(min(self._interval, RECHECK_SECONDS) if failing else self._interval)
            try:
                await self.check_once()
            except Exception as exc:  # never let the monitor die: health would freeze
                metrics.LOOP_UP.labels("health_monitor").set(0)
                metrics.LOOP_FAILURES.labels("health_monitor", "unexpected").inc()
                logger.opt(exception=exc).error("health check failed; checking again")
            else:
                metrics.LOOP_UP.labels("health_monitor").set(1)

    async def drain(self) -> None:
        self.state.draining = True
        await self.servicer.enter_graceful_shutdown()
