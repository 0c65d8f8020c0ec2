"""Seeded ratings and trust histories, consistent with the rules of migration 0035 by
construction (the loader copies them with triggers off, then audits them).

They draw from a random generator of their own, so that the users and tasks of a seed are the
same with or without them.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from server.domain.ratings import TAGS, WINDOW, RatingRole

Row = tuple[object, ...]
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
STARS = ((5, 0.62), (4, 0.24), (3, 0.07), (2, 0.04), (1, 0.03))
COMMENTS = {
    RatingRole.WORKER: {
        True: ("Great job, on time and tidy.", "Would hire again.", "Quick and careful."),
        False: ("Arrived late and left a mess.", "Only half of it was done.", "Hard to reach."),
    },
    RatingRole.POSTER: {
        True: ("Clear instructions, quick approval.", "Friendly and fair.", "Easy to work with."),
        False: ("The task was not as described.", "Took days to review the proof.", "Rude."),
    },
}


class RatingSeeder:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed * 7919 + 17)  # noqa: S311 - reproducible data
        self.now = now

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _stars(self) -> int:
        x, total = self.rng.random(), 0.0
        for stars, share in STARS:
            total += share
            if x < total:
                return stars
        return 5

    def _given(
        self, role: RatingRole, completed: datetime, latest: datetime
    ) -> tuple[int, str | None, list[str], datetime]:
        """(stars, comment, tags, created_at) of a rating given by hand."""
        rng = self.rng
        stars = self._stars()
        good = stars >= 4
        allowed = [t for t, negative in TAGS[role].items() if not negative or stars <= 3]
        wanted = [t for t in allowed if TAGS[role][t] != good] or allowed
        tags = sorted(rng.sample(wanted, rng.randint(0, min(2, len(wanted)))))
        comment = rng.choice(COMMENTS[role][good]) if rng.random() < 0.4 else None
        span = (latest - completed).total_seconds()
        created = completed + timedelta(seconds=10 * 60 + rng.random() * max(0.0, span - 10 * 60))
        return stars, comment, [t.value for t in tags], min(created, latest)

    def for_task(
        self, task_id: str, poster_id: str, worker_id: str, completed: datetime
    ) -> tuple[list[Row], list[Row]]:
        """(ratings, rating_windows) of a COMPLETED task: a closed window has both (given, or
        automatic), revealed together; an open one has none, one, or both (then revealed)."""
        closes = completed + WINDOW
        closed = closes <= self.now
        latest = min(self.now, closes - MINUTE)
        given: list[tuple[datetime, Row]] = []
        for rater, ratee, role in ((poster_id, worker_id, RatingRole.WORKER),
                                   (worker_id, poster_id, RatingRole.POSTER)):  # fmt: skip
            if self.rng.random() < (0.85 if closed else 0.5):
                stars, comment, tags, created = self._given(role, completed, latest)
                row: Row = (self.uuid(), task_id, rater, ratee, role.value, stars, comment, tags,
                            False, created)  # fmt: skip
            elif closed:  # rating.close's automatic rating, within the hour after the close
                created = min(closes + self.rng.randint(1, 59) * MINUTE, self.now)
                row = (self.uuid(), task_id, rater, ratee, role.value, 5, None, [], True, created)
            else:
                continue
            given.append((created, row))
        if len(given) == 2:
            revealed = max(created for created, _ in given)
            return [(*row, revealed) for _, row in given], []
        return [(*row, None) for _, row in given], [(task_id, closes)]

    def tier_history(self, user_id: str, tier: int, created: datetime) -> list[Row]:
        """trust_ledger rows that lead to `tier` one step at a time from the account's creation."""
        rows: list[Row] = [(user_id, None, 1, "account created", created)]
        when = created
        for step in range(2, tier + 1):
            when = when + (self.now - when) * (0.2 + 0.5 * self.rng.random())
            rows.append((user_id, step - 1, step, "promoted: seeded history", when))
        return rows
