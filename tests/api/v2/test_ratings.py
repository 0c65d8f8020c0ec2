"""hustle.v2.RatingService through a real channel: both parties rate and the ratings are revealed
together, blind before; summaries (on the profile too); every refusal with its HX code; who
may call what; rating.close's automatic ratings through the real worker."""

from __future__ import annotations

import uuid

import dramatiq
import grpc
import pytest
from dramatiq.brokers.redis import RedisBroker
from grpc import aio

from hustle.v2 import common_pb2, dispute_pb2, rating_pb2, rating_pb2_grpc, task_pb2, user_pb2
from server.db import Database
from server.domain import ratings as rating_rules
from tests.api.market import Person
from tests.api.v2.market import V2, fails, invalid, request_id
from tests.helpers import eventually
from tests.jobs_harness import Worker

R = rating_pb2
T = task_pb2
S = grpc.StatusCode
WORKER, POSTER = R.RATING_ROLE_WORKER, R.RATING_ROLE_POSTER


@pytest.fixture
def ratings(v2_channel: aio.Channel) -> rating_pb2_grpc.RatingServiceStub:
    return rating_pb2_grpc.RatingServiceStub(v2_channel)


async def completed(api: V2) -> tuple[str, Person, Person]:
    """A task done through the API: (task id, poster, worker)."""
    poster, worker = api.poster(), api.worker()
    return await api.complete(poster, worker), poster, worker


def trigger(redis_url: str, actor: str) -> None:
    """Send a periodic actor's message, as the scheduler does at its time."""
    producer = RedisBroker(url=redis_url)
    producer.enqueue(
        dramatiq.Message(queue_name="schedules", actor_name=actor, args=(), kwargs={}, options={})
    )
    producer.close()


def backdate(api: V2, task_id: str, days: float) -> None:
    """Completed `days` ago (the past written with triggers off, as a restore would)."""
    api.world.rows("SET session_replication_role = replica")
    api.world.rows(
        "UPDATE tasks SET completed_at = completed_at - make_interval(secs => %s) WHERE id = %s",
        days * 86400,
        task_id,
    )
    api.world.rows(
        "UPDATE rating_windows SET closes_at = closes_at - make_interval(secs => %s) WHERE task_id = %s",
        days * 86400,
        task_id,
    )
    api.world.rows("SET session_replication_role = origin")


def kinds(api: V2, user: Person, *wanted: str) -> list[str]:
    rows = api.world.rows(
        "SELECT kind FROM notifications WHERE user_id = %s AND kind = ANY(%s) ORDER BY created_at, kind",
        user.user_id,
        list(wanted),
    )
    return [r[0] for r in rows]


def rate_request(task_id: str, stars: int = 5, comment: str = "", tags: tuple[int, ...] = ()) -> R.RateTaskRequest:  # fmt: skip
    return R.RateTaskRequest(task_id=task_id, stars=stars, comment=comment, tags=list(tags),
                             request_id=request_id())  # fmt: skip


