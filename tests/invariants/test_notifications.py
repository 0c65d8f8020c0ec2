"""The notification rules the database keeps, tried with raw SQL: read_at is set once and never
cleared or moved; IN_APP cannot be turned off; urgent SMS need a verified phone and a saved
point; time zones are real IANA names; the urgent-SMS caps hold and their record is
append-only; quiet hours end when they should, across midnight and DST."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.invariants.world import World, refused


def note(world: World, user: uuid.UUID) -> uuid.UUID:
    found: uuid.UUID = world.value(
        "INSERT INTO notifications (user_id, kind, title) VALUES (%s, 'LEVEL_UP', 'Level 2')"
        " RETURNING id",
        user,
    )
    return found


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE notifications SET read_at = NULL WHERE id = %s",
        "UPDATE notifications SET read_at = read_at + interval '1 hour' WHERE id = %s",
        "UPDATE notifications SET title = 'Level 3' WHERE id = %s",
    ],
)
def test_read_at_is_set_once_and_never_cleared(world: World, change: str) -> None:
    notification = note(world, world.user())
    world.rows("UPDATE notifications SET read_at = now() WHERE id = %s", notification)
    read_at = world.value("SELECT read_at FROM notifications WHERE id = %s", notification)
    refused(world, "HX003", change, notification)
    assert world.value("SELECT read_at FROM notifications WHERE id = %s", notification) == read_at


def test_in_app_cannot_be_turned_off(world: World) -> None:
    user = world.user()
    refused(world, "HX301",
            "INSERT INTO notification_preferences VALUES (%s, 'TASK_ACCEPTED', 'IN_APP', false)", user)  # fmt: skip
    world.rows(
        "INSERT INTO notification_preferences VALUES (%s, 'TASK_ACCEPTED', 'IN_APP', true)", user
    )
    refused(world, "HX301",
            "UPDATE notification_preferences SET enabled = false WHERE user_id = %s", user)  # fmt: skip
    refused(world, "HX301",
            "INSERT INTO notification_preferences VALUES (%s, 'NO_SUCH_KIND', 'EMAIL', false)", user)  # fmt: skip
    refused(world, "HX301",
            "INSERT INTO notification_preferences VALUES (%s, 'LEVEL_UP', 'PIGEON', true)", user)  # fmt: skip
    world.rows("INSERT INTO notification_preferences VALUES (%s, 'LEVEL_UP', 'EMAIL', false)", user)
    assert world.value("SELECT notification_wanted(%s, 'LEVEL_UP', 'EMAIL')", user) is False
    assert world.value("SELECT notification_wanted(%s, 'LEVEL_UP', 'IN_APP')", user) is True
    assert world.value("SELECT notification_wanted(%s, 'LEVEL_UP', 'SMS')", user) is False


def test_urgent_sms_need_a_verified_phone_and_a_saved_point(world: World) -> None:
    user = world.user()
    opt_in = "INSERT INTO notification_preferences VALUES (%s, 'URGENT_TASK_NEARBY', 'SMS', true)"
    refused(world, "HX301", opt_in, user)  # no phone
    world.rows(
        "UPDATE users SET phone = '+15555550123', phone_verified_at = now() WHERE id = %s", user
    )
    refused(world, "HX301", opt_in, user)  # no saved point
    world.rows("INSERT INTO notification_settings (user_id, urgent_location) VALUES"
               " (%s, ST_SetSRID(ST_MakePoint(-118.25, 34.05), 4326)::geography)", user)  # fmt: skip
    world.rows(opt_in, user)
    refused(world, "HX301",
            "UPDATE notification_settings SET urgent_location = NULL WHERE user_id = %s", user)  # fmt: skip
    for column, value in (("urgent_radius_m", 16001), ("urgent_radius_m", 99),
                          ("urgent_daily_cap", 0), ("urgent_daily_cap", 21),
                          ("quiet_start_minute", 1440), ("quiet_end_minute", 1320)):  # fmt: skip
        refused(world, "HX301",
                f"UPDATE notification_settings SET {column} = %s WHERE user_id = %s", value, user)  # fmt: skip


@pytest.mark.parametrize("zone", ["Mars/Olympus", "EST", "UTC+5", "america/chicago", ""])
def test_a_time_zone_is_an_iana_name(world: World, zone: str) -> None:
    user = world.user()
    refused(world, "HX301", "UPDATE users SET time_zone = %s WHERE id = %s", zone, user)
    world.rows("UPDATE users SET time_zone = 'America/Argentina/Buenos_Aires' WHERE id = %s", user)
    world.rows("UPDATE users SET time_zone = 'Etc/GMT+5' WHERE id = %s", user)


def test_the_urgent_sms_caps_hold_and_their_record_is_append_only(world: World) -> None:
    user = world.user()
    world.rows(
        "INSERT INTO notification_settings (user_id, urgent_daily_cap) VALUES (%s, 20)", user
    )
    tasks = [world.task() for _ in range(6)]
    insert = ("INSERT INTO urgent_sms_sends (task_id, user_id, outcome, distance_m)"
              " VALUES (%s, %s, %s, 500)")  # fmt: skip
    for task in tasks[:5]:
        world.rows(insert, task, user, "SENT")
    refused(world, "HX501", insert, tasks[5], user, "SENT")  # a sixth in the hour
    world.rows(insert, tasks[5], user, "DROPPED_HOURLY_CAP")  # recording the drop is fine
    refused(
        world, "HX102", "UPDATE urgent_sms_sends SET outcome = 'SENT' WHERE task_id = %s", tasks[5]
    )
    with pytest.raises(Exception, match="urgent_sms_sends_pkey"):  # one decision per task and user
        world.rows(insert, tasks[0], user, "DROPPED_OWN_CAP")
    other = world.user()  # default own cap: 3 a day
    world.rows("INSERT INTO notification_settings (user_id) VALUES (%s)", other)
    for task in tasks[:3]:
        world.rows(insert, task, other, "SENT")
    refused(world, "HX501", insert, tasks[3], other, "SENT")


def at(local: str, zone: str = "America/Chicago") -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(
    ("moment", "ends"),
    [
        ("2026-12-02 23:00", "2026-12-03 08:00"),
        ("2026-12-02 22:00", "2026-12-03 08:00"),
        ("2026-12-03 07:59:59", "2026-12-03 08:00"),
        ("2026-12-03 00:30", "2026-12-03 08:00"),
        ("2026-12-03 08:00", None),
        ("2026-12-02 21:59:59", None),
        ("2026-12-02 12:00", None),
        # the night the clocks go forward (2027-03-14 02:00 CST → 03:00 CDT): still 08:00 local
        ("2027-03-13 23:30", "2027-03-14 08:00"),
        # and back (2026-11-01 02:00 CDT → 01:00 CST)
        ("2026-10-31 22:30", "2026-11-01 08:00"),
    ],
)
def test_quiet_hours_end_at_eight_local(world: World, moment: str, ends: str | None) -> None:
    user = world.user(state="TX")  # America/Chicago by state, defaults 22:00-08:00
    found = world.value("SELECT quiet_hours_end(%s, %s)", user, at(moment))
    assert found == (at(ends) if ends else None)


def test_quiet_hours_follow_the_users_settings(world: World) -> None:
    user = world.user(state="CA")
    assert world.value("SELECT quiet_hours_end(%s, %s)", user, at("2026-12-02 23:00", "America/Los_Angeles")) == at(
        "2026-12-03 08:00", "America/Los_Angeles")  # fmt: skip
    world.rows("UPDATE users SET time_zone = 'Asia/Tokyo' WHERE id = %s", user)
    assert world.value("SELECT quiet_hours_end(%s, %s)", user, at("2026-12-02 23:00", "Asia/Tokyo")) == at(
        "2026-12-03 08:00", "Asia/Tokyo")  # fmt: skip
    world.rows("INSERT INTO notification_settings (user_id, quiet_start_minute, quiet_end_minute)"
               " VALUES (%s, 60, 300)", user)  # 01:00-05:00, not across midnight  # fmt: skip
    assert (
        world.value("SELECT quiet_hours_end(%s, %s)", user, at("2026-12-02 23:00", "Asia/Tokyo"))
        is None
    )
    assert world.value("SELECT quiet_hours_end(%s, %s)", user, at("2026-12-03 02:00", "Asia/Tokyo")) == at(
        "2026-12-03 05:00", "Asia/Tokyo")  # fmt: skip
    world.rows(
        "UPDATE notification_settings SET quiet_hours_enabled = false WHERE user_id = %s", user
    )
    assert (
        world.value("SELECT quiet_hours_end(%s, %s)", user, at("2026-12-03 02:00", "Asia/Tokyo"))
        is None
    )
