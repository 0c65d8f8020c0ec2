"""hustle.v2.NotificationService through a real channel: listing and paging newest first, the
unread count, marking read (one's own only), preferences with their typed refusals, and quiet
hours holding an email in the outbox until they end, then sending it exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import grpc
import pytest
from dramatiq.brokers.redis import RedisBroker
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message_factory import GetMessageClass
from grpc import aio

from hustle.v2 import auth_pb2, common_pb2, dispute_pb2, notification_pb2, notification_pb2_grpc
from jobs import relay
from server.db import Database
from tests.api.market import Person
from tests.api.v2.market import V2, fails, invalid, request_id
from tests.helpers import eventually
from tests.jobs_harness import Capture, Worker

N = notification_pb2
S = grpc.StatusCode
KINDS = [v.number for v in N.NotificationKind.DESCRIPTOR.values if v.number]


@pytest.fixture
def notes(v2_channel: aio.Channel) -> notification_pb2_grpc.NotificationServiceStub:
    return notification_pb2_grpc.NotificationServiceStub(v2_channel)


def zone_at(hour: int) -> str:
    """An IANA zone whose local time is now `hour`:MM (an Etc/GMT offset zone)."""
    offset = (hour - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def written(api: V2, user: Person, count: int, *, kind: str = "TASK_ACCEPTED") -> list[str]:
    """`count` notifications of `user`, a minute apart, oldest first; their ids."""
    return [
        str(
            api.world.value(
                "INSERT INTO notifications (user_id, kind, title, created_at)"
                " VALUES (%s, %s, %s, now() - make_interval(mins => %s)) RETURNING id",
                user.user_id,
                kind,
                f"Note {i}",
                count - i,
            )
        )
        for i in range(count)
    ]


async def listed(
    notes: notification_pb2_grpc.NotificationServiceStub,
    user: Person,
    *,
    unread_only: bool = False,
    page_size: int = 0,
) -> list[str]:
    """Every page of the user's list, in order."""
    ids: list[str] = []
    token = ""
    while True:
        page = await notes.ListNotifications(
            N.ListNotificationsRequest(
                unread_only=unread_only, page_size=page_size, page_token=token
            ),
            metadata=user.auth,
            timeout=10,
        )
        ids += [n.notification_id for n in page.notifications]
        token = page.next_page_token
        if not token:
            return ids


async def unread(notes: notification_pb2_grpc.NotificationServiceStub, user: Person) -> int:
    reply = await notes.GetUnreadCount(N.GetUnreadCountRequest(), metadata=user.auth, timeout=10)
    return reply.unread_count


async def test_list_pages_newest_first_and_only_ones_own(api: V2, notes: Any) -> None:
    me, other = api.poster(), api.poster()
    mine = written(api, me, 25)
    theirs = written(api, other, 3)

    first = await notes.ListNotifications(
        N.ListNotificationsRequest(page_size=10), metadata=me.auth, timeout=10
    )
    assert [n.notification_id for n in first.notifications] == mine[::-1][:10]
    assert first.notifications[0].kind == N.NOTIFICATION_KIND_TASK_ACCEPTED
    assert first.notifications[0].title == "Note 24"
    assert not first.notifications[0].HasField("read_at")
    assert await listed(notes, me, page_size=10) == mine[::-1]
    assert await listed(notes, me) == mine[::-1]  # default page 20: two pages
    assert await listed(notes, other) == theirs[::-1]

    # a page over the maximum is the maximum; a token of another list or filter is refused
    many = await notes.ListNotifications(
        N.ListNotificationsRequest(page_size=1000), metadata=me.auth, timeout=10
    )
    assert len(many.notifications) == 25
    unread_page = await notes.ListNotifications(
        N.ListNotificationsRequest(unread_only=True, page_size=5), metadata=me.auth, timeout=10
    )
    assert await invalid(
        notes.ListNotifications(
            N.ListNotificationsRequest(page_token=unread_page.next_page_token), metadata=me.auth
        )
    ) == {"page_token": "is not a page token of this list"}
    assert "page_size" in await invalid(
        notes.ListNotifications(N.ListNotificationsRequest(page_size=-1), metadata=me.auth)
    )


