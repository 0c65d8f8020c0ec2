"""Ratings: after a COMPLETED task its poster rates the worker and its worker rates the poster,
within 7 days, blind until both exist (or rating.close adds automatic 5-star ratings for the
directions nobody rated); then both are revealed together and both parties are told.

The database (migration 0035) checks every rule again and does the reveal itself; this module
checks first for errors that name the field, writes the notifications, and asks trust.evaluate
to look at the worker once a rating of their work is revealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from server import outbox
from server.caller import Caller
from server.db import Database, Rows, Session
from server.domain.notifications import notify
from server.domain.records import NotificationKind, TaskState
from server.errors import HxError, Violation, invalid_fields

WINDOW = timedelta(days=7)
# Others see a user's summary from this many revealed ratings on.
SUMMARY_MINIMUM = 5
MAX_TAGS = 5
MAX_COMMENT = 500
N = NotificationKind


class RatingRole(StrEnum):
    """The side the rated user was on (ratings.ratee_role)."""

    WORKER = "WORKER"
    POSTER = "POSTER"


class RatingTag(StrEnum):
    ON_TIME = "ON_TIME"
    QUALITY_WORK = "QUALITY_WORK"
    COMMUNICATIVE = "COMMUNICATIVE"
    FRIENDLY = "FRIENDLY"
    ABOVE_AND_BEYOND = "ABOVE_AND_BEYOND"
    LATE = "LATE"
    POOR_QUALITY = "POOR_QUALITY"
    UNRESPONSIVE = "UNRESPONSIVE"
    UNPROFESSIONAL = "UNPROFESSIONAL"
    INCOMPLETE = "INCOMPLETE"
    CLEAR_INSTRUCTIONS = "CLEAR_INSTRUCTIONS"
    PROMPT_APPROVAL = "PROMPT_APPROVAL"
    ACCURATE_DESCRIPTION = "ACCURATE_DESCRIPTION"
    UNCLEAR_INSTRUCTIONS = "UNCLEAR_INSTRUCTIONS"
    SLOW_APPROVAL = "SLOW_APPROVAL"
    RUDE = "RUDE"
    INACCURATE_DESCRIPTION = "INACCURATE_DESCRIPTION"


T = RatingTag
# The fixed list per direction (the database's rating_tag_kind() holds the same; a test
# compares them): tag → negative?
TAGS: dict[RatingRole, dict[RatingTag, bool]] = {
    RatingRole.WORKER: {
        **dict.fromkeys((T.ON_TIME, T.QUALITY_WORK, T.COMMUNICATIVE, T.FRIENDLY), False),
        T.ABOVE_AND_BEYOND: False,
        **dict.fromkeys((T.LATE, T.POOR_QUALITY, T.UNRESPONSIVE, T.UNPROFESSIONAL), True),
        T.INCOMPLETE: True,
    },
    RatingRole.POSTER: {
        **dict.fromkeys((T.CLEAR_INSTRUCTIONS, T.PROMPT_APPROVAL, T.COMMUNICATIVE), False),
        **dict.fromkeys((T.FRIENDLY, T.ACCURATE_DESCRIPTION), False),
        **dict.fromkeys((T.UNCLEAR_INSTRUCTIONS, T.SLOW_APPROVAL, T.UNRESPONSIVE), True),
        **dict.fromkeys((T.RUDE, T.INACCURATE_DESCRIPTION), True),
    },
}


@dataclass(frozen=True, slots=True)
class Rating:
    id: str
    task_id: str
    rater_id: str
    ratee_id: str
    ratee_role: RatingRole
    stars: int
    comment: str | None
    tags: list[str]
    is_auto: bool
    created_at: datetime
    revealed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TaskRatings:
    """A task's ratings as one caller may see them: none before the reveal."""

    revealed: bool
    ratings: list[Rating]
    rated_by_caller: bool
    window_closes_at: datetime | None


@dataclass(frozen=True, slots=True)
class Rated:
    id: str
    revealed: bool


