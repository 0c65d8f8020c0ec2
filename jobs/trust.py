"""trust.evaluate: move a user's trust tier one step, if the rules say so (server.domain.trust).

Queued through the outbox by the database when a task the user worked on completes, is lost in
a dispute or cancelled as a no-show, when their ID or phone verification changes, by the
ratings when a rating of their work is revealed, by a promotion (for the next step), and
daily by trust.sweep (jobs/schedules.py). Once per outbox row (jobs/once.py): a penalty
demotes exactly once however often its message is delivered.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from loguru import logger

from jobs import runtime
from jobs.broker import broker
from jobs.once import once
from server.db import Session
from server.domain import trust


@dramatiq.actor(actor_name="trust.evaluate", broker=broker, queue_name="trust", time_limit=60_000)
async def evaluate(outbox_id: int, payload: dict[str, Any]) -> None:
    user_id = payload["user_id"]
    changes: list[trust.TierChange] = []

    async def effect(tx: Session) -> None:
        change = await trust.evaluate(tx, runtime.feed_cache(), user_id, payload.get("event"))
        if change is not None:
            changes.append(change)

    await once(outbox_id, "trust.evaluate", effect)
    for change in changes:
        logger.bind(user_id=user_id, old_tier=change.old_tier, new_tier=change.new_tier).info(
            f"trust tier changed: {change.reason}"
        )
