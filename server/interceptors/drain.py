"""Shutdown without cancelling calls: refuse new ones with a retry delay, finish the rest.

grpc's own stop refuses new streams, but the calls that have already arrived and that the
server has not yet picked up (a busy process lags behind) are dropped by grpc core, and their
clients see CANCELLED, which they do not retry. So a SIGTERM first closes this gate: every call
that reaches a handler from then on is answered at once with UNAVAILABLE (HX902) and a retry
delay, which also drains grpc's backlog; calls already inside handlers run to the end. Once none
is in flight and no new call has arrived for a moment (clients are waiting out their delay), the
server stops for real (server/app.py `HustleServer.stop`). Health and reflection pass through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio

from server import metrics
from server.errors import HxError
from server.interceptors.base import AroundInterceptor

# calls of these services are never refused or waited for (a health Watch lasts forever)
EXEMPT = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# how long a client is told to wait before it retries elsewhere
RETRY_SECONDS = 1.0


class DrainGate:
    """Whether new calls are let in, and how many that were let in have not finished."""

    def __init__(self) -> None:
        self.closed = False
        self.in_flight = 0
        self.last_arrival = 0.0
        self._idle = asyncio.Event()
        self._idle.set()

    def close(self) -> None:
        self.closed = True

    async def settle(self, deadline: float, quiet: float) -> None:
        """Wait (until `deadline`, a time.monotonic()) until no call is in flight and none has
        arrived for `quiet` seconds."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self.in_flight:
                try:
                    await asyncio.wait_for(self._idle.wait(), remaining)
                except TimeoutError:
                    return
                continue
            calm = time.monotonic() - self.last_arrival
            if calm >= quiet:
                return
            await asyncio.sleep(min(quiet - calm, remaining))

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        self.last_arrival = time.monotonic()
        if self.closed:
            metrics.RPC_REFUSED_DRAINING.inc()
            raise HxError(
                "HX902", "The server is shutting down; retry.", retry_after_seconds=RETRY_SECONDS
            )
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()


class DrainInterceptor(AroundInterceptor):
    def __init__(self, gate: DrainGate) -> None:
        super().__init__()
        self._gate = gate

    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        if method.startswith(EXEMPT):
            yield
            return
        async with self._gate.admit():
            yield
