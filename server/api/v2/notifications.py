"""hustle.v2.NotificationService: input checks (every invalid field at once) and translation; the
rules live in server.domain.notifications.

One servicer class per service; an RPC added to the service (a stream of new notifications,
say) is one more method here, over the same domain module.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from grpc import aio

from hustle.v2 import notification_pb2
from server import caller, pagination, validation
from server.api.v2 import convert, lists
from server.api.v2.watch import NotificationWatch
from server.config import Settings
from server.db import Database
from server.domain import notifications
from server.domain.notifications import Choice, NotificationChannel, QuietHours, UrgentSms
from server.errors import invalid
from server.validation import Checks
from server.watch import WatchHub

Context = aio.ServicerContext[Any, Any]
Pb = notification_pb2
MAX_MARK = 100
# UpdateNotificationPreferences' changeable fields (the contract's list).
CHANGEABLE = ("preferences", "quiet_hours", "urgent_sms")
RESOURCE = "notification_preferences"
DEFAULT_RADIUS_M, MAX_RADIUS_M, MIN_RADIUS_M = 5000, 16000, 100
DEFAULT_DAILY_CAP, MAX_DAILY_CAP = 3, 20
# the same shape as the database's is_time_zone() (migration 0033)
_ZONE = re.compile(r"^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$")


def _list_kind(unread_only: bool) -> str:
    return lists.kind("notifications-unread" if unread_only else "notifications")


def time_zone(value: str, field: str) -> str | None:
    """An IANA time zone name; empty: None (the home state's zone)."""
    name = value.strip()
    if not name:
        return None
    try:
        if _ZONE.match(name):
            zoneinfo.ZoneInfo(name)
            return name
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder
        pass
    raise invalid(field, "must be an IANA time zone such as America/Chicago")


def _minute(check: Checks, value: int, field: str) -> int:
    if not 0 <= value <= 1439:
        check.fail(field, "must be a minute of the day, 0 to 1439")
    return value


def _choices(check: Checks, entries: Any) -> list[Choice]:
    chosen: list[Choice] = []
    seen: set[tuple[Any, Any]] = set()
    for i, entry in enumerate(entries):
        field = f"{RESOURCE}.preferences[{i}]"
        kind = convert.NOTIFICATION_KINDS.to_domain(entry.kind)
        channel = convert.NOTIFICATION_CHANNELS.to_domain(entry.channel)
        if kind is None:
            check.fail(f"{field}.kind", "must be a notification kind")
        if channel is None:
            check.fail(f"{field}.channel", "must be IN_APP, EMAIL or SMS")
        if kind is None or channel is None:
            continue
        if (kind, channel) in seen:
            check.fail(field, "names a kind and channel already listed")
            continue
        seen.add((kind, channel))
        if channel is NotificationChannel.IN_APP and not entry.enabled:
            check.fail(f"{field}.enabled", "in-app notifications cannot be turned off")
        chosen.append(Choice(kind, channel, entry.enabled, f"{field}.enabled"))
    return chosen


def _quiet_hours(check: Checks, value: notification_pb2.QuietHours) -> QuietHours:
    field = f"{RESOURCE}.quiet_hours"
    start = _minute(check, value.start_minute, f"{field}.start_minute")
    end = _minute(check, value.end_minute, f"{field}.end_minute")
    if start == end and not check.failed(field):
        check.fail(f"{field}.end_minute", "must differ from start_minute")
    zone = check(time_zone, value.time_zone, f"{field}.time_zone")
    return QuietHours(value.enabled, start, end, zone)


def _urgent_sms(check: Checks, value: notification_pb2.UrgentSms) -> UrgentSms:
    field = f"{RESOURCE}.urgent_sms"
    latitude: float | None = None
    longitude: float | None = None
    if value.HasField("location"):
        point = check(validation.point, value.location, f"{field}.location")
        if point is not None:
            latitude, longitude = point
    radius = value.radius_meters or DEFAULT_RADIUS_M
    if not MIN_RADIUS_M <= radius <= MAX_RADIUS_M:
        check.fail(f"{field}.radius_meters", f"must be {MIN_RADIUS_M} to {MAX_RADIUS_M}")
    cap = value.daily_cap or DEFAULT_DAILY_CAP
    if not 1 <= cap <= MAX_DAILY_CAP:
        check.fail(f"{field}.daily_cap", f"must be 1 to {MAX_DAILY_CAP}")
    return UrgentSms(latitude, longitude, radius, cap)


class NotificationService(NotificationWatch):
    """The notifications API; WatchNotifications, the live stream, comes from NotificationWatch
    (server/api/v2/watch.py, beside the other watch streams)."""

    def __init__(self, db: Database, settings: Settings, hub: WatchHub) -> None:
        super().__init__(db, hub)
        self._secret = settings.secret_key.get_secret_value()

    async def ListNotifications(
        self, request: notification_pb2.ListNotificationsRequest, context: Context
    ) -> notification_pb2.ListNotificationsResponse:
        kind = _list_kind(request.unread_only)
        with Checks() as check:
            limit = lists.page_size(check, request.page_size)
            after = lists.after(check, self._secret, kind, request.page_token)
        found = await notifications.list_for(
            self._db,
            caller.current().user_id,
            unread_only=request.unread_only,
            after=after,
            limit=limit + 1,
        )
        page, token = pagination.split_keyed(self._secret, kind, found, limit)
        return Pb.ListNotificationsResponse(
            notifications=[convert.notification(n) for n in page], next_page_token=token
        )

    async def GetUnreadCount(
        self, request: notification_pb2.GetUnreadCountRequest, context: Context
    ) -> notification_pb2.GetUnreadCountResponse:
        count = await notifications.unread_count(self._db, caller.current().user_id)
        return Pb.GetUnreadCountResponse(unread_count=count)

    async def MarkRead(
        self, request: notification_pb2.MarkReadRequest, context: Context
    ) -> notification_pb2.MarkReadResponse:
        with Checks() as check:
            if not 1 <= len(request.notification_ids) <= MAX_MARK:
                check.fail("notification_ids", f"must list 1 to {MAX_MARK} ids")
            ids = [
                check(validation.uuid_id, value, f"notification_ids[{i}]")
                for i, value in enumerate(request.notification_ids[:MAX_MARK])
            ]
        marked = await notifications.mark_read(self._db, caller.current().user_id, ids)
        return Pb.MarkReadResponse(marked_count=marked)

    async def MarkAllRead(
        self, request: notification_pb2.MarkAllReadRequest, context: Context
    ) -> notification_pb2.MarkAllReadResponse:
        with Checks() as check:
            up_to = (
                check(validation.uuid_id, request.up_to_id, "up_to_id")
                if request.up_to_id
                else None
            )
        marked = await notifications.mark_all_read(self._db, caller.current().user_id, up_to)
        return Pb.MarkAllReadResponse(marked_count=marked)

    async def GetNotificationPreferences(
        self, request: notification_pb2.GetNotificationPreferencesRequest, context: Context
    ) -> notification_pb2.GetNotificationPreferencesResponse:
        found = await notifications.preferences(self._db, caller.current().user_id)
        return Pb.GetNotificationPreferencesResponse(
            notification_preferences=convert.notification_preferences(found)
        )

    async def UpdateNotificationPreferences(
        self, request: notification_pb2.UpdateNotificationPreferencesRequest, context: Context
    ) -> notification_pb2.UpdateNotificationPreferencesResponse:
        resource = request.notification_preferences
        set_fields = [
            name
            for name, present in (
                ("preferences", len(resource.preferences) > 0),
                ("quiet_hours", resource.HasField("quiet_hours")),
                ("urgent_sms", resource.HasField("urgent_sms")),
            )
            if present
        ]
        choices: list[Choice] = []
        quiet: QuietHours | None = None
        urgent: UrgentSms | None = None
        with Checks() as check:
            paths = request.update_mask.paths
            named = check(validation.update_paths, paths, CHANGEABLE, set_fields)
            if check.failed("update_mask"):  # some paths are not changeable: check the others
                named = frozenset(p for p in paths if p in CHANGEABLE)
            if "preferences" in named:
                choices = _choices(check, resource.preferences)
            if "quiet_hours" in named:
                quiet = _quiet_hours(check, resource.quiet_hours)
            if "urgent_sms" in named:
                urgent = _urgent_sms(check, resource.urgent_sms)
        updated = await notifications.update_preferences(
            self._db,
            caller.current().user_id,
            choices=choices,
            quiet_hours=quiet,
            urgent_sms=urgent,
        )
        return Pb.UpdateNotificationPreferencesResponse(
            notification_preferences=convert.notification_preferences(updated)
        )
