"""Ratings (INV-13, INV-14): raw SQL cannot rate what is not completed, rate as a stranger, rate
after the window, rate twice, give out-of-range stars, comments or tags, change or delete a
rating, or reveal one alone; the database reveals both together, even when they race."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from server.domain.ratings import TAGS, RatingRole, RatingTag
from tests.invariants.world import TASK_STATES, World, refused

RATE = "INSERT INTO ratings (task_id, rater_id, stars, comment, tags) VALUES (%s, %s, %s, %s, %s) RETURNING id"


def completed(world: World, days_ago: float = 0) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(task, poster, worker) of a COMPLETED task, completed `days_ago` days ago (the past is
    written with triggers off, as a restore would)."""
    task = world.task_in("COMPLETED")
    if days_ago:
        world.rows("SET session_replication_role = replica")
        world.rows(
            "UPDATE tasks SET completed_at = now() - make_interval(secs => %s) WHERE id = %s",
            days_ago * 86400,
            task,
        )
        world.rows(
            "UPDATE rating_windows SET closes_at = now() + interval '7 days' - make_interval(secs => %s)"
            " WHERE task_id = %s",
            days_ago * 86400,
            task,
        )
        world.rows("SET session_replication_role = origin")
    return task, world.poster_of(task), world.worker_of(task)


def rate(
    world: World, task: uuid.UUID, rater: uuid.UUID, stars: int = 5, comment: str | None = None,
    tags: tuple[str, ...] = (),
) -> uuid.UUID:  # fmt: skip
    rating_id: uuid.UUID = world.value(RATE, task, rater, stars, comment, list(tags))
    return rating_id


@pytest.mark.parametrize("state", [s for s in TASK_STATES if s != "COMPLETED"])
def test_only_a_completed_task_is_rated(world: World, state: str) -> None:
    task = world.task_in(state)
    refused(world, "HX807", RATE, task, world.poster_of(task), 5, None, [])


def test_only_the_two_parties_rate_and_the_rated_one_is_derived(world: World) -> None:
    task, poster, worker = completed(world)
    refused(world, "HX802", RATE, task, world.user(), 5, None, [])
    refused(world, "HX802", RATE, task, world.admin(), 5, None, [])
    # naming someone else as the rated user changes nothing: the task says who it is
    world.rows(
        "INSERT INTO ratings (task_id, rater_id, ratee_id, ratee_role, stars) VALUES (%s, %s, %s, 'POSTER', 4)",
        task,
        poster,
        world.user(),
    )
    assert world.rows("SELECT ratee_id, ratee_role FROM ratings WHERE task_id = %s", task) == [
        (worker, "WORKER")
    ]
    refused(world, "HX302", RATE, uuid.uuid4(), poster, 5, None, [])


def test_the_window_is_seven_days(world: World) -> None:
    task, poster, worker = completed(world, days_ago=6.9)
    rate(world, task, poster)
    late, late_poster, _ = completed(world, days_ago=7.01)
    refused(world, "HX808", RATE, late, late_poster, 5, None, [])
    # automatic ratings only once the window has closed
    refused(
        world,
        "HX003",
        "INSERT INTO ratings (task_id, rater_id, stars, is_auto) VALUES (%s, %s, 5, true)",
        task,
        worker,
    )
    world.rows(
        "INSERT INTO ratings (task_id, rater_id, stars, is_auto) VALUES (%s, %s, 5, true)",
        late,
        late_poster,
    )


def test_one_rating_per_task_and_rater(world: World) -> None:
    task, poster, _ = completed(world)
    rate(world, task, poster)
    refused(world, "HX303", RATE, task, poster, 3, None, [])
    assert world.value("SELECT count(*) FROM ratings") == 1


@pytest.mark.parametrize(
    ("code", "stars", "comment", "tags"),
    [
        ("HX810", 0, None, ()),
        ("HX810", 6, None, ()),
        ("HX811", 5, "x" * 501, ()),
        ("HX811", 5, "", ()),  # no comment is NULL, never empty
        ("HX301", 5, None, ("ON_TIME", "ON_TIME")),  # twice
        ("HX301", 5, None, ("CLEAR_INSTRUCTIONS",)),  # a tag for rating posters
        ("HX301", 5, None, ("SPLENDID",)),  # not a tag at all
        ("HX301", 4, None, ("LATE",)),  # negative needs 3 stars or fewer
    ],
)
def test_stars_comment_and_tags(
    world: World, code: str, stars: int, comment: str | None, tags: tuple[str, ...]
) -> None:
    task, poster, _ = completed(world)
    refused(world, code, RATE, task, poster, stars, comment, list(tags))