@dataclass(frozen=True, slots=True)
class Counts:
    count: int
    automatic_count: int
    average_stars: Decimal | None
    distribution: list[int]


@dataclass(frozen=True, slots=True)
class Summary:
    """A user's revealed ratings in one role; `visible` False: the caller may not see them (and
    the numbers are zero)."""

    user_id: str
    role: RatingRole
    visible: bool
    count: int
    automatic_count: int
    average_stars: Decimal | None
    distribution: list[int]


@dataclass(frozen=True, slots=True)
class _Task:
    id: str
    poster_id: str
    worker_id: str | None
    state: TaskState
    title: str
    window_closes_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Id:
    id: str


@dataclass(frozen=True, slots=True)
class _Window:
    id: str
    poster_id: str
    worker_id: str
    title: str


_TASK = Rows("rating_task", _Task)
_OF = Rows("rating_of", _Id)
_INSERT = Rows("insert_rating", _Id)
_RATINGS = Rows("task_ratings", Rating)
_SUMMARY = Rows("rating_summary", Counts)
_DUE = Rows("due_rating_windows", _Window)


def check_tags(role: RatingRole, stars: int, tags: Sequence[RatingTag]) -> None:
    """HX301 naming each tag that is not of the direction, repeated, one too many, or negative
    with more than 3 stars."""
    allowed = TAGS[role]
    wrong: list[Violation] = []
    if len(tags) > MAX_TAGS:
        wrong.append(Violation("tags", f"at most {MAX_TAGS} tags"))
    for i, tag in enumerate(tags):
        if tag not in allowed:
            wrong.append(Violation(f"tags[{i}]", f"{tag} is not a tag for rating a {role}"))
        elif tag in tags[:i]:
            wrong.append(Violation(f"tags[{i}]", f"{tag} is given twice"))
        elif allowed[tag] and stars > 3:
            wrong.append(Violation(f"tags[{i}]", f"{tag} is negative: only with 3 stars or fewer"))
    if wrong:
        raise invalid_fields(wrong)


def _other_party(task: _Task, user_id: str) -> RatingRole:
    """The role of whom `user_id` rates on this task (HX802 for anyone else)."""
    if user_id == task.poster_id:
        return RatingRole.WORKER
    if user_id == task.worker_id:
        return RatingRole.POSTER
    raise HxError("HX802", "Only the task's poster and worker rate it.")


async def _task(tx: Session | Database, task_id: str) -> _Task:
    task = await tx.one(_TASK, task_id=task_id)
    if task is None:
        raise HxError("HX302", "No such task.")
    return task


async def request(tx: Session, task_id: str, title: str, poster_id: str, worker_id: str) -> None:
    """The task is COMPLETED (in this transaction): ask both parties for their rating."""
    body = "Rate it within 7 days; ratings show once both of you have rated."
    await notify(tx, poster_id, N.RATING_REQUESTED, f"Rate the worker of “{title}”", body,
                 task_id=task_id)  # fmt: skip
    await notify(tx, worker_id, N.RATING_REQUESTED, f"Rate the poster of “{title}”", body,
                 task_id=task_id)  # fmt: skip


async def _revealed(tx: Session, task_id: str, title: str, poster_id: str, worker_id: str) -> None:
    """Both ratings were revealed in this transaction: tell both, re-evaluate the worker."""
    for user_id in (poster_id, worker_id):
        await notify(
            tx,
            user_id,
            N.RATINGS_REVEALED,
            f"Ratings for “{title}”",
            "Both ratings are in: see what you were given.",
            task_id=task_id,
        )
    await outbox.enqueue(
        tx, "trust.evaluate", {"user_id": worker_id, "task_id": task_id, "event": "rating"}
    )


