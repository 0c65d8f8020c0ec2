"""Notifications: in-app rows a user lists and marks read (written in the caller's transaction),
the user's preferences (kind and channel, quiet hours, urgent SMS), the email/SMS they gate, and
the urgent-task SMS fan-out.

When an email or SMS is sent is decided once, when it is queued (`enqueue_for`): a kind turned
off on that channel queues nothing; inside quiet hours the outbox row waits (`available_at`)
until they end. The actor sends what is due and does not decide again, so a row is sent exactly
once whatever the user changes meanwhile. Identity messages (verification link, phone code,
password reset) are queued with `server.outbox.enqueue` directly and ignore all of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from psycopg.types.json import Jsonb

from server import outbox
from server.db import Database, Rows, Session
from server.domain.records import Notification, NotificationKind
from server.errors import HxError, invalid

RETENTION_DAYS = 30  # notification.purge
URGENT_SENDS_RETENTION_DAYS = 90  # longer than any task stays OPEN: one SMS per task, ever


class NotificationChannel(StrEnum):
    IN_APP = "IN_APP"
    EMAIL = "EMAIL"
    SMS = "SMS"


class UrgentOutcome(StrEnum):
    SENT = "SENT"
    DROPPED_QUIET_HOURS = "DROPPED_QUIET_HOURS"
    DROPPED_HOURLY_CAP = "DROPPED_HOURLY_CAP"
    DROPPED_DAILY_CAP = "DROPPED_DAILY_CAP"
    DROPPED_OWN_CAP = "DROPPED_OWN_CAP"


@dataclass(frozen=True, slots=True)
class Preference:
    """Whether `kind` reaches the user on `channel`."""

    kind: NotificationKind
    channel: NotificationChannel
    enabled: bool


@dataclass(frozen=True, slots=True)
class Settings:
    """Quiet hours and urgent SMS, defaults filled in."""

    time_zone: str
    quiet_hours_enabled: bool
    quiet_start_minute: int
    quiet_end_minute: int
    urgent_latitude: float | None
    urgent_longitude: float | None
    urgent_radius_m: int
    urgent_daily_cap: int
    urgent_enabled: bool
    phone_verified: bool


@dataclass(frozen=True, slots=True)
class Preferences:
    preferences: list[Preference]
    settings: Settings


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A change of quiet hours; `time_zone` None: the home state's zone."""

    enabled: bool
    start_minute: int
    end_minute: int
    time_zone: str | None


@dataclass(frozen=True, slots=True)
class UrgentSms:
    """A change of the urgent SMS settings; no point (None, None) clears the saved one."""

    latitude: float | None
    longitude: float | None
    radius_m: int
    daily_cap: int


@dataclass(frozen=True, slots=True)
class Choice:
    """One preference to set, with the request field that asked for it (for errors)."""

    kind: NotificationKind
    channel: NotificationChannel
    enabled: bool
    field: str


@dataclass(frozen=True, slots=True)
class UrgentRecipient:
    user_id: str
    phone: str
    outcome: UrgentOutcome
    distance_m: int


@dataclass(frozen=True, slots=True)
class UrgentTask:
    id: str
    title: str
    price_cents: int
    currency: str


_LIST = Rows("list_notifications", Notification)
_PREFERENCES = Rows("notification_preferences", Preference)
_SETTINGS = Rows("notification_settings", Settings)
_FANOUT = Rows("urgent_fanout", UrgentRecipient)
_URGENT_TASK = Rows("urgent_task", UrgentTask)
KINDS = [kind.value for kind in NotificationKind]


