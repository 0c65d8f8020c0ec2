"""Prometheus metrics for every call: started, handled by final status code, latency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio

from server import metrics
from server.interceptors.base import AroundInterceptor, final_code, split_method


class MetricsInterceptor(AroundInterceptor):
    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        service, name = split_method(method)
        metrics.RPC_STARTED.labels(service, name).inc()
        started = time.perf_counter()
        outcome: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            metrics.RPC_LATENCY.labels(service, name).observe(time.perf_counter() - started)
            code = final_code(context, outcome)
            metrics.RPC_HANDLED.labels(service, name, code.name).inc()
