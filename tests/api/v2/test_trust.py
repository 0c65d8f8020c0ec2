"""Trust tiers end to end: work done through the v2 API moves the worker's tier through the
outbox and the real worker (trust.evaluate), each change with its ledger row and notification:
five completions with ID and phone make a worker VERIFIED, a dispute lost takes it back."""

from __future__ import annotations

from hustle.v2 import dispute_pb2, task_pb2, user_pb2
from tests.api.v2.market import V2, request_id
from tests.helpers import eventually
from tests.jobs_harness import Worker

T = task_pb2


async def test_completions_promote_and_a_lost_dispute_demotes(api: V2, worker: Worker) -> None:
    world = api.world
    doer, admin = api.worker(), api.admin()
    world.verification(doer.user_id, "ID", approve_by=admin.user_id)
    world.rows(
        "UPDATE users SET phone = '+14155550199', phone_verified_at = now() WHERE id = %s",
        doer.user_id,
    )

    def tier() -> int:
        return int(world.value("SELECT trust_tier FROM users WHERE id = %s", doer.user_id))

    for _ in range(5):
        await api.complete(api.poster(), doer)
    await eventually(tier, lambda t: t == 2, timeout=30, what=lambda: worker.process.output)
    me = (await api.users.GetMe(user_pb2.GetMeRequest(), metadata=doer.auth, timeout=10)).me
    assert me.trust_tier == user_pb2.TRUST_TIER_VERIFIED

    poster = api.poster()
    task = await api.post(poster)
    await api.accept(doer, task.task_id)
    await api.submit(doer, task.task_id)
    opened = await api.disputes.OpenDispute(
        dispute_pb2.OpenDisputeRequest(
            task_id=task.task_id, reason="Not done", request_id=request_id()
        ),
        metadata=poster.auth,
    )
    await api.disputes.ResolveDispute(
        dispute_pb2.ResolveDisputeRequest(
            dispute_id=opened.dispute.dispute_id,
            resolution=dispute_pb2.DISPUTE_RESOLUTION_REFUND,
            request_id=request_id(),
        ),
        metadata=admin.auth,
    )
    await eventually(tier, lambda t: t == 1, timeout=30, what=lambda: worker.process.output)

    ledger = world.rows(
        "SELECT old_tier, new_tier, reason FROM trust_ledger WHERE user_id = %s ORDER BY id",
        doer.user_id,
    )
    assert ledger == [
        (None, 1, "account created"),
        (1, 2, "promoted: ID and phone verified, 5 tasks completed"),
        (2, 1, "demoted: a dispute was lost (refunded to the poster)"),
    ]
    told = world.rows(
        "SELECT title FROM notifications WHERE user_id = %s AND kind = 'TRUST_TIER_CHANGED'"
        " ORDER BY created_at, id",
        doer.user_id,
    )
    assert told == [("You are Verified now",), ("Your trust tier is Rookie",)]
    profile = world.value(
        "SELECT trust_tier FROM capability_profiles WHERE user_id = %s", doer.user_id
    )
    assert profile == 1
