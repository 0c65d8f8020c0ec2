"""capability.recompute: derive a user's capability profile after a verification changed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
from loguru import logger

from jobs import runtime
from jobs.broker import broker
from jobs.once import once
from server import metrics
from server.db import Rows, Session


@dataclass(frozen=True, slots=True)
class Profile:
    """A capability profile as recompute_capability() derives it."""

    user_id: str
    location_state: str | None
    trust_tier: int
    trades: dict[str, str]
    insurance_valid_until: datetime | None
    background_check_valid_until: datetime | None
    id_verified: bool
    version: int
    recomputed_at: datetime
    valid_until: datetime | None


_RECOMPUTE = Rows("recompute_capability", Profile)


@dramatiq.actor(
    actor_name="capability.recompute", broker=broker, queue_name="capabilities", time_limit=60_000
)
async def recompute(outbox_id: int, payload: dict[str, Any]) -> None:
    user_id = payload["user_id"]
    derived: list[Profile] = []

    async def derive(tx: Session) -> None:
        profile = await tx.one(_RECOMPUTE, user_id=user_id)
        assert profile is not None  # recompute_capability raises HX302 for no such user
        derived.append(profile)
        until = profile.valid_until.timestamp() if profile.valid_until else None
        # the user's cached feed pages are skipped from the commit on
        tx.on_commit(
            lambda: runtime.feed_cache().profile_changed(
                user_id, profile.version, profile.location_state, until
            )
        )

    started = time.perf_counter()
    try:
        await once(outbox_id, "capability.recompute", derive)
    except Exception:
        metrics.CAPABILITY_RECOMPUTE_FAILURES.inc()
        raise
    metrics.CAPABILITY_RECOMPUTE_SECONDS.observe(time.perf_counter() - started)
    logger.bind(user_id=user_id, version=derived[0].version if derived else None).info(
        "capability profile recomputed"
    )