async def test_unread_count_mark_read_and_the_unread_filter(api: V2, notes: Any) -> None:
    me, other = api.poster(), api.poster()
    mine = written(api, me, 6)
    theirs = written(api, other, 2)
    assert (await unread(notes, me), await unread(notes, other)) == (6, 2)

    marked = await notes.MarkRead(
        N.MarkReadRequest(notification_ids=[mine[0], mine[2], *theirs, str(uuid.uuid4())]),
        metadata=me.auth,
        timeout=10,
    )
    assert marked.marked_count == 2  # another's ids and an unknown one are skipped
    assert await unread(notes, other) == 2
    assert (
        api.world.value(
            "SELECT count(*) FROM notifications WHERE user_id = %s AND read_at IS NOT NULL",
            other.user_id,
        )
        == 0
    )
    assert await unread(notes, me) == 4
    assert await listed(notes, me, unread_only=True, page_size=3) == [
        mine[5], mine[4], mine[3], mine[1]
    ]  # fmt: skip
    read_at = api.world.value("SELECT read_at FROM notifications WHERE id = %s", mine[0])

    again = await notes.MarkRead(
        N.MarkReadRequest(notification_ids=[mine[0], mine[0]]), metadata=me.auth, timeout=10
    )
    assert again.marked_count == 0  # read once: read_at stays as it was
    assert api.world.value("SELECT read_at FROM notifications WHERE id = %s", mine[0]) == read_at
    page = await notes.ListNotifications(N.ListNotificationsRequest(), metadata=me.auth)
    shown = {n.notification_id: n for n in page.notifications}
    assert shown[mine[0]].read_at.ToDatetime(tzinfo=UTC) == read_at
    assert not shown[mine[1]].HasField("read_at")


async def test_mark_all_read_up_to_a_notification(api: V2, notes: Any) -> None:
    me, other = api.poster(), api.poster()
    mine = written(api, me, 5)
    theirs = written(api, other, 1)
    await fails(
        notes.MarkAllRead(N.MarkAllReadRequest(up_to_id=theirs[0]), metadata=me.auth),
        S.NOT_FOUND,
        "HX302",
    )
    up_to = await notes.MarkAllRead(N.MarkAllReadRequest(up_to_id=mine[2]), metadata=me.auth)
    assert up_to.marked_count == 3  # it and the two older ones
    assert await listed(notes, me, unread_only=True) == [mine[4], mine[3]]
    newer = written(api, me, 1)  # arrives after the client's screen was drawn
    rest = await notes.MarkAllRead(N.MarkAllReadRequest(), metadata=me.auth)
    assert rest.marked_count == 3
    assert await unread(notes, me) == 0
    assert await unread(notes, other) == 1
    assert newer


async def test_mark_read_input_is_checked(api: V2, notes: Any) -> None:
    me = api.poster()
    assert "notification_ids" in await invalid(
        notes.MarkRead(N.MarkReadRequest(), metadata=me.auth)
    )
    too_many = [str(uuid.uuid4()) for _ in range(101)]
    assert "notification_ids" in await invalid(
        notes.MarkRead(N.MarkReadRequest(notification_ids=too_many), metadata=me.auth)
    )
    assert await invalid(
        notes.MarkRead(
            N.MarkReadRequest(notification_ids=[str(uuid.uuid4()), "nope"]), metadata=me.auth
        )
    ) == {"notification_ids[1]": "is not a valid id"}
    assert "up_to_id" in await invalid(
        notes.MarkAllRead(N.MarkAllReadRequest(up_to_id="nope"), metadata=me.auth)
    )


# the unary ones: WatchNotifications, a stream, has its access tested with the other watch
# streams (tests/api/v2/test_watch.py) and in the authorization matrix
METHODS = [
    m
    for m in N.DESCRIPTOR.services_by_name["NotificationService"].methods
    if not m.server_streaming
]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
async def test_every_rpc_needs_a_signed_in_user(
    api: V2, v2_channel: aio.Channel, method: Any
) -> None:
    """Anonymous: UNAUTHENTICATED (HX401); a bad token too. Signed in: OK, about one's own."""
    request_class = GetMessageClass(method.input_type)
    response_class = GetMessageClass(method.output_type)
    call = v2_channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    me = api.poster()
    mine = written(api, me, 1)
    request = request_class()
    if method.name == "MarkRead":
        request.notification_ids.append(mine[0])
    await fails(call(request, timeout=10), S.UNAUTHENTICATED, "HX401")
    await fails(
        call(request, metadata=(("authorization", "Bearer not-a-token"),), timeout=10),
        S.UNAUTHENTICATED,
        "HX401",
    )
    await call(request, metadata=me.auth, timeout=10)