async def test_both_rate_blind_then_both_are_revealed(
    api: V2, ratings: rating_pb2_grpc.RatingServiceStub
) -> None:
    task_id, poster, worker = await completed(api)
    admin, stranger = api.admin(), api.poster()
    ask = "RATING_REQUESTED"
    assert kinds(api, poster, ask) == [ask]
    assert kinds(api, worker, ask) == [ask]
    view = R.GetTaskRatingsRequest(task_id=task_id)

    first = await ratings.RateTask(
        rate_request(task_id, 3, "  Good work, a bit late.  ", (R.RATING_TAG_QUALITY_WORK, R.RATING_TAG_LATE)),
        metadata=poster.auth,
    )  # fmt: skip
    assert not first.revealed
    for who, mine in ((poster, True), (worker, False), (admin, False)):
        seen = await ratings.GetTaskRatings(view, metadata=who.auth)
        # nothing readable before the reveal, not even one's own rating
        assert (seen.revealed, list(seen.ratings), seen.rated_by_caller) == (False, [], mine)
        assert seen.window_closes_at.seconds > 0

    second = await ratings.RateTask(
        rate_request(task_id, 5, "Clear brief.", (R.RATING_TAG_CLEAR_INSTRUCTIONS,)), metadata=worker.auth
    )  # fmt: skip
    assert second.revealed
    shown = {}
    for who in (poster, worker, admin):
        seen = await ratings.GetTaskRatings(view, metadata=who.auth)
        assert seen.revealed
        assert len(seen.ratings) == 2
        assert len({r.revealed_at.ToNanoseconds() for r in seen.ratings}) == 1  # together
        shown[who.id] = {r.ratee_role: r for r in seen.ratings}
    of_worker, of_poster = shown[admin.id][WORKER], shown[admin.id][POSTER]
    assert (of_worker.rater_id, of_worker.ratee_id, of_worker.stars) == (poster.id, worker.id, 3)
    assert list(of_worker.tags) == [R.RATING_TAG_QUALITY_WORK, R.RATING_TAG_LATE]
    assert (of_worker.comment, of_poster.comment) == ("Good work, a bit late.", "Clear brief.")
    assert not of_worker.automatic
    # comments only for the rated user (and admins): not even the rater reads theirs back
    assert shown[worker.id][WORKER].comment == "Good work, a bit late."
    assert shown[worker.id][POSTER].comment == ""
    assert shown[poster.id][POSTER].comment == "Clear brief."
    assert shown[poster.id][WORKER].comment == ""
    done = "RATINGS_REVEALED"
    assert kinds(api, poster, done) == [done]
    assert kinds(api, worker, done) == [done]

    summary = R.GetRatingSummaryRequest(user_id=worker.id, role=WORKER)
    own = (await ratings.GetRatingSummary(summary, metadata=worker.auth)).summary
    assert (own.visible, own.count, own.automatic_count, own.average_stars) == (True, 1, 0, 3.0)
    assert list(own.distribution) == [0, 0, 1, 0, 0]
    theirs = (await ratings.GetRatingSummary(summary, metadata=stranger.auth)).summary
    assert (theirs.visible, theirs.count, list(theirs.distribution)) == (False, 0, [])  # < 5
    profile = await api.users.GetUser(
        user_pb2.GetUserRequest(user_id=poster.id), metadata=poster.auth
    )
    assert (profile.user.poster_rating.visible, profile.user.poster_rating.average_stars) == (
        True,
        5.0,
    )
    assert profile.user.worker_rating.count == 0


async def test_others_see_a_summary_from_five_ratings(
    api: V2, ratings: rating_pb2_grpc.RatingServiceStub
) -> None:
    worker = api.worker()
    world = api.world
    stars = [5, 4, 4, 3]
    for given in [*stars, None]:  # four given, one automatic
        task = world.task()
        world.accept(task, worker.user_id)
        world.submit_proof(task)
        world.approve(task)
        if given is None:
            backdate(api, str(task), 8)
            world.rows(
                "INSERT INTO ratings (task_id, rater_id, stars, is_auto)"
                " SELECT id, p, 5, true FROM tasks, LATERAL (VALUES (poster_id), (worker_id)) v(p) WHERE id = %s",
                task,
            )
        else:
            world.rows(
                "INSERT INTO ratings (task_id, rater_id, stars) SELECT id, poster_id, %s FROM tasks WHERE id = %s",
                given,
                task,
            )
            world.rows(
                "INSERT INTO ratings (task_id, rater_id, stars) SELECT id, worker_id, 5 FROM tasks WHERE id = %s",
                task,
            )
    request = R.GetRatingSummaryRequest(user_id=worker.id, role=WORKER)
    seen = (await ratings.GetRatingSummary(request, metadata=api.poster().auth)).summary
    assert (seen.visible, seen.count, seen.automatic_count) == (True, 5, 1)
    assert seen.average_stars == 4.0  # (5 + 4 + 4 + 3) / 4: the automatic one is not averaged
    assert list(seen.distribution) == [0, 0, 1, 2, 1]
    await fails(
        ratings.GetRatingSummary(R.GetRatingSummaryRequest(user_id=str(uuid.uuid4()), role=WORKER),
                                 metadata=worker.auth), S.NOT_FOUND, "HX302")  # fmt: skip
    assert await invalid(
        ratings.GetRatingSummary(R.GetRatingSummaryRequest(user_id="x"), metadata=worker.auth)
    ) == {
        "user_id": "is not a valid id",
        "role": "must be RATING_ROLE_WORKER or RATING_ROLE_POSTER",
    }


