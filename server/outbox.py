"""The transactional outbox: how domain code asks for background work.

    async with db.transaction() as tx:
        ... the change ...
        await outbox.enqueue(tx, "email.send", {"template": "verify_email", "to": email},
                             secrets={"link": link})

The row commits (or rolls back) with the change; the relay (jobs/relay.py) sends committed rows
to Dramatiq, and each actor does its work once per row (jobs/once.py). `secrets` travel with
the job but are erased from the row once it is done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb

from server.db import Session

# Every job the outbox may carry: each is a Dramatiq actor taking (outbox_id, payload)
# (tests/unit/test_jobs.py checks the two lists agree).
JOBS = frozenset(
    {"email.send", "sms.send", "capability.recompute", "upload.process", "session.forget"}
    | {"sms.urgent_fanout"}
    | {"trust.evaluate"}
)


async def enqueue(
    tx: Session,
    job: str,
    payload: Mapping[str, Any] | None = None,
    *,
    secrets: Mapping[str, Any] | None = None,
    delay: timedelta = timedelta(0),
) -> int:
    """Write a job in the caller's transaction; returns its outbox id."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}")
    body = dict(payload or {})
    if secrets:
        body["secrets"] = dict(secrets)
    json.dumps(body)  # fail here, in the caller, on anything JSON cannot carry
    outbox_id = await tx.scalar("outbox_enqueue", int, job=job, payload=Jsonb(body), delay=delay)
    assert outbox_id is not None
    return outbox_id