async def test_preferences_defaults(api: V2, notes: Any) -> None:
    me = api.poster(state="TX")
    prefs = (
        await notes.GetNotificationPreferences(
            N.GetNotificationPreferencesRequest(), metadata=me.auth, timeout=10
        )
    ).notification_preferences
    assert [(p.kind, p.channel) for p in prefs.preferences] == [
        (kind, channel)
        for kind in KINDS
        for channel in (N.NOTIFICATION_CHANNEL_IN_APP, N.NOTIFICATION_CHANNEL_EMAIL,
                        N.NOTIFICATION_CHANNEL_SMS)
    ]  # fmt: skip
    assert all(p.enabled == (p.channel != N.NOTIFICATION_CHANNEL_SMS) for p in prefs.preferences)
    assert prefs.quiet_hours == N.QuietHours(
        enabled=True, start_minute=22 * 60, end_minute=8 * 60, time_zone="America/Chicago"
    )
    assert not prefs.urgent_sms.HasField("location")
    assert (prefs.urgent_sms.radius_meters, prefs.urgent_sms.daily_cap) == (5000, 3)
    assert not prefs.urgent_sms.enabled


def _pref(kind: int, channel: int, enabled: bool) -> N.NotificationPreference:
    return N.NotificationPreference(kind=kind, channel=channel, enabled=enabled)


async def update(
    notes: Any, user: Person, paths: list[str], **resource: Any
) -> N.NotificationPreferences:
    request = N.UpdateNotificationPreferencesRequest(
        notification_preferences=N.NotificationPreferences(**resource),
        update_mask=FieldMask(paths=paths),
    )
    reply = await notes.UpdateNotificationPreferences(request, metadata=user.auth, timeout=10)
    return reply.notification_preferences


def enabled(prefs: N.NotificationPreferences, kind: int, channel: int) -> bool:
    [found] = [p.enabled for p in prefs.preferences if (p.kind, p.channel) == (kind, channel)]
    return found


