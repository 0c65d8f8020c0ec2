"""The trust-tier rules (server.domain.trust.decide), case by case: DOMAIN.md's table, one step at
a time, demotions, the cool-down and the lapse cap."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from server.domain.trust import Counts, decide

DAY = timedelta(days=1)
# A ROOKIE with everything VERIFIED needs.
BASE = Counts(tier=1, account_age=400 * DAY, phone_verified=True, id_verified=True, completed=5,
              on_time=5, disputed=0, disputes_lost=0, no_shows=0, rated=0, average_stars=None,
              since_demotion=None)  # fmt: skip
TRUSTED = replace(BASE, tier=2, completed=20, on_time=20)
ELITE = replace(BASE, tier=3, completed=100, on_time=100, rated=80, average_stars=Decimal("4.80"))


@pytest.mark.parametrize(
    ("counts", "event", "tier"),
    [
        # to VERIFIED: ID + phone + 5 completed
        (BASE, None, 2),
        (replace(BASE, completed=4, on_time=4), None, None),
        (replace(BASE, id_verified=False), None, None),
        (replace(BASE, phone_verified=False), None, None),
        # to TRUSTED: 20 completed, >= 95 % approved and on time, no dispute lost, 7 days
        (TRUSTED, None, 3),
        (replace(TRUSTED, completed=19, on_time=19), None, None),
        (replace(TRUSTED, disputes_lost=1), None, None),
        (replace(TRUSTED, no_shows=1), None, 3),  # 20 / 21 = 95.2 % approved
        (replace(TRUSTED, no_shows=2), None, None),  # 20 / 22 = 90.9 %
        (replace(TRUSTED, on_time=19), None, 3),  # 95 % on time
        (replace(TRUSTED, on_time=18), None, None),
        (replace(TRUSTED, account_age=6 * DAY), None, None),
        # one step at a time: a ROOKIE with TRUSTED's record becomes VERIFIED first
        (replace(TRUSTED, tier=1), None, 2),
        # to ELITE: 100 completed, disputes < 1 %, average >= 4.8, 30 days
        (ELITE, None, 4),
        (replace(ELITE, completed=99, on_time=99), None, None),
        (replace(ELITE, disputed=1), None, None),  # 1 % is not under 1 %
        (replace(ELITE, average_stars=Decimal("4.79")), None, None),
        (replace(ELITE, average_stars=None, rated=0), None, None),  # only automatic ratings
        (replace(ELITE, account_age=29 * DAY), None, None),
        (replace(ELITE, tier=4), None, None),  # nothing above ELITE
        # down one tier for a dispute lost or a no-show, floor 1
        (replace(ELITE, tier=4), "dispute_lost", 3),
        (replace(TRUSTED, tier=3), "no_show", 2),
        (BASE, "no_show", None),  # a ROOKIE stays a ROOKIE
        # no promotion for 30 days after a demotion
        (replace(BASE, since_demotion=29 * DAY), None, None),
        (replace(BASE, since_demotion=31 * DAY), None, 2),
        # a lapsed ID or phone verification caps at ROOKIE, at once
        (replace(ELITE, tier=4, id_verified=False), None, 1),
        (replace(TRUSTED, tier=3, phone_verified=False), None, 1),
        (replace(TRUSTED, tier=3, phone_verified=False), "completed", 1),
        # other events are just reasons to look
        (BASE, "completed", 2),
        (BASE, "rating", 2),
    ],
)
def test_decide(counts: Counts, event: str | None, tier: int | None) -> None:
    change = decide(counts, event)
    assert (change.tier if change else None) == tier
    if change is not None:
        assert change.reason.split(":")[0] in {"promoted", "demoted", "capped at Rookie"}
