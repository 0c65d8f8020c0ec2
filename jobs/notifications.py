"""sms.urgent_fanout: the SMS about an urgent task to the users nearby who opted in.

Queued by the database (migration 0033's `tasks_enqueue_urgent_fanout`) in the transaction that
makes a task OPEN, funded and urgent. Payload: {"task_id": <uuid>}. The recipients, the caps and
quiet hours are decided in SQL (`urgent_fanout()`), each recipient's decision recorded once in
`urgent_sms_sends`; the SMS themselves go out as `sms.send` rows of the same transaction.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from loguru import logger

from jobs.broker import broker
from jobs.once import once
from server import metrics
from server.db import Session
from server.domain import notifications


@dramatiq.actor(
    actor_name="sms.urgent_fanout", broker=broker, queue_name="messages", time_limit=120_000
)
async def urgent_fanout(outbox_id: int, payload: dict[str, Any]) -> None:
    task_id = payload["task_id"]
    decided: list[notifications.UrgentRecipient] = []

    async def fan_out(tx: Session) -> None:
        decided.extend(await notifications.fan_out_urgent(tx, task_id))

    ran = await once(outbox_id, "sms.urgent_fanout", fan_out)
    if ran:
        for recipient in decided:
            metrics.URGENT_SMS.labels(recipient.outcome.value.lower()).inc()
    logger.bind(
        task_id=task_id,
        sent=sum(r.outcome is notifications.UrgentOutcome.SENT for r in decided),
        dropped=sum(r.outcome is not notifications.UrgentOutcome.SENT for r in decided),
    ).info("urgent fan-out handled")