async def test_update_preferences_and_their_refusals(api: V2, notes: Any) -> None:
    me = api.poster()
    dispute, email, sms = (N.NOTIFICATION_KIND_DISPUTE_OPENED, N.NOTIFICATION_CHANNEL_EMAIL,
                           N.NOTIFICATION_CHANNEL_SMS)  # fmt: skip
    urgent, in_app = N.NOTIFICATION_KIND_URGENT_TASK_NEARBY, N.NOTIFICATION_CHANNEL_IN_APP
    prefs = await update(notes, me, ["preferences"], preferences=[_pref(dispute, email, False)])
    assert not enabled(prefs, dispute, email)
    assert enabled(prefs, N.NOTIFICATION_KIND_DISPUTE_RESOLVED, email)  # the others unchanged
    quiet = N.QuietHours(enabled=True, start_minute=23 * 60, end_minute=6 * 60 + 30,
                         time_zone="America/New_York")  # fmt: skip
    prefs = await update(notes, me, [], quiet_hours=quiet)  # empty mask: what is set
    assert prefs.quiet_hours == quiet
    assert not enabled(prefs, dispute, email)

    def call(paths: list[str], **resource: Any) -> Any:
        return notes.UpdateNotificationPreferences(
            N.UpdateNotificationPreferencesRequest(
                notification_preferences=N.NotificationPreferences(**resource),
                update_mask=FieldMask(paths=paths),
            ),
            metadata=me.auth,
        )

    base = "notification_preferences"
    assert await invalid(call(["preferences"], preferences=[_pref(dispute, in_app, False)])) == {
        f"{base}.preferences[0].enabled": "in-app notifications cannot be turned off"
    }
    assert set(await invalid(call(["preferences"], preferences=[_pref(0, 0, True)]))) == {
        f"{base}.preferences[0].kind", f"{base}.preferences[0].channel"
    }  # fmt: skip
    for zone in ("Mars/Olympus", "EST", "UTC+5", "america/chicago"):
        bad = N.QuietHours(enabled=True, start_minute=1, end_minute=2, time_zone=zone)
        assert set(await invalid(call(["quiet_hours"], quiet_hours=bad))) == {
            f"{base}.quiet_hours.time_zone"
        }, zone
    same = N.QuietHours(enabled=True, start_minute=60, end_minute=60)
    assert set(await invalid(call(["quiet_hours"], quiet_hours=same))) == {
        f"{base}.quiet_hours.end_minute"
    }
    late = N.QuietHours(enabled=True, start_minute=1440, end_minute=60)
    assert set(await invalid(call(["quiet_hours"], quiet_hours=late))) == {
        f"{base}.quiet_hours.start_minute"
    }
    far = N.UrgentSms(location=common_pb2.LatLng(latitude=34.05, longitude=-118.25),
                      radius_meters=16001, daily_cap=21)  # fmt: skip
    assert set(await invalid(call(["urgent_sms"], urgent_sms=far))) == {
        f"{base}.urgent_sms.radius_meters", f"{base}.urgent_sms.daily_cap"
    }  # fmt: skip
    assert "update_mask.paths[0]" in await invalid(call(["time_zone"]))
    # urgent SMS: a verified phone and a saved point first
    on = [_pref(urgent, sms, True)]
    assert await invalid(call(["preferences"], preferences=on)) == {
        f"{base}.preferences[0].enabled": "urgent SMS need a verified phone number"
    }
    api.world.rows(
        "UPDATE users SET phone = '+15555550100', phone_verified_at = now() WHERE id = %s",
        me.user_id,
    )
    assert await invalid(call(["preferences"], preferences=on)) == {
        f"{base}.preferences[0].enabled": "urgent SMS need a saved urgent_sms.location"
    }
    point = N.UrgentSms(location=common_pb2.LatLng(latitude=34.05, longitude=-118.25))
    prefs = await update(notes, me, ["preferences", "urgent_sms"], preferences=on, urgent_sms=point)
    assert enabled(prefs, urgent, sms)
    assert prefs.urgent_sms.enabled
    assert (prefs.urgent_sms.radius_meters, prefs.urgent_sms.daily_cap) == (5000, 3)
    assert round(prefs.urgent_sms.location.latitude, 6) == 34.05
    assert await invalid(call(["urgent_sms"], urgent_sms=N.UrgentSms())) == {
        f"{base}.urgent_sms.location": "is needed while urgent SMS are on: turn them off first"
    }
    # off and cleared in one call: the preference goes first
    prefs = await update(notes, me, ["preferences", "urgent_sms"],
                         preferences=[_pref(urgent, sms, False)], urgent_sms=N.UrgentSms())  # fmt: skip
    assert not prefs.urgent_sms.enabled
    assert not prefs.urgent_sms.HasField("location")
    # nothing half-written by a refused call
    assert (
        api.world.value("SELECT time_zone FROM users WHERE id = %s", me.user_id)
        == "America/New_York"
    )


@pytest.fixture
def producer(redis_url: str) -> Iterator[RedisBroker]:
    """A broker to send outbox rows to the worker with, as the relay does (its actors stand for
    the worker's: only their names and queues matter here)."""
    broker = RedisBroker(url=redis_url)
    for name in ("email.send", "sms.send"):
        dramatiq.Actor(lambda *_: None, broker=broker, actor_name=name, queue_name="messages",
                       priority=0, options={})  # fmt: skip
    yield broker
    broker.close()