async def notify(
    tx: Session,
    user_id: str,
    kind: NotificationKind,
    title: str,
    body: str = "",
    *,
    task_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    await tx.execute(
        "notify",
        user_id=user_id,
        kind=kind,
        title=title,
        body=body,
        task_id=task_id,
        data=Jsonb(dict(data or {})),
    )


async def enqueue_for(
    tx: Session,
    user_id: str,
    kind: NotificationKind,
    channel: NotificationChannel,
    job: str,
    payload: Mapping[str, Any],
) -> int | None:
    """Queue the email or SMS a notification causes, as the user's preferences and quiet hours
    say (in the caller's transaction): its outbox id, or None when the user turned it off."""
    if job not in outbox.JOBS:
        raise ValueError(f"unknown job {job!r}")
    return await tx.scalar(
        "outbox_enqueue_for_user",
        int,
        job=job,
        payload=Jsonb(dict(payload)),
        user_id=user_id,
        kind=kind,
        channel=channel,
    )


async def list_for(
    db: Database, user_id: str, *, unread_only: bool, after: list[str] | None, limit: int
) -> list[Notification]:
    """The user's notifications, newest first, after the keyset position `after`."""
    created, notification = after if after else (None, None)
    return await db.all(
        _LIST,
        user_id=user_id,
        unread_only=unread_only,
        after_created=created,
        after_id=notification,
        limit=limit,
    )


async def unread_count(db: Database, user_id: str) -> int:
    return await db.scalar("unread_count", int, user_id=user_id) or 0


async def mark_read(db: Database, user_id: str, ids: Sequence[str]) -> int:
    """Mark the user's own unread notifications among `ids` read; how many were."""
    return await db.execute("mark_read", user_id=user_id, ids=list(ids))


async def mark_all_read(db: Database, user_id: str, up_to_id: str | None) -> int:
    """Mark the user's unread notifications up to `up_to_id` (all when None) read."""
    async with db.transaction() as tx:
        if up_to_id is not None and (
            await tx.scalar("notification_owned", str, id=up_to_id, user_id=user_id) is None
        ):
            raise HxError("HX302", "No such notification of yours.", field="up_to_id")
        return await tx.execute("mark_all_read", user_id=user_id, up_to_id=up_to_id)


async def _read(tx: Session, user_id: str) -> Preferences:
    settings = await tx.one(_SETTINGS, user_id=user_id)
    if settings is None:
        raise HxError("HX302", "No such user.")
    return Preferences(await tx.all(_PREFERENCES, user_id=user_id, kinds=KINDS), settings)


async def preferences(db: Database, user_id: str) -> Preferences:
    async with db.snapshot() as tx:
        return await _read(tx, user_id)


async def _set(tx: Session, user_id: str, choices: Sequence[Choice]) -> None:
    if choices:
        await tx.execute(
            "set_preferences",
            user_id=user_id,
            kinds=[c.kind.value for c in choices],
            channels=[c.channel.value for c in choices],
            enabled=[c.enabled for c in choices],
        )


def _urgent_sms(choice: Choice) -> bool:
    return choice.kind is NotificationKind.URGENT_TASK_NEARBY and (
        choice.channel is NotificationChannel.SMS
    )


async def update_preferences(
    db: Database,
    user_id: str,
    *,
    choices: Sequence[Choice] = (),
    quiet_hours: QuietHours | None = None,
    urgent_sms: UrgentSms | None = None,
) -> Preferences:
    """Apply the changes in one transaction: choices that turn something off first, then the
    settings, then those that turn something on (urgent SMS need the saved point they set)."""
    for choice in choices:
        if choice.channel is NotificationChannel.IN_APP and not choice.enabled:
            raise invalid(choice.field, "in-app notifications cannot be turned off")
    async with db.transaction() as tx:
        await _set(tx, user_id, [c for c in choices if not c.enabled])
        if quiet_hours is not None:
            await tx.execute("set_time_zone", user_id=user_id, time_zone=quiet_hours.time_zone)
            await tx.execute(
                "set_quiet_hours",
                user_id=user_id,
                enabled=quiet_hours.enabled,
                start_minute=quiet_hours.start_minute,
                end_minute=quiet_hours.end_minute,
            )
        if urgent_sms is not None:
            if urgent_sms.latitude is None:
                current = await tx.one(_SETTINGS, user_id=user_id)
                if current is not None and current.urgent_enabled:
                    raise invalid(
                        "notification_preferences.urgent_sms.location",
                        "is needed while urgent SMS are on: turn them off first",
                    )
            await tx.execute(
                "set_urgent_sms",
                user_id=user_id,
                latitude=urgent_sms.latitude,
                longitude=urgent_sms.longitude,
                radius_m=urgent_sms.radius_m,
                daily_cap=urgent_sms.daily_cap,
            )
        turned_on = [c for c in choices if c.enabled]
        for choice in filter(_urgent_sms, turned_on):
            current = await tx.one(_SETTINGS, user_id=user_id)
            assert current is not None
            if not current.phone_verified:
                raise invalid(choice.field, "urgent SMS need a verified phone number")
            if current.urgent_latitude is None:
                raise invalid(choice.field, "urgent SMS need a saved urgent_sms.location")
        await _set(tx, user_id, turned_on)
        return await _read(tx, user_id)


def _money(cents: int, currency: str) -> str:
    return f"${cents / 100:,.2f}" if currency == "USD" else f"{cents / 100:,.2f} {currency}"


async def fan_out_urgent(tx: Session, task_id: str) -> list[UrgentRecipient]:
    """The urgent SMS of a task that became OPEN, funded and urgent (the `sms.urgent_fanout`
    job, in its once() transaction): each recipient decided now (urgent_fanout() in SQL: opted
    in, verified phone, active, eligible, within their radius, not considered before; SENT or
    dropped for quiet hours or a cap) gets an in-app notification, and the SENT ones an SMS
    through the outbox. A rerun finds everyone decided and does nothing."""
    task = await tx.one(_URGENT_TASK, task_id=task_id)
    if task is None:
        return []
    recipients = await tx.all(_FANOUT, task_id=task_id)
    price = _money(task.price_cents, task.currency)
    for recipient in recipients:
        km = round(recipient.distance_m / 1000, 1)
        await notify(
            tx,
            recipient.user_id,
            NotificationKind.URGENT_TASK_NEARBY,
            f"Urgent: “{task.title}” {km} km away"[:200],
            f"{price}. Open the task to take it.",
            task_id=task_id,
        )
        if recipient.outcome is UrgentOutcome.SENT:
            await outbox.enqueue(
                tx,
                "sms.send",
                {
                    "template": "urgent_task_nearby",
                    "to": recipient.phone,
                    "params": {"distance_km": km, "task_title": task.title, "price": price},
                },
            )
    return recipients


async def purge(db: Database, batch: int) -> tuple[int, int]:
    """Delete notifications older than RETENTION_DAYS (and urgent-SMS decisions older than
    theirs), a batch per statement; how many of each."""
    notifications = sends = 0
    while (done := await db.execute("purge_notifications", days=RETENTION_DAYS, batch=batch)) > 0:
        notifications += done
        if done < batch:
            break
    while (
        done := await db.execute(
            "purge_urgent_sms_sends", days=URGENT_SENDS_RETENTION_DAYS, batch=batch
        )
    ) > 0:
        sends += done
        if done < batch:
            break
    return notifications, sends
