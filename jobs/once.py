"""Do an outbox job's effect once, however often its message is delivered or retried.

The effect runs inside the transaction that records the outbox row in `job_runs` and marks the
row done: a retry of a finished job finds the record and does nothing; a concurrent delivery
waits on the row lock, then finds it; a failed run rolls both back so that the retry does the
work, and a row that is not done is sent again if Redis loses its message (jobs/relay.py). Only
a crash between a provider accepting a message and the commit can repeat it (docs/RUNBOOK.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from loguru import logger

from jobs import runtime
from server.db import Session


async def once(outbox_id: int, actor: str, effect: Callable[[Session], Awaitable[None]]) -> bool:
    """Run `effect` unless this outbox row was done before; True when it ran."""
    async with runtime.db().transaction() as tx:
        if await tx.scalar("job_claim", int, outbox_id=outbox_id, actor=actor) is None:
            logger.info("job already done for this outbox row; skipped")
            return False
        await effect(tx)
        await tx.execute("outbox_mark_done", id=outbox_id)
    return True
