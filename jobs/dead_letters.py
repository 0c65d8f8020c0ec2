"""Dead-lettered jobs (failed every retry): list them, and send them back to their queue.

Dramatiq's Redis broker keeps them per queue in a sorted set `<ns>:<queue>.XQ` (message id →
time of death) and a hash `<ns>:<queue>.XQ.msgs` (message id → encoded message) for a week.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass(frozen=True, slots=True)
class DeadLetter:
    queue: str
    message_id: str
    actor: str
    died_at: datetime
    retries: int
    outbox_id: int | None
    message: dramatiq.Message[Any]


def _queues(broker: RedisBroker, queue: str | None) -> list[str]:
    declared = sorted(q for q in broker.get_declared_queues() if not q.endswith(".DQ"))
    return [queue] if queue else declared


def _key(broker: RedisBroker, queue: str) -> str:
    return f"{broker.namespace}:{queue}.XQ"


def list_dead(broker: RedisBroker, queue: str | None = None) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    for name in _queues(broker, queue):
        key = _key(broker, name)
        entries = broker.client.zrange(key, 0, -1, withscores=True)
        if not entries:
            continue
        ids = [entry[0] for entry in entries]
        blobs = broker.client.hmget(f"{key}.msgs", ids)
        for (message_id, died_ms), blob in zip(entries, blobs, strict=True):
            if blob is None:
                continue
            message = dramatiq.Message.decode(blob)
            found.append(
                DeadLetter(
                    queue=name,
                    message_id=message_id.decode(),
                    actor=message.actor_name,
                    died_at=datetime.fromtimestamp(died_ms / 1000, UTC),
                    retries=int(message.options.get("retries", 0)),
                    outbox_id=message.options.get("outbox_id"),
                    message=message,
                )
            )
    return sorted(found, key=lambda d: d.died_at)


def redrive(
    broker: RedisBroker, queue: str | None = None, message_ids: set[str] | None = None
) -> int:
    """Put dead-lettered messages back on their queue with a fresh retry budget."""
    moved = 0
    for dead in list_dead(broker, queue):
        if message_ids is not None and dead.message_id not in message_ids:
            continue
        options = {
            k: v for k, v in dead.message.options.items() if k not in ("retries", "traceback")
        }
        broker.enqueue(dead.message.copy(options=options))
        key = _key(broker, dead.queue)
        broker.client.zrem(key, dead.message_id)
        broker.client.hdel(f"{key}.msgs", dead.message_id)
        moved += 1
    return moved


def sizes(broker: RedisBroker) -> dict[str, int]:
    return {name: int(broker.client.zcard(_key(broker, name))) for name in _queues(broker, None)}


class DeadLetterCollector(Collector):
    """`jobs_dead_letter_queue_size{queue}`, read from Redis at each scrape of the worker."""

    NAME = "jobs_dead_letter_queue_size"

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.NAME, "Dead-lettered messages kept, by queue.", labels=["queue"]
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        try:
            for queue, size in sizes(self._broker).items():
                family.add_metric([queue], size)
        except Exception:  # noqa: S110 - Redis down: the gauge is absent, not wrong
            pass
        yield family
