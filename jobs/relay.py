"""The outbox relay: committed outbox rows → Dramatiq messages on Redis.

It sleeps on `LISTEN outbox` (the outbox trigger NOTIFYs when rows commit) and sweeps every
RELAY_SWEEP_SECONDS anyway, in case a notification was missed. Each batch is claimed with
`FOR UPDATE SKIP LOCKED` (relays may run side by side), sent, and stamped dispatched in one
transaction: if Redis refuses, the transaction rolls back, the rows stay, and the relay retries
with exponential backoff. A row sent whose stamp is then lost is sent again; actors are
idempotent per outbox id, so nothing is done twice.

It runs as a Dramatiq fork process of `python -m server worker` (`jobs.registry:relay`, where
the broker is wired), and the scheduler's `outbox.sweep` drains it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dramatiq
import psycopg
import redis.exceptions
from loguru import logger

from server import metrics
from server.config import Settings
from server.db import Database, Rows
from server.outage import Backoff, cause_of

LOOP = "outbox_relay"  # its label in background_loop_up / background_loop_failures_total
# the longest wait between two tries while the database or Redis is down (each try is cheap;
# the wait is how late the backlog starts moving once they are back)
RETRY_CEILING_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    job: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class Backlog:
    backlog: int
    oldest_seconds: float
    unfinished: int


_CLAIM = Rows("outbox_claim", OutboxRow)
_CLAIM_UNFINISHED = Rows("outbox_claim_unfinished", OutboxRow)
_BACKLOG = Rows("outbox_backlog", Backlog)
_MESSAGE_IDS = uuid.UUID("5f0c3c2e-1d0b-4d8e-9d61-6a7e1e6f2b10")  # namespace of message ids


def live_key(outbox_id: int) -> str:
    """A marker that lives in Redis beside an outbox row's message while the job is not done.

    The relay writes it right after the message, and every attempt (jobs/delivery.py) renews it,
    so it lasts while the message is queued, running or waiting for a retry. Both live and die
    with Redis's data: a flush, or a restart that lost what was queued, takes them together, and
    a row that is not done and has no marker has lost its message. (Written after the message: a
    torn write can lose the marker alone, which only costs a redundant send.)"""
    return f"hustle:outbox:live:{outbox_id}"


class BrokerUnavailable(Exception):
    """The broker refused a batch; the rows stay in the outbox for the next attempt."""

    def __init__(self, message: str, outbox_ids: list[int]) -> None:
        super().__init__(message)
        self.outbox_ids = outbox_ids


def message_for(
    actor: dramatiq.Actor[..., object], outbox_id: int, payload: object
) -> dramatiq.Message[object]:
    """The message of an outbox row: the same row always gives the same message id."""
    return dramatiq.Message(
        queue_name=actor.queue_name,
        actor_name=actor.actor_name,
        args=(outbox_id, payload),
        kwargs={},
        options={"outbox_id": outbox_id},
        message_id=str(uuid.uuid5(_MESSAGE_IDS, str(outbox_id))),
        message_timestamp=int(time.time() * 1000),
    )


def _send_all(
    broker: dramatiq.Broker, messages: Sequence[dramatiq.Message[object]], live_seconds: int
) -> None:
    for message in messages:
        broker.enqueue(message)
    client = getattr(broker, "client", None)  # the RedisBroker's client
    if client is not None and messages:
        with client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.set(live_key(message.options["outbox_id"]), 1, ex=live_seconds)
            pipe.execute()


def live_seconds(settings: Settings) -> int:
    """How long a marker outlives its last renewal: longer than any wait between two attempts
    (the longest retry backoff) plus the longest run, with a margin."""
    return max(3600, 2 * settings.job_max_backoff_ms // 1000 + 600)


async def drain(
    db: Database,
    broker: dramatiq.Broker,
    batch: int,
    live: int = 3600,
    *,
    at: datetime | None = None,
) -> int:
    """Send every due, committed outbox row; returns how many were sent. Due means by now, or
    by `at` when given (tests run the relay at a chosen time: quiet hours' delayed rows)."""
    sent = 0
    while True:
        async with db.transaction() as tx:
            rows = await tx.all(_CLAIM, batch=batch, at=at)
            messages, ids, jobs = [], [], []
            for row in rows:
                try:
                    actor = broker.get_actor(row.job)
                except dramatiq.errors.ActorNotFound:
                    await tx.execute(
                        "outbox_mark_failed", id=row.id, error=f"no actor named {row.job!r}"
                    )
                    logger.bind(outbox_id=row.id, job=row.job).error(
                        "outbox row has no actor; marked failed"
                    )
                    continue
                messages.append(message_for(actor, row.id, row.payload))
                ids.append(row.id)
                jobs.append(row.job)
            try:
                await asyncio.to_thread(_send_all, broker, messages, live)
            except redis.exceptions.RedisError as exc:
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc}", ids) from exc
            if ids:
                await tx.execute("outbox_mark_dispatched", ids=ids)
        for job in jobs:
            metrics.RELAY_DISPATCHED.labels(job).inc()
        sent += len(ids)
        if len(rows) < batch:
            return sent


def _lost(broker: dramatiq.Broker, ids: Sequence[int]) -> list[int]:
    """The outbox ids whose marker Redis no longer has (their message went with it)."""
    client = getattr(broker, "client", None)
    if client is None or not ids:
        return []
    with client.pipeline(transaction=False) as pipe:
        for outbox_id in ids:
            pipe.exists(live_key(outbox_id))
        present = pipe.execute()
    return [outbox_id for outbox_id, found in zip(ids, present, strict=True) if not found]


