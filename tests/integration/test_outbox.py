"""The outbox, the relay and the messaging actors, end to end: real Postgres, Redis, worker,
and the real SendGrid and Twilio SDKs talking to the capturing endpoint."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import dramatiq
import psycopg
import pytest
from dramatiq.brokers.redis import RedisBroker

from jobs.relay import message_for
from server import outbox
from server.db import Database
from tests.helpers import eventually
from tests.jobs_harness import Capture, Worker, send


async def rows(database_url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()


async def test_change_and_email_commit_together(
    db: Database, capture: Capture, worker: Worker, database_url: str
) -> None:
    user = uuid.uuid4()
    async with db.transaction() as tx:
        await tx.conn.execute(
            "INSERT INTO users (id, email, password_hash, full_name) VALUES (%s, 'dana@example.com', %s, 'Dana')",
            (user, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"),
        )
        await outbox.enqueue(
            tx,
            "email.send",
            {"template": "verify_email", "to": "dana@example.com", "params": {"name": "Dana"}},
            secrets={"link": "https://app/v?t=1"},
        )

    with pytest.raises(RuntimeError, match="domain failure"):
        async with db.transaction() as tx:
            await outbox.enqueue(
                tx,
                "email.send",
                {
                    "template": "verify_email",
                    "to": "ghost@example.com",
                    "params": {"name": "Ghost"},
                },
                secrets={"link": "x"},
            )
            raise RuntimeError("domain failure after the enqueue")

    await send(
        db, "sms.send", {"template": "phone_otp", "to": "+15550001111"}, {"code": "000000"}
    )  # a marker
    captured = await eventually(
        lambda: list(capture.state.captured),
        lambda c: len(c) >= 2,
        timeout=20,
        what=lambda: f"two messages\n{worker.process.output}",
    )
    assert [c.get("to") for c in captured if c["kind"] == "email"] == [["dana@example.com"]]
    assert await rows(
        database_url, "SELECT count(*) FROM outbox WHERE payload->>'to' = 'ghost@example.com'"
    ) == [(0,)]
    assert await rows(database_url, "SELECT count(*) FROM users WHERE id = %s", user) == [(1,)]


async def test_sendgrid_request_is_right(db: Database, capture: Capture, worker: Worker) -> None:
    await send(
        db,
        "email.send",
        {"template": "password_reset", "to": "lee@example.com", "params": {"name": "Lee <b>"}},
        {"link": "https://app.example/reset?token=tok123"},
    )
    [email] = await eventually(
        capture.emails, lambda e: len(e) == 1, timeout=20, what=lambda: worker.process.output
    )
    assert email["to"] == ["lee@example.com"]
    assert email["subject"] == "Reset your Hustle password"
    assert email["from"] == {"email": "no-reply@hustle.app", "name": "Hustle"}
    assert "https://app.example/reset?token=tok123" in email["text"]
    assert 'href="https://app.example/reset?token=tok123"' in email["html"]
    assert "Lee &lt;b&gt;" in email["html"]
    assert "Lee <b>" in email["text"]


async def test_twilio_request_is_right(
    db: Database, capture: Capture, worker: Worker, database_url: str
) -> None:
    outbox_id = await send(
        db, "sms.send", {"template": "phone_otp", "to": "+15557654321"}, {"code": "482913"}
    )
    [sms] = await eventually(
        capture.sms, lambda s: len(s) == 1, timeout=20, what=lambda: worker.process.output
    )
    assert sms["to"] == "+15557654321"
    assert sms["from"] == "+15005550006"
    assert sms["body"].startswith("482913 is your Hustle verification code")
    # the code left the outbox once the job was done, in the same transaction that marked it done
    payload = await eventually(
        lambda: rows(
            database_url,
            "SELECT payload, done_at IS NOT NULL, dispatched_at <= done_at FROM outbox WHERE id = %s",
            outbox_id,
        ),
        lambda r: "secrets" not in r[0][0],
        what="the secrets to be scrubbed",
    )
    assert payload[0][0]["to"] == "+15557654321"
    assert payload[0][1:] == (True, True)
    assert not any("482913" in line or "7654321" in line for line in worker.process.lines)


async def test_failing_once_is_retried_and_sent_exactly_once(
    db: Database, capture: Capture, worker: Worker
) -> None:
    capture.fail_next(1, status=503)
    await send(
        db,
        "email.send",
        {"template": "verify_email", "to": "ola@example.com", "params": {"name": "Ola"}},
        {"link": "https://app/v"},
    )
    await eventually(
        capture.emails, lambda e: len(e) == 1, timeout=20, what=lambda: worker.process.output
    )
    assert capture.state.attempts == 2  # one refused, one accepted

    def retried() -> float:
        prefix = 'jobs_retries_total{actor="email.send"}'
        lines = [line for line in worker.metrics().splitlines() if line.startswith(prefix)]
        return float(lines[0].split()[-1]) if lines else 0.0

    assert await eventually(retried, lambda n: n == 1, what="the retry in /metrics")
    assert len(capture.emails()) == 1


async def test_a_redelivered_message_is_not_sent_twice(
    db: Database, capture: Capture, worker: Worker, redis_url: str
) -> None:
    outbox_id = await send(
        db,
        "email.send",
        {"template": "verify_email", "to": "kim@example.com", "params": {"name": "Kim"}},
        {"link": "https://app/v"},
    )
    await eventually(capture.emails, lambda e: len(e) == 1, timeout=20)
    # the same outbox row delivered again (a relay that crashed before stamping it would do this)
    producer = RedisBroker(url=redis_url)
    actor = dramatiq.Actor(
        lambda *_: None,
        broker=producer,
        actor_name="email.send",
        queue_name="messages",
        priority=0,
        options={},
    )
    producer.enqueue(
        message_for(
            actor,
            outbox_id,
            {
                "template": "verify_email",
                "to": "kim@example.com",
                "params": {"name": "Kim"},
                "secrets": {"link": "x"},
            },
        )
    )
    producer.close()

    def handled() -> list[dict[str, object]]:
        return [
            e
            for e in worker.logged()
            if e["msg"] == "email handled" and e.get("outbox_id") == outbox_id
        ]

    done = await eventually(
        handled, lambda h: len(h) == 2, timeout=20, what=lambda: worker.process.output
    )
    assert [h["sent"] for h in done] == [True, False]
    assert len(capture.emails()) == 1


async def test_unknown_job_is_marked_failed(
    capture: Capture, worker: Worker, database_url: str
) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute("INSERT INTO outbox (job) VALUES ('no.such_job') RETURNING id")
        (outbox_id,) = await cur.fetchone()
    failed = await eventually(
        lambda: rows(
            database_url,
            "SELECT failed_at IS NOT NULL, last_error FROM outbox WHERE id = %s",
            outbox_id,
        ),
        lambda r: r[0][0],
        timeout=20,
        what="the relay to mark the row failed",
    )
    assert "no actor named 'no.such_job'" in failed[0][1]


async def test_delayed_job_waits_until_due(
    db: Database, capture: Capture, worker: Worker, database_url: str
) -> None:
    async with db.transaction() as tx:
        outbox_id = await outbox.enqueue(
            tx,
            "sms.send",
            {"template": "phone_otp", "to": "+15550002222"},
            secrets={"code": "111111"},
            delay=timedelta(seconds=2),
        )
    due = (await rows(database_url, "SELECT available_at FROM outbox WHERE id = %s", outbox_id))[0][
        0
    ]
    [sms] = await eventually(capture.sms, lambda s: len(s) == 1, timeout=20)
    assert datetime.fromisoformat(sms["received_at"]) >= due
