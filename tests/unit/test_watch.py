"""Watch streams' in-process rules: which task changes enter or leave feeds, and the cheap test
of a change against a WatchFeed stream (state, radius, urgency) made before SQL decides
eligibility."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.domain.watch import FeedInterest, WatchEvent, entered, haversine, left, parse_cursor
from server.errors import HxError


def change(**data: Any) -> WatchEvent:
    base = {
        "state": "OPEN", "previous_state": "OPEN", "funded": True, "was_funded": False,
        "location_state": "CA", "latitude": 34.05, "longitude": -118.25, "urgent": False,
        "created_at": datetime.now(UTC).isoformat(), "version": 2,
    }  # fmt: skip
    return WatchEvent(1, "TASK_CHANGED", "t", None, {**base, **data}, datetime.now(UTC))


def test_funding_an_open_task_enters_and_taking_it_leaves() -> None:
    assert entered(change())
    assert not left(change())
    taken = change(state="ACCEPTED", was_funded=True)
    assert left(taken)
    assert not entered(taken)
    assert left(change(state="EXPIRED", was_funded=True, funded=True))
    # an unfunded task's cancellation, or a move after acceptance, concerns no feed
    assert not entered(change(state="CANCELLED", funded=False))
    assert not left(change(state="CANCELLED", funded=False))
    later = change(state="PROOF_SUBMITTED", previous_state="ACCEPTED", was_funded=True)
    assert not entered(later)
    assert not left(later)


def test_haversine_is_close_to_the_known_distances() -> None:
    assert haversine(34.05, -118.25, 34.05, -118.25) == 0
    # one minute of latitude is a nautical mile (1852 m), to within half a percent
    assert haversine(34.0, -118.0, 34.0 + 1 / 60, -118.0) == pytest.approx(1852, rel=0.005)
    # Los Angeles to San Francisco: ~559 km
    assert haversine(34.0522, -118.2437, 37.7749, -122.4194) == pytest.approx(559_000, rel=0.01)


def test_a_nearby_stream_keeps_its_state_and_radius() -> None:
    now = time.time()
    near = FeedInterest("u", "CA", False, 34.05, -118.25, 5000)
    assert near.may_concern(change(latitude=34.06), now)  # ~1.1 km
    assert not near.may_concern(change(latitude=34.30), now)  # ~28 km
    assert not near.may_concern(change(latitude=34.06, location_state="NV"), now)
    assert near.distance(change(latitude=34.06)) == pytest.approx(1112, rel=0.01)
    nowhere = FeedInterest("u", None, False)  # no capability profile: no feed at all
    assert not nowhere.may_concern(change(), now)


def test_an_urgent_stream_takes_only_recent_urgent_entries_but_every_exit() -> None:
    now = time.time()
    urgent = FeedInterest("u", "CA", True)
    assert urgent.may_concern(change(urgent=True), now)
    assert not urgent.may_concern(change(urgent=False), now)
    old = (datetime.now(UTC) - timedelta(minutes=31)).isoformat()
    assert not urgent.may_concern(change(urgent=True, created_at=old), now)
    assert urgent.may_concern(change(state="ACCEPTED", was_funded=True, urgent=False), now)


def test_cursors_are_decimal_and_anything_else_is_invalid() -> None:
    assert parse_cursor("") is None
    assert parse_cursor("42") == 42
    for bad in ("-1", "4.2", "x", "1" * 20):
        with pytest.raises(HxError) as caught:
            parse_cursor(bad)
        assert caught.value.code == "HX301"
        assert caught.value.field == "after"