async def resend_lost(
    db: Database, broker: dramatiq.Broker, *, after: float, batch: int, live: int = 3600
) -> int:
    """Send again the rows sent at least `after` seconds ago, not done, whose message Redis
    lost; returns how many. Actors are idempotent per outbox id, so a resend that was not needed
    after all (a marker lost alone) does nothing twice."""
    resent = 0
    last = 0
    while True:
        async with db.transaction() as tx:
            rows = await tx.all(_CLAIM_UNFINISHED, after=after, after_id=last, batch=batch)
            if not rows:
                return resent
            last = rows[-1].id
            try:
                lost = set(await asyncio.to_thread(_lost, broker, [r.id for r in rows]))
                messages = [
                    message_for(broker.get_actor(r.job), r.id, r.payload)
                    for r in rows
                    if r.id in lost
                ]
                await asyncio.to_thread(_send_all, broker, messages, live)
            except redis.exceptions.RedisError as exc:
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc}", []) from exc
            if messages:
                await tx.execute(
                    "outbox_mark_resent", ids=[m.options["outbox_id"] for m in messages]
                )
        for message in messages:
            metrics.OUTBOX_RESENT.labels(message.actor_name).inc()
        if messages:
            logger.bind(resent=len(messages)).warning(
                "outbox rows sent again: Redis had lost their messages"
            )
        resent += len(messages)
        if len(rows) < batch:
            return resent


async def observe_backlog(db: Database) -> None:
    row = await db.one(_BACKLOG)
    if row is not None:
        metrics.OUTBOX_BACKLOG.set(row.backlog)
        metrics.OUTBOX_OLDEST_SECONDS.set(row.oldest_seconds)
        metrics.OUTBOX_UNFINISHED.set(row.unfinished)


async def _next_wait(db: Database, sweep: float) -> float:
    due = await db.scalar("outbox_next_due", datetime)
    if due is None:
        return sweep
    remaining = float(due.timestamp()) - time.time()
    return max(0.05, min(sweep, remaining))


async def _wait_for_notify(
    listener: psycopg.AsyncConnection[object], seconds: float, stop: asyncio.Event
) -> None:
    """Return on the first NOTIFY, after `seconds`, or soon after `stop` is set."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        async for _ in listener.notifies(timeout=min(remaining, 1.0), stop_after=1):
            return


async def _serve(
    settings: Settings, db: Database, broker: dramatiq.Broker, stop: asyncio.Event
) -> None:
    """Listen and relay until `stop`; raises when the database (or anything else) fails."""
    backoff = Backoff(ceiling=RETRY_CEILING_SECONDS)
    live = live_seconds(settings)
    next_resend = 0.0
    async with await psycopg.AsyncConnection.connect(
        settings.database_conninfo,
        autocommit=True,
        application_name="hustle-relay-listen",
        connect_timeout=max(1, round(settings.db_connect_timeout_seconds)),
    ) as listener:
        await listener.execute("LISTEN outbox")
        logger.info("outbox relay listening")
        while not stop.is_set():
            try:
                sent = await drain(db, broker, settings.relay_batch_size, live)
                if sent:
                    logger.bind(sent=sent).info("outbox rows dispatched")
                if time.monotonic() >= next_resend:
                    await resend_lost(
                        db,
                        broker,
                        after=settings.outbox_resend_after_seconds,
                        batch=settings.relay_batch_size,
                        live=live,
                    )
                    next_resend = time.monotonic() + settings.relay_sweep_seconds
                backoff.reset()
                metrics.LOOP_UP.labels(LOOP).set(1)
                wait = min(
                    await _next_wait(db, settings.relay_sweep_seconds),
                    max(0.05, next_resend - time.monotonic()),
                )
            except BrokerUnavailable as exc:
                metrics.RELAY_ERRORS.inc()
                metrics.LOOP_UP.labels(LOOP).set(0)
                metrics.LOOP_FAILURES.labels(LOOP, "redis").inc()
                wait = backoff.next()
                logger.bind(error=str(exc), retry_in_s=round(wait, 2)).warning(
                    "broker unavailable; outbox rows kept"
                )
                if exc.outbox_ids:
                    await db.execute("outbox_note_error", ids=exc.outbox_ids, error=str(exc)[:500])
            await observe_backlog(db)
            await _wait_for_notify(listener, wait, stop)


async def run(settings: Settings, broker: dramatiq.Broker, stop: asyncio.Event) -> None:
    """The relay until `stop` is set. It outlives any outage: whatever fails (the database, its
    listening connection, Redis, or a bug) is logged, counted in `background_loop_failures_total`
    and retried with backoff; `background_loop_up{loop="outbox_relay"}` is 0 meanwhile."""
    db = Database.from_settings(settings, name="hustle-relay")
    await db.open()
    backoff = Backoff(ceiling=RETRY_CEILING_SECONDS)
    try:
        while not stop.is_set():
            try:
                await _serve(settings, db, broker, stop)
            except Exception as exc:
                cause = cause_of(exc)
                metrics.LOOP_UP.labels(LOOP).set(0)
                metrics.LOOP_FAILURES.labels(LOOP, cause).inc()
                wait = backoff.next()
                error = f"{type(exc).__name__}: {exc}"[:300]
                log = logger.bind(error=error, retry_in_s=round(wait, 2))
                if cause == "unexpected":
                    log.opt(exception=exc).error("outbox relay failed; restarting it")
                else:
                    log.warning(f"outbox relay lost the {cause}; reconnecting")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            else:
                backoff.reset()
    finally:
        await db.close()
        logger.info("outbox relay stopped")
