"""The watch log (migration 0037) is written by the changes themselves and is append-only: raw
SQL cannot rewrite an event, forge or renumber a cursor, or delete events a stream may still
resume from; and cursors become visible in their own order, without gaps."""

from __future__ import annotations

import psycopg
import pytest

from server.db import load_queries
from tests.invariants.world import World, refused


def sequence(world: World) -> int:
    latest: int = world.value("SELECT watch_sequence()")
    return latest


def events(world: World, task: object) -> list[tuple[object, ...]]:
    return world.rows(
        "SELECT seq, kind, data ->> 'state' FROM watch_events WHERE task_id = %s ORDER BY seq",
        task,
    )


def test_a_change_writes_its_event_in_its_own_transaction(world: World) -> None:
    task = world.task()  # funded: one event (the funding), numbered once sequenced
    sequence(world)
    assert [(k, s) for _, k, s in events(world, task)] == [("TASK_CHANGED", "OPEN")]
    with pytest.raises(psycopg.Error), world.transaction():
        world.rows("UPDATE tasks SET state = 'CANCELLED' WHERE id = %s", task)
        world.rows("SELECT 1/0")  # the change rolls back, and its event with it
    sequence(world)
    assert len(events(world, task)) == 1
    world.accept(task)
    sequence(world)
    assert [s for _, _, s in events(world, task)] == ["OPEN", "ACCEPTED"]


@pytest.mark.parametrize(
    "change",
    [
        'UPDATE watch_events SET data = \'{"state": "COMPLETED"}\' WHERE seq = %s',
        "UPDATE watch_events SET kind = 'PROOF_SUBMITTED' WHERE seq = %s",
        "UPDATE watch_events SET seq = seq + 1000 WHERE seq = %s",
        "UPDATE watch_events SET seq = NULL WHERE seq = %s",
        "DELETE FROM watch_events WHERE seq = %s",
    ],
)
def test_an_event_cannot_be_rewritten_renumbered_or_deleted_early(
    world: World, change: str
) -> None:
    task = world.task()
    seq = sequence(world)
    refused(world, "HX102", change, seq)
    assert len(events(world, task)) == 1


def test_a_cursor_cannot_be_forged(world: World) -> None:
    task = world.task()
    refused(
        world,
        "HX102",
        "INSERT INTO watch_events (kind, task_id, seq) VALUES ('TASK_CHANGED', %s, 424242)",
        task,
    )


def _statement(name: str) -> str:
    return load_queries()[name].sql


def test_the_purge_moves_the_horizon_and_the_audit_finds_no_gap(world: World) -> None:
    old, recent = world.task(), world.task()
    sequence(world)
    [(old_seq, *_)] = events(world, old)
    world.rows("SET session_replication_role = replica")  # age one event (its guard is off)
    world.rows("UPDATE watch_events SET created_at = now() - interval '2 days' WHERE seq = %s",
               old_seq)  # fmt: skip
    world.rows("SET session_replication_role = origin")
    purged = world.conn.execute(_statement("watch_purge"), {"hours": 24}).fetchone()
    assert purged == (1,)
    assert events(world, old) == []
    assert len(events(world, recent)) == 1
    assert world.value("SELECT purged_through FROM watch_horizon") == old_seq
    audit = dict(world.conn.execute(_statement("audit")).fetchall())
    assert audit["watch cursors not a gap-free run above the purge horizon"] == 0


def test_cursors_follow_commit_order_not_insert_order(world: World, database_url: str) -> None:
    """A transaction that took its event id first but commits last is numbered last: a reader
    past the later cursor cannot miss it."""
    early, late = world.task(funded=False), world.task(funded=False)
    before = sequence(world)
    with psycopg.connect(database_url) as slow:  # not autocommit: its transaction stays open
        slow.execute("UPDATE tasks SET state = 'CANCELLED' WHERE id = %s", (early,))  # id first
        world.rows("UPDATE tasks SET state = 'CANCELLED' WHERE id = %s", late)  # commits first
        assert sequence(world) == before + 1
        slow.commit()
    assert sequence(world) == before + 2
    [late_seq] = [e[0] for e in events(world, late) if e[0] > before]
    [early_seq] = [e[0] for e in events(world, early) if e[0] > before]
    assert (late_seq, early_seq) == (before + 1, before + 2)
    insert_order = world.value(
        "SELECT array_agg(task_id::text ORDER BY id) FROM watch_events WHERE seq > %s", before
    )
    assert insert_order == [str(early), str(late)]


def test_marking_notifications_read_is_one_event_per_user_and_statement(world: World) -> None:
    user = world.user()
    for n in range(3):
        world.rows(
            "INSERT INTO notifications (user_id, kind, title) VALUES (%s, 'TASK_ACCEPTED', %s)",
            user,
            f"n{n}",
        )
    world.rows("UPDATE notifications SET read_at = now() WHERE user_id = %s", user)
    sequence(world)
    rows = world.rows(
        "SELECT kind, data ->> 'count' FROM watch_events WHERE user_id = %s ORDER BY seq", user
    )
    assert rows == [("NOTIFICATION_CREATED", None)] * 3 + [("NOTIFICATIONS_READ", "3")]