async def test_refusals(api: V2, ratings: rating_pb2_grpc.RatingServiceStub) -> None:
    poster, worker = api.poster(), api.worker()
    task = await api.post(poster)
    await api.accept(worker, task.task_id)
    early = ratings.RateTask(rate_request(task.task_id), metadata=poster.auth)
    await fails(early, S.FAILED_PRECONDITION, "HX807")  # not completed yet

    task_id, poster, worker = await completed(api)
    stranger = api.worker()
    await fails(
        ratings.RateTask(rate_request(task_id), metadata=stranger.auth),
        S.PERMISSION_DENIED,
        "HX802",
    )
    await fails(
        ratings.RateTask(rate_request(str(uuid.uuid4())), metadata=poster.auth),
        S.NOT_FOUND,
        "HX302",
    )
    await fails(
        ratings.RateTask(rate_request(task_id, 0), metadata=poster.auth),
        S.INVALID_ARGUMENT,
        "HX810",
    )
    await fails(
        ratings.RateTask(rate_request(task_id, 6), metadata=poster.auth),
        S.INVALID_ARGUMENT,
        "HX810",
    )
    await fails(ratings.RateTask(rate_request(task_id, 5, "x" * 501), metadata=poster.auth),
                S.INVALID_ARGUMENT, "HX811")  # fmt: skip
    wrong = await invalid(ratings.RateTask(
        rate_request(task_id, 5, "", (R.RATING_TAG_RUDE, R.RATING_TAG_LATE, 99)), metadata=poster.auth))  # fmt: skip
    assert set(wrong) == {"tags[2]"}  # an unknown value, first: input checks
    wrong = await invalid(ratings.RateTask(
        rate_request(task_id, 5, "", (R.RATING_TAG_RUDE, R.RATING_TAG_LATE, R.RATING_TAG_LATE)),
        metadata=poster.auth))  # fmt: skip
    assert wrong == {
        "tags[0]": "RUDE is not a tag for rating a WORKER",
        "tags[1]": "LATE is negative: only with 3 stars or fewer",
        "tags[2]": "LATE is given twice",
    }
    assert await invalid(
        ratings.RateTask(
            R.RateTaskRequest(task_id="nope", stars=5, request_id="x"), metadata=poster.auth
        )
    ) == {
        "task_id": "is not a valid id",
        "request_id": "must be a UUID (or empty: no retry detection)",
    }
    assert api.world.value("SELECT count(*) FROM ratings") == 0  # nothing half-written

    rid = request_id()
    once = R.RateTaskRequest(task_id=task_id, stars=3, request_id=rid)
    first = await ratings.RateTask(once, metadata=poster.auth)
    assert await ratings.RateTask(once, metadata=poster.auth) == first  # a retry: the same answer
    await fails(
        ratings.RateTask(rate_request(task_id), metadata=poster.auth), S.ALREADY_EXISTS, "HX303"
    )
    # reading before the reveal shows nothing, even to the rater
    seen = await ratings.GetTaskRatings(
        R.GetTaskRatingsRequest(task_id=task_id), metadata=poster.auth
    )
    assert not seen.revealed
    assert not seen.ratings

    backdate(api, task_id, 7.01)
    await fails(
        ratings.RateTask(rate_request(task_id), metadata=worker.auth),
        S.FAILED_PRECONDITION,
        "HX808",
    )
    assert api.world.value("SELECT count(*) FROM ratings") == 1


async def test_who_may_call_what(api: V2, ratings: rating_pb2_grpc.RatingServiceStub) -> None:
    task_id, poster, worker = await completed(api)
    admin, stranger = api.admin(), api.worker()
    view = R.GetTaskRatingsRequest(task_id=task_id)
    summary = R.GetRatingSummaryRequest(user_id=worker.id, role=WORKER)
    for call in (ratings.RateTask(rate_request(task_id)), ratings.GetTaskRatings(view),
                 ratings.GetRatingSummary(summary)):  # fmt: skip
        await fails(call, S.UNAUTHENTICATED, "HX401")  # anonymous
    await fails(
        ratings.RateTask(rate_request(task_id), metadata=stranger.auth),
        S.PERMISSION_DENIED,
        "HX802",
    )
    await fails(
        ratings.RateTask(rate_request(task_id), metadata=admin.auth), S.PERMISSION_DENIED, "HX802"
    )
    await fails(ratings.GetTaskRatings(view, metadata=stranger.auth), S.PERMISSION_DENIED, "HX802")
    for who in (poster, worker, admin):
        assert not (await ratings.GetTaskRatings(view, metadata=who.auth)).revealed
    for who, visible in ((stranger, False), (poster, False), (worker, True), (admin, True)):
        seen = (await ratings.GetRatingSummary(summary, metadata=who.auth)).summary
        assert seen.visible is visible, who
    await ratings.RateTask(rate_request(task_id), metadata=poster.auth)
    await ratings.RateTask(rate_request(task_id), metadata=worker.auth)
    await fails(ratings.GetTaskRatings(view, metadata=stranger.auth), S.PERMISSION_DENIED, "HX802")


