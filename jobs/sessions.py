"""session.forget: drop revoked sessions' cache entries that Redis could not drop at once.

Queued by `SessionStore.forget` when a revocation commits while Redis is unreachable; the relay
sends it once Redis is back, so the entries never outlive the outage.
Payload: {"user_id": <uuid>, "token_hashes": [<hex sha256>, ...]}.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from jobs import runtime
from jobs.broker import broker
from jobs.once import once
from server.db import Session


@dramatiq.actor(
    actor_name="session.forget", broker=broker, queue_name="sessions", time_limit=30_000
)
async def forget(outbox_id: int, payload: dict[str, Any]) -> None:
    hashes = [bytes.fromhex(h) for h in payload["token_hashes"]]

    async def drop(_: Session) -> None:
        await runtime.sessions().drop(payload["user_id"], hashes)

    await once(outbox_id, "session.forget", drop)
