"""Per-job context for logs and Sentry: every log line of a job carries its actor and id."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from loguru import logger

from server import observability, request_context


class JobContext(dramatiq.Middleware):
    """Start a RequestContext per message (request id = message id), log its outcome once."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        request_context.begin(message.message_id, job=message.actor_name)
        message.options["hustle_started"] = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = message.options.pop("hustle_started", None)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
        log = logger.bind(
            job=message.actor_name,
            message_id=message.message_id,
            retries=message.options.get("retries", 0),
            duration_ms=elapsed_ms,
        )
        if exception is None:
            log.info("job done")
        else:
            log.opt(exception=exception).error("job failed")
            observability.capture_exception(exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)