async def test_rating_close_adds_automatic_ratings_and_reveals(
    api: V2,
    ratings: rating_pb2_grpc.RatingServiceStub,
    worker: Worker,
    redis_url: str,
    db: Database,
) -> None:
    rated_once, poster, party = await completed(api)
    await ratings.RateTask(
        rate_request(rated_once, 2, "Late.", (R.RATING_TAG_LATE,)), metadata=poster.auth
    )
    silent, _, _ = await completed(api)
    still_open, _, _ = await completed(api)
    backdate(api, rated_once, 7.5)
    backdate(api, silent, 8)
    trigger(redis_url, "rating.close")
    await eventually(
        lambda: api.world.value("SELECT count(*) FROM ratings WHERE revealed_at IS NOT NULL"),
        lambda n: n == 4,
        timeout=30,
        what=lambda: worker.process.output,
    )
    seen = await ratings.GetTaskRatings(
        R.GetTaskRatingsRequest(task_id=rated_once), metadata=party.auth
    )
    by_role = {r.ratee_role: r for r in seen.ratings}
    assert (by_role[WORKER].stars, by_role[WORKER].automatic, by_role[WORKER].comment) == (
        2,
        False,
        "Late.",
    )
    assert (by_role[POSTER].stars, by_role[POSTER].automatic, by_role[POSTER].comment) == (
        5,
        True,
        "",
    )
    autos = api.world.value("SELECT count(*) FROM ratings WHERE is_auto AND task_id = %s", silent)
    assert autos == 2
    assert api.world.value("SELECT count(*) FROM ratings WHERE task_id = %s", still_open) == 0
    assert kinds(api, party, "RATINGS_REVEALED") == ["RATINGS_REVEALED"]
    # idempotent: nothing is left to close, and closing again adds nothing
    assert await rating_rules.close_due(db) == 0
    assert api.world.value("SELECT count(*) FROM ratings") == 4


async def test_a_dispute_settled_by_split_asks_for_ratings_and_a_refund_does_not(
    api: V2, ratings: rating_pb2_grpc.RatingServiceStub
) -> None:
    admin = api.admin()
    outcomes = {}
    for resolution in (dispute_pb2.DISPUTE_RESOLUTION_SPLIT, dispute_pb2.DISPUTE_RESOLUTION_REFUND):
        poster, worker = api.poster(), api.worker()
        task = await api.post(poster)
        await api.accept(worker, task.task_id)
        await api.submit(worker, task.task_id)
        opened = await api.disputes.OpenDispute(
            dispute_pb2.OpenDisputeRequest(
                task_id=task.task_id, reason="Half done", request_id=request_id()
            ),
            metadata=poster.auth,
        )
        split = common_pb2.Money(amount_cents=2000, currency="USD")
        await api.disputes.ResolveDispute(
            dispute_pb2.ResolveDisputeRequest(
                dispute_id=opened.dispute.dispute_id, resolution=resolution, request_id=request_id(),
                split_release=split if resolution == dispute_pb2.DISPUTE_RESOLUTION_SPLIT else None,
            ),
            metadata=admin.auth,
        )  # fmt: skip
        outcomes[resolution] = (task.task_id, poster, worker)
    task_id, poster, worker = outcomes[dispute_pb2.DISPUTE_RESOLUTION_SPLIT]
    ask = "RATING_REQUESTED"
    assert kinds(api, poster, ask) == [ask]
    assert kinds(api, worker, ask) == [ask]
    assert (await ratings.RateTask(rate_request(task_id, 3), metadata=poster.auth)).rating_id
    task_id, poster, worker = outcomes[dispute_pb2.DISPUTE_RESOLUTION_REFUND]
    assert kinds(api, poster, ask) == []
    assert kinds(api, worker, ask) == []
    await fails(
        ratings.RateTask(rate_request(task_id), metadata=poster.auth),
        S.FAILED_PRECONDITION,
        "HX807",
    )
    lost = api.world.rows(
        "SELECT payload->>'event' FROM outbox WHERE job = 'trust.evaluate' AND payload->>'task_id' = %s",
        task_id,
    )
    assert lost == [("dispute_lost",)]  # the worker's tier is evaluated for the loss