def test_tags_within_the_rules_are_kept(world: World) -> None:
    task, poster, worker = completed(world)
    rate(world, task, poster, 3, "x" * 500, ("LATE", "FRIENDLY"))
    rate(world, task, worker, 2, None, ("RUDE", "SLOW_APPROVAL", "UNRESPONSIVE"))
    assert world.value("SELECT count(*) FROM ratings WHERE task_id = %s", task) == 2


def test_an_automatic_rating_is_five_silent_stars(world: World) -> None:
    task, poster, _ = completed(world, days_ago=8)
    refused(
        world,
        "HX301",
        "INSERT INTO ratings (task_id, rater_id, stars, comment, is_auto) VALUES (%s, %s, 5, 'meh', true)",
        task,
        poster,
    )
    refused(
        world,
        "HX301",
        "INSERT INTO ratings (task_id, rater_id, stars, is_auto) VALUES (%s, %s, 3, true)",
        task,
        poster,
    )


def test_blind_until_both_then_revealed_together(world: World) -> None:
    task, poster, worker = completed(world)
    assert world.value("SELECT count(*) FROM rating_windows WHERE task_id = %s", task) == 1
    first = rate(world, task, poster, 4)
    assert world.value("SELECT revealed_at FROM ratings WHERE id = %s", first) is None
    # nobody reveals one alone
    refused(world, "HX809", "UPDATE ratings SET revealed_at = now() WHERE id = %s", first)
    rate(world, task, worker, 5)
    times = world.rows("SELECT DISTINCT revealed_at FROM ratings WHERE task_id = %s", task)
    assert len(times) == 1
    assert times[0][0] is not None
    assert world.value("SELECT count(*) FROM rating_windows WHERE task_id = %s", task) == 0


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE ratings SET stars = 1 WHERE id = %s",
        "UPDATE ratings SET comment = 'changed my mind' WHERE id = %s",
        "UPDATE ratings SET tags = '{FRIENDLY}' WHERE id = %s",
        "UPDATE ratings SET revealed_at = now() + interval '1 day' WHERE id = %s",
        "UPDATE ratings SET revealed_at = NULL WHERE id = %s",
        "UPDATE ratings SET is_auto = true WHERE id = %s",
        "DELETE FROM ratings WHERE id = %s",
    ],
)
def test_a_rating_never_changes_once_given(world: World, change: str) -> None:
    task, poster, worker = completed(world)
    rating_id = rate(world, task, poster, 4, "fine")
    rate(world, task, worker, 5)
    before = world.rows("SELECT * FROM ratings WHERE id = %s", rating_id)
    refused(world, "HX809", change, rating_id)
    assert world.rows("SELECT * FROM ratings WHERE id = %s", rating_id) == before


def test_ratings_cannot_be_emptied(world: World) -> None:
    task, poster, _ = completed(world)
    rate(world, task, poster)
    refused(world, "HX809", "TRUNCATE ratings")


def test_racing_raters_are_revealed_together(world: World, database_url: str) -> None:
    """Two parties rate at once: the task's row lock makes the second see the first."""
    task, poster, worker = completed(world)
    with psycopg.connect(database_url) as first:
        first.execute(RATE, (task, poster, 5, None, []))  # not committed yet
        done = threading.Event()

        def second() -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(RATE, (task, worker, 4, None, []))
            done.set()

        thread = threading.Thread(target=second)
        thread.start()
        assert not done.wait(0.5)  # waits for the first rater's transaction
        first.commit()
        thread.join(timeout=10)
    assert done.is_set()
    assert (
        world.value(
            "SELECT count(*) FROM ratings WHERE task_id = %s AND revealed_at IS NOT NULL", task
        )
        == 2
    )


def test_the_tag_list_is_the_same_in_code_and_database(world: World) -> None:
    for role in RatingRole:
        for tag in RatingTag:
            kind = world.value("SELECT rating_tag_kind(%s, %s)", role.value, tag.value)
            expected = (
                None if tag not in TAGS[role] else ("NEGATIVE" if TAGS[role][tag] else "POSITIVE")
            )
            assert kind == expected, (role, tag)
