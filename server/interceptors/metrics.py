"""Prometheus metrics for every call: started, handled by final status code, latency.

Server-streaming calls (watch streams, health's Watch) are counted started and handled like any
other, but stay out of the latency histogram: a stream lasts as long as its client wants, and
minutes-long observations would make the unary calls' quantiles meaningless."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc import aio

from server import metrics
from server.interceptors.base import AroundInterceptor, final_code, split_method


class MetricsInterceptor(AroundInterceptor):
    def __init__(self) -> None:
        super().__init__()
        # a method's metric children, looked up once (labels() takes a lock and builds a key)
        self._children: dict[str, tuple[Any, Any, dict[str, Any]]] = {}
        self._streams: set[str] = set()  # methods whose answer is a stream: no latency

    def wrap(
        self, handler: grpc.RpcMethodHandler[Any, Any], method: str
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.response_streaming:
            self._streams.add(method)
        return super().wrap(handler, method)

    def _of(self, method: str) -> tuple[Any, Any, dict[str, Any]]:
        found = self._children.get(method)
        if found is None:
            service, name = split_method(method)
            found = self._children[method] = (
                metrics.RPC_STARTED.labels(service, name),
                metrics.RPC_LATENCY.labels(service, name),
                {},
            )
        return found

    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        started_total, latency, handled = self._of(method)
        streaming = method in self._streams
        started_total.inc()
        started = time.perf_counter()
        outcome: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            if not streaming:
                latency.observe(time.perf_counter() - started)
            code = final_code(context, outcome).name
            counter = handled.get(code)
            if counter is None:
                service, name = split_method(method)
                counter = handled[code] = metrics.RPC_HANDLED.labels(service, name, code)
            counter.inc()
