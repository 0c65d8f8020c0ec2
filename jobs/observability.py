"""What every job run leaves behind: a log context, metrics, Sentry events for failures, and
(for a sample, SENTRY_TRACES_SAMPLE_RATE) a Sentry performance transaction.

Each message runs in a RequestContext whose request id is the message id, with the actor's
name and (for outbox jobs) the outbox id, so every log line of the run carries them.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import ExitStack
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from loguru import logger

from server import memory, metrics, observability, request_context


class JobObservability(dramatiq.Middleware):
    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._transactions: dict[str, tuple[ExitStack, Any]] = {}
        self._lock = threading.Lock()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        memory.start_sampler("worker")  # this worker process's memory gauges

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        memory.stop_sampler()
        metrics.mark_process_dead(os.getpid())  # its "live" gauges leave /metrics with it

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        ctx = request_context.begin(message.message_id, job=message.actor_name)
        ctx.outbox_id = message.options.get("outbox_id")
        if message.options.get("retries", 0):
            metrics.JOB_RETRIES.labels(message.actor_name).inc()
        stack = ExitStack()
        transaction = stack.enter_context(
            observability.call_transaction("queue.process", message.actor_name)
        )
        with self._lock:
            self._started[message.message_id] = time.perf_counter()
            self._transactions[message.message_id] = (stack, transaction)

    def _finish_transaction(self, message: MessageProxy, status: str) -> None:
        with self._lock:
            stack, transaction = self._transactions.pop(message.message_id, (None, None))
        if transaction is not None:
            transaction.set_status(status)
        if stack is not None:
            stack.close()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            started = self._started.pop(message.message_id, None)
        self._finish_transaction(message, "ok" if exception is None else "internal_error")
        elapsed = time.perf_counter() - started if started is not None else 0.0
        metrics.JOB_SECONDS.labels(message.actor_name).observe(elapsed)
        outcome = "success" if exception is None else "failure"
        metrics.JOB_RUNS.labels(message.actor_name, outcome).inc()
        log = logger.bind(
            retries=message.options.get("retries", 0), duration_ms=round(elapsed * 1000, 1)
        )
        if exception is None:
            log.info("job done")
        else:
            log.opt(exception=exception).error("job failed")
            observability.capture_exception(exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        with self._lock:
            self._started.pop(message.message_id, None)
        self._finish_transaction(message, "cancelled")
        metrics.JOB_RUNS.labels(message.actor_name, "skipped").inc()

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        metrics.JOB_DEAD_LETTERED.labels(message.actor_name).inc()
        logger.bind(job=message.actor_name, message_id=message.message_id).error(
            "job dead-lettered: it failed every retry (see python -m server dead-letters)"
        )
