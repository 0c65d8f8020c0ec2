"""Where an outbox row's delivery stands, kept current by the worker: a middleware.

- Before each attempt it renews the row's marker in Redis (jobs/relay.py `live_key`), so that
  the marker outlives every wait between retries: while it exists the relay's sweep leaves the
  row alone, and once Redis has lost both (a flush, a restart without the data) it sends the
  row again.
- When a message has failed every retry and goes to the dead-letter queue, it marks the row
  dead: the sweep does not send it again (`python -m server dead-letters --redrive` does). If the
  database cannot be reached then, the marker still expires in time and the sweep sends the row
  once more, which ends in the dead-letter queue again (marked this time) or succeeds.
"""

from __future__ import annotations

import contextlib

import redis.exceptions
from dramatiq import Broker, Middleware
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.broker import MessageProxy
from loguru import logger

from jobs import runtime
from jobs.relay import live_key


class OutboxDelivery(Middleware):
    def __init__(self, live_seconds: int) -> None:
        self._live = live_seconds

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        outbox_id = message.options.get("outbox_id")
        client = getattr(broker, "client", None)
        if outbox_id is None or client is None:
            return
        # the message just came from Redis: should this fail, the next attempt renews it
        with contextlib.suppress(redis.exceptions.RedisError):
            client.set(live_key(outbox_id), 1, ex=self._live)

    def after_nack(self, broker: Broker, message: MessageProxy) -> None:
        outbox_id = message.options.get("outbox_id")
        loop = get_event_loop_thread()
        if outbox_id is None or loop is None:
            return
        error = str(message.options.get("traceback") or "failed every retry")[-500:]
        try:
            loop.run_coroutine(runtime.db().execute("outbox_mark_dead", id=outbox_id, error=error))
        except Exception as exc:
            logger.bind(outbox_id=outbox_id, error=str(exc)).warning(
                "could not mark a dead-lettered outbox row; its marker will expire instead"
            )
