"""hustle.v2.RatingService: input checks and translation; the rules live in
server.domain.ratings (and, once more, in the database)."""

from __future__ import annotations

from typing import Any

from grpc import aio

from hustle.v2 import rating_pb2, rating_pb2_grpc
from server import caller, validation
from server.api.v2 import convert
from server.db import Database
from server.domain import ratings
from server.domain.ratings import RatingRole, RatingTag
from server.errors import invalid
from server.validation import Checks

Context = aio.ServicerContext[Any, Any]
R = rating_pb2


def role(value: int, field: str = "role") -> RatingRole:
    found = convert.RATING_ROLES.to_domain(value)
    if found is None:
        raise invalid(field, "must be RATING_ROLE_WORKER or RATING_ROLE_POSTER")
    return found


class RatingService(rating_pb2_grpc.RatingServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def RateTask(self, request: R.RateTaskRequest, context: Context) -> R.RateTaskResponse:
        tags: list[RatingTag] = []
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
            for i, value in enumerate(request.tags):
                tag = convert.RATING_TAGS.to_domain(value)
                if tag is None:
                    check.fail(f"tags[{i}]", "is not a rating tag")
                else:
                    tags.append(tag)
            check(validation.request_id, request.request_id)
        comment = request.comment.strip() or None
        rated = await ratings.rate(
            self._db, caller.current(), task_id, request.stars, comment, tags
        )
        return R.RateTaskResponse(rating_id=rated.id, revealed=rated.revealed)

    async def GetTaskRatings(
        self, request: R.GetTaskRatingsRequest, context: Context
    ) -> R.GetTaskRatingsResponse:
        with Checks() as check:
            task_id = check(validation.uuid_id, request.task_id, "task_id")
        found = await ratings.task_ratings(self._db, caller.current(), task_id)
        return R.GetTaskRatingsResponse(
            revealed=found.revealed,
            ratings=[convert.rating(r) for r in found.ratings],
            rated_by_caller=found.rated_by_caller,
            window_closes_at=convert.timestamp(found.window_closes_at),
        )

    async def GetRatingSummary(
        self, request: R.GetRatingSummaryRequest, context: Context
    ) -> R.GetRatingSummaryResponse:
        with Checks() as check:
            user_id = check(validation.uuid_id, request.user_id, "user_id")
            chosen = check(role, request.role)
        found = await ratings.summary(self._db, caller.current(), user_id, chosen)
        return R.GetRatingSummaryResponse(summary=convert.rating_summary(found))