async def test_quiet_hours_hold_an_email_until_they_end_then_send_it_once(
    api: V2,
    notes: Any,
    capture: Capture,
    worker: Worker,
    db: Database,
    producer: RedisBroker,
) -> None:
    poster, worker_person = api.poster(), api.worker()
    night, day = zone_at(23), zone_at(12)
    for person, zone in ((worker_person, night), (poster, day)):
        await update(notes, person, ["quiet_hours"], quiet_hours=N.QuietHours(
            enabled=True, start_minute=22 * 60, end_minute=8 * 60, time_zone=zone))  # fmt: skip
    task = await api.post(poster)
    await api.accept(worker_person, task.task_id)
    await api.submit(worker_person, task.task_id)
    opened_at = datetime.now(UTC)
    await api.disputes.OpenDispute(
        dispute_pb2.OpenDisputeRequest(task_id=task.task_id, reason="Not done",
                                       request_id=request_id()),
        metadata=poster.auth, timeout=10,
    )  # fmt: skip
    emails = dict(api.world.rows("SELECT id::text, email FROM users WHERE id IN (%s, %s)",
                                 poster.user_id, worker_person.user_id))  # fmt: skip
    to_poster, to_worker = emails[poster.id], emails[worker_person.id]
    # 23:MM in the worker's zone: their copy waits for 08:00 there, the poster's goes now
    local = opened_at.astimezone(ZoneInfo(night))
    morning = datetime.combine(
        local.date() + timedelta(days=1 if local.hour >= 8 else 0),
        datetime.min.time().replace(hour=8),
        tzinfo=ZoneInfo(night),
    )
    rows = dict(api.world.rows(
        "SELECT payload->>'to', available_at FROM outbox WHERE job = 'email.send'"))  # fmt: skip
    assert rows[to_worker] == morning
    assert rows[to_poster] <= datetime.now(UTC)

    def sent_to(address: str) -> list[dict[str, Any]]:
        return [e for e in capture.emails() if e["to"] == [address]]

    await eventually(lambda: sent_to(to_poster), lambda e: len(e) == 1, timeout=20,
                     what=lambda: worker.process.output)  # fmt: skip
    await eventually(
        lambda: api.world.value(
            "SELECT count(*) FROM outbox WHERE dispatched_at IS NULL AND available_at <= now()"
        ),
        lambda left: left == 0,
        what="the worker's relay to dispatch what is due now",
    )
    # the relay at 07:59:59 there finds nothing due; at 08:00 it sends the held email
    assert await relay.drain(db, producer, 100, at=morning - timedelta(seconds=1)) == 0
    assert sent_to(to_worker) == []
    assert await relay.drain(db, producer, 100, at=morning) == 1
    [email] = await eventually(lambda: sent_to(to_worker), lambda e: len(e) == 1, timeout=20,
                               what=lambda: worker.process.output)  # fmt: skip
    assert datetime.fromisoformat(email["received_at"]) >= opened_at
    assert "Not done" in email["text"]
    # exactly once: a later relay has nothing to send, and the row is done
    assert await relay.drain(db, producer, 100, at=morning + timedelta(hours=1)) == 0
    await eventually(
        lambda: api.world.value(
            "SELECT done_at IS NOT NULL FROM outbox WHERE payload->>'to' = %s", to_worker
        ),
        lambda done: bool(done),
        what="the held email's row to be done",
    )
    assert len(sent_to(to_worker)) == 1
    assert len(sent_to(to_poster)) == 1


async def test_an_email_turned_off_is_not_queued_and_identity_email_ignores_quiet_hours(
    api: V2, notes: Any
) -> None:
    poster, worker_person = api.poster(), api.worker()
    await update(notes, worker_person, ["preferences"], preferences=[
        _pref(N.NOTIFICATION_KIND_DISPUTE_OPENED, N.NOTIFICATION_CHANNEL_EMAIL, False)])  # fmt: skip
    await update(notes, poster, ["quiet_hours"], quiet_hours=N.QuietHours(
        enabled=True, start_minute=22 * 60, end_minute=8 * 60, time_zone=zone_at(23)))  # fmt: skip
    task = await api.post(poster)
    await api.accept(worker_person, task.task_id)
    await api.submit(worker_person, task.task_id)
    await api.disputes.OpenDispute(
        dispute_pb2.OpenDisputeRequest(task_id=task.task_id, reason="Late",
                                       request_id=request_id()), metadata=poster.auth)  # fmt: skip
    queued = api.world.rows(
        "SELECT u.id, o.available_at > now() + interval '1 minute' FROM outbox o"
        " JOIN users u ON u.email = o.payload->>'to' WHERE o.job = 'email.send'"
    )
    assert queued == [(poster.user_id, True)]  # the worker turned it off; the poster's waits
    # in-app is always written, at once
    assert "DISPUTE_OPENED" in api.people.notifications(worker_person)
    # an identity message (a password reset) is sent at once, quiet hours or not
    email = api.world.value("SELECT email FROM users WHERE id = %s", poster.user_id)
    await api.auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email))
    assert (
        api.world.value(
            "SELECT available_at <= now() FROM outbox WHERE payload->>'template' = 'password_reset'"
        )
        is True
    )
