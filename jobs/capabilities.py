"""capability.recompute: derive a user's capability profile after a verification changed."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from loguru import logger

from jobs import runtime
from jobs.broker import broker
from jobs.once import once
from server import metrics
from server.db import Session


@dramatiq.actor(
    actor_name="capability.recompute", broker=broker, queue_name="capabilities", time_limit=60_000
)
async def recompute(outbox_id: int, payload: dict[str, Any]) -> None:
    user_id = payload["user_id"]
    profile: dict[str, Any] = {}

    async def derive(tx: Session) -> None:
        row = await tx.one("recompute_capability", user_id=user_id)
        profile.update(row or {})
        until = row["valid_until"].timestamp() if row and row["valid_until"] else None
        # the user's cached feed pages are skipped from the commit on
        tx.on_commit(
            lambda: runtime.feed_cache().profile_changed(
                user_id, profile["version"], profile["location_state"], until
            )
        )

    started = time.perf_counter()
    try:
        await once(outbox_id, "capability.recompute", derive)
    except Exception:
        metrics.CAPABILITY_RECOMPUTE_FAILURES.inc()
        raise
    metrics.CAPABILITY_RECOMPUTE_SECONDS.observe(time.perf_counter() - started)
    logger.bind(user_id=user_id, version=profile.get("version")).info(
        "capability profile recomputed"
    )
