"""Trust tiers (DOMAIN.md "Trust-tier progression"): trust.evaluate moves a user's tier one step
at a time, from one statement of counts (`trust_counts`) and one pure function of them
(`decide`, tested with a table of cases).

    up to 2 VERIFIED  an APPROVED, unexpired ID verification, a verified phone, 5 completed
    up to 3 TRUSTED   20 completed, >= 95 % approved, >= 95 % on time, no dispute lost, 7 days
    up to 4 ELITE     100 completed, disputes < 1 %, average rating >= 4.8, 30 days
    down one tier     (floor 1) for a dispute lost (REFUND) or a no-show cancellation
    no promotion      for 30 days after a demotion (or a penalty that found the floor)
    capped at 1       while the ID or the phone verification has lapsed

Each change, in the caller's transaction: the reason for the ledger row the database writes
(INV-15: without one the UPDATE fails with HX104), the capability profile recomputed, the
user's feed pages dropped once it commits, TRUST_TIER_CHANGED, and after a promotion another
evaluation (the next step, if earned, is a change of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from server import outbox
from server.cache import FeedCache
from server.db import Database, Rows, Session
from server.domain.notifications import notify
from server.domain.records import NotificationKind, TrustTier

COOL_DOWN = timedelta(days=30)
# What a trust.evaluate event says happened, when it is a penalty: the ledger's words.
PENALTIES = {
    "dispute_lost": "a dispute was lost (refunded to the poster)",
    "no_show": "a no-show: the poster cancelled the accepted task",
}
NAMES = {t.value: t.name.capitalize() for t in TrustTier}


@dataclass(frozen=True, slots=True)
class Counts:
    """What the rules read about one user (as a worker)."""

    tier: int
    account_age: timedelta
    phone_verified: bool
    id_verified: bool
    completed: int
    on_time: int
    disputed: int
    disputes_lost: int
    no_shows: int
    rated: int
    average_stars: Decimal | None
    since_demotion: timedelta | None  # since the last demotion or penalty; None: never


@dataclass(frozen=True, slots=True)
class Change:
    tier: int
    reason: str


@dataclass(frozen=True, slots=True)
class TierChange:
    user_id: str
    old_tier: int
    new_tier: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Profile:
    version: int
    location_state: str | None
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class _Id:
    id: str


_COUNTS = Rows("trust_counts", Counts)
_PROFILE = Rows("trust_profile", _Profile)
_CANDIDATES = Rows("trust_sweep_candidates", _Id)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def promotion(c: Counts) -> str | None:
    """Why `c` earns the next tier, or None."""
    if c.tier == 1:
        if c.id_verified and c.phone_verified and c.completed >= 5:
            return f"ID and phone verified, {c.completed} tasks completed"
    elif c.tier == 2:
        approved = _share(c.completed, c.completed + c.disputes_lost + c.no_shows)
        if (
            c.completed >= 20
            and approved >= 0.95
            and _share(c.on_time, c.completed) >= 0.95
            and c.disputes_lost == 0
            and c.account_age >= timedelta(days=7)
        ):
            return f"{c.completed} tasks completed, {approved:.0%} approved, none lost in a dispute"
    elif c.tier == 3 and (
        c.completed >= 100
        and _share(c.disputed, c.completed) < 0.01
        and c.average_stars is not None
        and c.average_stars >= Decimal("4.8")
        and c.account_age >= timedelta(days=30)
    ):
        return f"{c.completed} tasks completed, average rating {c.average_stars}"
    return None


def decide(c: Counts, event: str | None = None) -> Change | None:
    """The one step `c` calls for (None: the tier stays). `event` is what the evaluation was
    asked for: a penalty (PENALTIES) demotes once, whatever the counts say."""
    if event in PENALTIES:
        if c.tier > 1:
            return Change(c.tier - 1, f"demoted: {PENALTIES[event]}")
        return None
    if c.tier > 1 and not (c.id_verified and c.phone_verified):
        lapsed = "the ID verification" if not c.id_verified else "the phone verification"
        return Change(1, f"capped at Rookie: {lapsed} lapsed")
    if c.tier >= 4 or (c.since_demotion is not None and c.since_demotion < COOL_DOWN):
        return None
    why = promotion(c)
    return Change(c.tier + 1, f"promoted: {why}") if why else None


async def evaluate(
    tx: Session, cache: FeedCache, user_id: str, event: str | None = None
) -> TierChange | None:
    """Evaluate one user in the caller's transaction; the change made, if any."""
    if await tx.scalar("lock_user_tier", int, user_id=user_id) is None:
        return None  # no such user (any more)
    counts = await tx.one(_COUNTS, user_id=user_id)
    assert counts is not None
    change = decide(counts, event)
    if change is None:
        return None
    await tx.execute("set_trust_reason", reason=change.reason)
    await tx.execute("set_trust_tier", user_id=user_id, tier=change.tier)
    profile = await tx.one(_PROFILE, user_id=user_id)
    assert profile is not None
    until = profile.valid_until.timestamp() if profile.valid_until else None
    tx.on_commit(
        lambda: cache.profile_changed(user_id, profile.version, profile.location_state, until)
    )
    up = change.tier > counts.tier
    await notify(
        tx,
        user_id,
        NotificationKind.TRUST_TIER_CHANGED,
        f"You are {NAMES[change.tier]} now" if up else f"Your trust tier is {NAMES[change.tier]}",
        change.reason[0].upper() + change.reason[1:] + ".",
        data={"old_tier": counts.tier, "new_tier": change.tier},
    )
    if up and change.tier < 4:
        await outbox.enqueue(tx, "trust.evaluate", {"user_id": user_id, "event": "step"})
    return TierChange(user_id, counts.tier, change.tier, change.reason)


async def sweep(db: Database, cache: FeedCache, batch: int = 500) -> int:
    """The daily sweep: every user whose tier may move (a lapse, or the completions of the next
    tier) is evaluated, each in a transaction of its own. Returns how many changed."""
    changed, after = 0, "00000000-0000-0000-0000-000000000000"
    while True:
        found = await db.all(_CANDIDATES, after=after, batch=batch)
        for candidate in found:
            async with db.transaction() as tx:
                if await evaluate(tx, cache, candidate.id) is not None:
                    changed += 1
        if len(found) < batch:
            return changed
        after = found[-1].id