async def rate(
    db: Database, who: Caller, task_id: str, stars: int, comment: str | None, tags: list[RatingTag]
) -> Rated:
    if not 1 <= stars <= 5:
        raise HxError("HX810", "A rating has 1 to 5 stars.", field="stars")
    if comment is not None and len(comment) > MAX_COMMENT:
        raise HxError("HX811", f"A comment has at most {MAX_COMMENT} characters.", field="comment")
    async with db.transaction() as tx:
        task = await _task(tx, task_id)
        role = _other_party(task, who.user_id)
        if task.state is not TaskState.COMPLETED:
            raise HxError("HX807", f"Only a completed task is rated; this one is {task.state}.")
        assert task.window_closes_at is not None
        assert task.worker_id is not None
        if datetime.now(UTC) >= task.window_closes_at:
            raise HxError("HX808", "The rating window closed 7 days after completion.")
        check_tags(role, stars, tags)
        if await tx.one(_OF, task_id=task_id, rater_id=who.user_id) is not None:
            raise HxError("HX303", "You have rated this task already.")
        inserted = await tx.one(
            _INSERT,
            task_id=task_id,
            rater_id=who.user_id,
            stars=stars,
            comment=comment,
            tags=[t.value for t in tags],
        )
        assert inserted is not None
        both = await tx.all(_RATINGS, task_id=task_id)
        revealed = len(both) == 2 and all(r.revealed_at is not None for r in both)
        if revealed:
            await _revealed(tx, task_id, task.title, task.poster_id, task.worker_id)
        return Rated(inserted.id, revealed)


async def task_ratings(db: Database, who: Caller, task_id: str) -> TaskRatings:
    """For the task's parties and admins: nothing before the reveal, then both ratings, their
    comments only for the rated user and admins."""
    task = await _task(db, task_id)
    if not who.is_admin:
        _other_party(task, who.user_id)
    found = await db.all(_RATINGS, task_id=task_id)
    mine = any(r.rater_id == who.user_id for r in found)
    revealed = len(found) == 2 and all(r.revealed_at is not None for r in found)
    shown = [
        r if who.is_admin or r.ratee_id == who.user_id else _without_comment(r)
        for r in (found if revealed else [])
    ]
    return TaskRatings(revealed, shown, mine, task.window_closes_at)


def _without_comment(rating: Rating) -> Rating:
    return Rating(
        id=rating.id,
        task_id=rating.task_id,
        rater_id=rating.rater_id,
        ratee_id=rating.ratee_id,
        ratee_role=rating.ratee_role,
        stars=rating.stars,
        comment=None,
        tags=rating.tags,
        is_auto=rating.is_auto,
        created_at=rating.created_at,
        revealed_at=rating.revealed_at,
    )


async def summary(db: Database, who: Caller, user_id: str, role: RatingRole) -> Summary:
    if not await db.scalar("rating_user_exists", bool, user_id=user_id):
        raise HxError("HX302", "No such user.")
    return await summary_of(db, who, user_id, role)


async def summary_of(db: Database, who: Caller, user_id: str, role: RatingRole) -> Summary:
    """The summary of a user known to exist."""
    counts = await db.one(_SUMMARY, user_id=user_id, role=role)
    assert counts is not None  # an aggregate has a row
    visible = who.is_admin or who.user_id == user_id or counts.count >= SUMMARY_MINIMUM
    if not visible:
        return Summary(user_id, role, False, 0, 0, None, [])
    return Summary(
        user_id,
        role,
        True,
        counts.count,
        counts.automatic_count,
        counts.average_stars,
        counts.distribution,
    )


async def close_due(db: Database, batch: int = 200) -> int:
    """rating.close: every closed window gets an automatic 5-star rating per missing direction,
    and both ratings are revealed. Returns how many tasks it closed (call again while it
    returns `batch`). Idempotent: a closed window has no row left to find."""
    async with db.transaction() as tx:
        due = await tx.all(_DUE, batch=batch)
        for window in due:
            await tx.execute("insert_auto_ratings", task_id=window.id)
            await _revealed(tx, window.id, window.title, window.poster_id, window.worker_id)
    return len(due)
