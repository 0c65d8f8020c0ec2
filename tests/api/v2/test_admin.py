"""hustle.v2.AdminService through a real channel, and the command line's first admin: admin
rights (never on oneself, never the last admin), suspension, reinstatement and bans with their
effects on sessions, sign-in, tasks, escrows and feeds, the admin log, and the admin reads."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from typing import Any

import grpc
import pytest
from grpc import aio

from hustle.v2 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    dispute_pb2,
    feed_pb2,
    task_pb2,
    user_pb2,
)
from server import security
from tests.api.market import Person
from tests.api.v2.market import V2, fails, invalid, request_id

A = admin_pb2
PASSWORD = "correct horse battery staple 9"
DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture
def admin_api(v2_channel: aio.Channel) -> admin_pb2_grpc.AdminServiceStub:
    return admin_pb2_grpc.AdminServiceStub(v2_channel)


async def cli(database_url: str, *args: str) -> tuple[int, str, str]:
    """`python -m server admin ...` against the test database, as an operator runs it."""
    env = {**os.environ, "DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server", "admin", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def log_rows(api: V2, target: str) -> list[tuple[Any, ...]]:
    return api.world.rows(
        "SELECT action, actor_id, actor_label, reason, details FROM admin_actions"
        " WHERE target_id = %s ORDER BY id",
        target,
    )


async def with_password(api: V2, user: uuid.UUID) -> str:
    """Give a database-made user a real password; their email."""
    api.world.rows(
        "UPDATE users SET password_hash = %s WHERE id = %s",
        await security.hash_password(PASSWORD),
        user,
    )
    email: str = api.world.value("SELECT email FROM users WHERE id = %s", user)
    return email


async def sign_in(api: V2, email: str) -> auth_pb2.SignInResponse:
    return await api.auth.SignIn(auth_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10)


async def feed_ids(api: V2, who: Person, page_size: int = 50) -> list[str]:
    found = await api.feed.GetFeed(
        feed_pb2.GetFeedRequest(mode=feed_pb2.FEED_MODE_NORMAL, page_size=page_size),
        metadata=who.auth,
        timeout=10,
    )
    return [item.task.task_id for item in found.items]


def grant(user: Person | str, reason: str = "runs support") -> A.GrantAdminRequest:
    user_id = user if isinstance(user, str) else user.id
    return A.GrantAdminRequest(user_id=user_id, reason=reason, request_id=request_id())


async def test_the_command_line_makes_the_first_admin_who_grants_another(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub, database_url: str
) -> None:
    first = api.world.user()
    email = api.world.value("SELECT email FROM users WHERE id = %s", first)
    code, out, _ = await cli(database_url, "grant", email.upper())
    assert code == 0
    assert "is now an admin" in out
    assert api.world.value("SELECT is_admin FROM users WHERE id = %s", first) is True
    assert log_rows(api, str(first)) == [
        ("admin.grant", None, "cli", "granted on the command line", {})
    ]
    code, out, _ = await cli(database_url, "grant", email)  # idempotent: nothing logged
    assert code == 0
    assert "admin already" in out
    assert len(log_rows(api, str(first))) == 1
    code, _, err = await cli(database_url, "grant", "nobody@example.com")
    assert code == 1
    assert "nobody@example.com" in err

    boss, other = api.people.session(first), api.poster()
    listing = admin_api.ListAdminActions(A.ListAdminActionsRequest(), metadata=other.auth)
    await fails(listing, DENIED, "HX202")  # (their session is now cached as a non-admin)
    granted = await admin_api.GrantAdmin(grant(other), metadata=boss.auth, timeout=10)
    assert granted.account.is_admin
    assert granted.action.action == "admin.grant"
    assert granted.action.actor_kind == A.ACTOR_KIND_USER
    assert granted.action.actor_id == boss.id
    assert granted.action.reason == "runs support"
    # the cached session forgot it was not an admin's
    actions = await admin_api.ListAdminActions(A.ListAdminActionsRequest(), metadata=other.auth)
    assert [a.action for a in actions.actions] == ["admin.grant", "admin.grant"]  # newest first
    assert actions.actions[0].target_id == other.id
    assert actions.actions[1].actor_kind == A.ACTOR_KIND_CLI
    assert not actions.actions[1].actor_id
    again = await admin_api.GrantAdmin(grant(other), metadata=boss.auth, timeout=10)
    assert again.account.is_admin
    assert not again.HasField("action")


async def test_no_admin_revokes_themself_and_the_last_admin_stays(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub
) -> None:
    alone = api.admin()
    revoke_self = A.RevokeAdminRequest(user_id=alone.id, reason="tired", request_id=request_id())
    await fails(
        admin_api.RevokeAdmin(revoke_self, metadata=alone.auth),
        grpc.StatusCode.FAILED_PRECONDITION,
        "HX206",
    )
    grant_self = grant(alone)
    await fails(admin_api.GrantAdmin(grant_self, metadata=alone.auth), grpc.StatusCode.FAILED_PRECONDITION, "HX206")  # fmt: skip

    other = api.poster()
    await admin_api.GrantAdmin(grant(other), metadata=alone.auth, timeout=10)
    # both revoke the other at once: one wins, the loser is no longer an admin (HX205), and
    # one admin remains
    results = await asyncio.gather(
        *(
            admin_api.RevokeAdmin(
                A.RevokeAdminRequest(user_id=them.id, reason="coup", request_id=request_id()),
                metadata=me.auth,
                timeout=10,
            )
            for me, them in ((alone, other), (other, alone))
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, A.RevokeAdminResponse)]
    lost = [r for r in results if isinstance(r, aio.AioRpcError)]
    assert len(won) == 1, results
    assert len(lost) == 1, results
    assert lost[0].code() in (DENIED, grpc.StatusCode.FAILED_PRECONDITION)
    assert api.world.value("SELECT count(*) FROM users WHERE is_admin") == 1
    assert api.world.value("SELECT count(*) FROM admin_actions WHERE action = 'admin.revoke'") == 1
    survivor = alone if won[0].account.user_id == other.id else other
    loser = other if survivor is alone else alone
    listing = admin_api.ListAdminActions(A.ListAdminActionsRequest(), metadata=loser.auth)
    await fails(listing, DENIED, "HX202")  # their cached admin session was forgotten
    last = A.RevokeAdminRequest(user_id=survivor.id, reason="x", request_id=request_id())
    await fails(admin_api.RevokeAdmin(last, metadata=survivor.auth), grpc.StatusCode.FAILED_PRECONDITION, "HX206")  # fmt: skip


async def test_suspending_a_worker_ends_their_sessions_tasks_and_eligibility(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub
) -> None:
    boss, poster = api.admin(), api.poster()
    worker_id = api.world.worker()
    worker, colleague = api.people.session(worker_id), api.worker()
    email = await with_password(api, worker_id)
    open_task = await api.post(poster, title="Open")
    taken = await api.post(poster, title="Taken")
    await api.accept(worker, taken.task_id)
    proved = await api.post(poster, title="Proved")
    await api.accept(worker, proved.task_id)
    await api.submit(worker, proved.task_id)
    assert open_task.task_id in await feed_ids(api, worker)

    suspended = await admin_api.SuspendUser(
        A.SuspendUserRequest(user_id=worker.id, reason="spam", request_id=request_id()),
        metadata=boss.auth, timeout=10,
    )  # fmt: skip
    done = suspended.restriction
    assert done.account.account_status == A.ACCOUNT_STATUS_SUSPENDED
    assert done.account.HasField("account_status_at")
    assert done.sessions_revoked == 1
    assert list(done.cancelled_task_ids) == [taken.task_id]
    assert len(done.opened_dispute_ids) == 1
    w = api.world
    assert (w.task_state(uuid.UUID(taken.task_id)), w.escrow_state(uuid.UUID(taken.task_id))) == (
        "CANCELLED", "REFUNDED")  # fmt: skip
    assert (w.task_state(uuid.UUID(proved.task_id)), w.escrow_state(uuid.UUID(proved.task_id))) == (
        "DISPUTED", "LOCKED_DISPUTE")  # fmt: skip
    assert w.task_state(uuid.UUID(open_task.task_id)) == "OPEN"  # the poster's, not theirs
    # their session no longer works, they cannot sign in, they are eligible for nothing
    await fails(api.feed.GetFeed(feed_pb2.GetFeedRequest(), metadata=worker.auth), grpc.StatusCode.UNAUTHENTICATED, "HX401")  # fmt: skip
    await fails(sign_in(api, email), DENIED, "HX405")
    eligible = w.value(
        "SELECT count(*) FROM tasks t JOIN capability_profiles p ON p.user_id = %s"
        " WHERE is_eligible(t, p)",
        worker_id,
    )
    assert eligible == 0
    assert open_task.task_id in await feed_ids(api, colleague)
    # told in the app and by email; their cached sessions are forgotten by a job too
    assert "ACCOUNT_SUSPENDED" in api.people.notifications(worker)
    assert {"TASK_CANCELLED", "ESCROW_REFUNDED", "DISPUTE_OPENED"} <= set(
        api.people.notifications(poster)
    )
    jobs = w.rows("SELECT job, payload->>'template', payload->'params'->>'status' FROM outbox")
    assert ("email.send", "account_status", "SUSPENDED") in jobs
    assert ("session.forget", None, None) in jobs
    assert jobs.count(("email.send", "dispute_opened", None)) == 2  # both parties
    [(action, actor, label, reason, details)] = log_rows(api, worker.id)
    assert (action, str(actor), label, reason) == ("user.suspend", boss.id, "user", "spam")
    assert details["tasks_cancelled"] == [taken.task_id]
    assert details["sessions_revoked"] == 1

    again = await admin_api.SuspendUser(
        A.SuspendUserRequest(user_id=worker.id, reason="spam", request_id=request_id()),
        metadata=boss.auth, timeout=10,
    )  # fmt: skip
    assert not again.restriction.HasField("action")
    assert len(log_rows(api, worker.id)) == 1

    back = await admin_api.ReinstateUser(
        A.ReinstateUserRequest(user_id=worker.id, reason="appeal granted", request_id=request_id()),
        metadata=boss.auth, timeout=10,
    )  # fmt: skip
    assert back.account.account_status == A.ACCOUNT_STATUS_ACTIVE
    assert back.action.action == "user.reinstate"
    assert back.action.reason == "appeal granted"
    session = await sign_in(api, email)
    again_worker = Person(worker_id, session.session.access_token)
    assert open_task.task_id in await feed_ids(api, again_worker, page_size=7)
    assert "ACCOUNT_REINSTATED" in api.people.notifications(worker)


async def test_a_session_that_raced_the_suspension_reads_an_empty_feed_and_changes_nothing(
    api: V2,
) -> None:
    poster, colleague = api.poster(), api.worker()
    worker_id = api.world.worker()
    cached, fresh = api.people.session(worker_id), api.people.session(worker_id)
    task = await api.post(poster)
    await api.users.GetMe(user_pb2.GetMeRequest(), metadata=cached.auth, timeout=10)
    # the window between a suspension's commit and its sessions' revocation reaching the
    # cache, held open: one session cached as active, one looked up afresh
    api.world.rows("UPDATE users SET account_status = 'SUSPENDED' WHERE id = %s", worker_id)
    assert await feed_ids(api, cached) == []  # eligible for nothing: the database says so
    assert await feed_ids(api, colleague) == [task.task_id]
    # the cached session passes admission: the database refuses (the accept's predicate, the
    # post's trigger)
    await fails(api.accept(cached, task.task_id, rid=request_id()), DENIED, "HX405")
    await fails(api.create(cached), DENIED, "HX405")
    # the fresh lookup knows the standing: admission refuses every mutation, reads go on
    await fails(api.accept(fresh, task.task_id, rid=request_id()), DENIED, "HX405")
    assert await feed_ids(api, fresh, page_size=3) == []
    assert api.world.task_state(uuid.UUID(task.task_id)) == "OPEN"
    assert api.world.value("SELECT count(*) FROM tasks WHERE poster_id = %s", worker_id) == 0


async def test_a_ban_is_final_and_cancels_the_posters_open_tasks(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub
) -> None:
    boss, worker = api.admin(), api.worker()
    poster_id = api.world.user()
    poster = api.people.session(poster_id)
    email = await with_password(api, poster_id)
    listed = await api.post(poster, title="Listed")
    unfunded = await api.create(poster)
    taken = await api.post(poster, title="Taken")
    await api.accept(worker, taken.task_id)
    assert listed.task_id in await feed_ids(api, worker)  # (cached now)

    banned = await admin_api.BanUser(
        A.BanUserRequest(user_id=poster.id, reason="fraud", request_id=request_id()),
        metadata=boss.auth, timeout=10,
    )  # fmt: skip
    assert banned.restriction.account.account_status == A.ACCOUNT_STATUS_BANNED
    assert set(banned.restriction.cancelled_task_ids) == {listed.task_id, unfunded.task_id}
    w = api.world
    assert w.escrow_state(uuid.UUID(listed.task_id)) == "REFUNDED"
    assert w.escrow_state(uuid.UUID(unfunded.task_id)) == "PENDING"
    assert w.task_state(uuid.UUID(taken.task_id)) == "ACCEPTED"  # as a poster: goes on
    assert await feed_ids(api, worker) == []  # the state's feeds were invalidated
    await fails(sign_in(api, email), DENIED, "HX405")
    reinstate = A.ReinstateUserRequest(user_id=poster.id, reason="sorry", request_id=request_id())
    await fails(admin_api.ReinstateUser(reinstate, metadata=boss.auth), grpc.StatusCode.FAILED_PRECONDITION, "HX003")  # fmt: skip
    suspend = A.SuspendUserRequest(user_id=poster.id, reason="x", request_id=request_id())
    await fails(admin_api.SuspendUser(suspend, metadata=boss.auth), grpc.StatusCode.FAILED_PRECONDITION, "HX003")  # fmt: skip
    assert [r[0] for r in log_rows(api, poster.id)] == ["user.ban"]
    for own in (
        admin_api.BanUser(A.BanUserRequest(user_id=boss.id, reason="oops", request_id=request_id()), metadata=boss.auth),
        admin_api.SuspendUser(A.SuspendUserRequest(user_id=boss.id, reason="oops", request_id=request_id()), metadata=boss.auth),
    ):  # fmt: skip
        await fails(own, grpc.StatusCode.FAILED_PRECONDITION, "HX206")


async def test_an_admin_whose_rights_ended_under_a_cached_session_changes_nothing(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub
) -> None:
    boss, user = api.admin(), api.poster()
    api.admin()  # another admin: the set is never left empty
    await admin_api.ListAdminActions(A.ListAdminActionsRequest(), metadata=boss.auth)  # cached
    api.world.rows("UPDATE users SET is_admin = false WHERE id = %s", boss.user_id)  # raw SQL
    suspend = A.SuspendUserRequest(user_id=user.id, reason="spam", request_id=request_id())
    await fails(admin_api.SuspendUser(suspend, metadata=boss.auth), DENIED, "HX205")
    standing = api.world.value("SELECT account_status FROM users WHERE id = %s", user.user_id)
    assert standing == "ACTIVE"
    assert api.world.value("SELECT count(*) FROM admin_actions") == 0


async def test_every_mutation_needs_a_reason(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub
) -> None:
    boss, user = api.admin(), api.poster()
    calls = {
        "GrantAdmin": A.GrantAdminRequest,
        "RevokeAdmin": A.RevokeAdminRequest,
        "SuspendUser": A.SuspendUserRequest,
        "ReinstateUser": A.ReinstateUserRequest,
        "BanUser": A.BanUserRequest,
    }
    for name, message in calls.items():
        for reason in ("", "   ", "x" * 1001):
            request = message(user_id=user.id, reason=reason, request_id=request_id())
            fields = await invalid(getattr(admin_api, name)(request, metadata=boss.auth))
            assert set(fields) == {"reason"}, name
        both = await invalid(getattr(admin_api, name)(message(user_id="nope"), metadata=boss.auth))
        assert set(both) == {"user_id", "reason"}, name
    assert api.world.value("SELECT count(*) FROM admin_actions") == 0
    assert (
        api.world.value("SELECT account_status FROM users WHERE id = %s", user.user_id) == "ACTIVE"
    )


def requests(api: V2, user: str, dispute: str) -> dict[str, Any]:
    return {
        "GrantAdmin": A.GrantAdminRequest(user_id=user, reason="r", request_id=request_id()),
        "RevokeAdmin": A.RevokeAdminRequest(user_id=user, reason="r", request_id=request_id()),
        "SuspendUser": A.SuspendUserRequest(user_id=user, reason="r", request_id=request_id()),
        "ReinstateUser": A.ReinstateUserRequest(user_id=user, reason="r", request_id=request_id()),
        "BanUser": A.BanUserRequest(user_id=user, reason="r", request_id=request_id()),
        "GetDisputeForAdmin": A.GetDisputeForAdminRequest(dispute_id=dispute),
        "ListUserLedgers": A.ListUserLedgersRequest(user_id=user, kind=A.LEDGER_KIND_TRUST),
        "ListAdminActions": A.ListAdminActionsRequest(),
    }


async def test_the_authorization_matrix_of_every_admin_rpc(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub
) -> None:
    boss, user = api.admin(), api.poster()
    w = api.world
    task = w.task_in("PROOF_SUBMITTED")
    dispute = str(w.dispute(task))
    methods = [m.name for m in A.DESCRIPTOR.services_by_name["AdminService"].methods]
    assert sorted(methods) == sorted(requests(api, user.id, dispute))
    for who, expected in ((None, "HX401"), (user, "HX202"), (boss, None)):
        target = str(w.user())  # a fresh one each time: a ban is final
        for name, request in requests(api, target, dispute).items():
            call = getattr(admin_api, name)(request, metadata=who.auth if who else (), timeout=10)
            if expected == "HX401":
                await fails(call, grpc.StatusCode.UNAUTHENTICATED, "HX401")
            elif expected == "HX202":
                await fails(call, DENIED, "HX202")
            else:
                await call  # an admin is let in, and each answers OK
    # what the admin did is all in the log, and nothing the refused callers tried
    assert w.value("SELECT count(*) FROM admin_actions WHERE actor_id <> %s", boss.user_id) == 0
    # grant, revoke, suspend, reinstate, ban, and the dispute read
    assert w.value("SELECT count(*) FROM admin_actions") == 6


async def test_an_admin_reads_a_dispute_with_its_proofs_and_the_read_is_logged(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub
) -> None:
    boss, poster, worker = api.admin(), api.poster(), api.worker()
    task = await api.post(poster)
    await api.accept(worker, task.task_id)
    proof = (await api.submit(worker, task.task_id, photos=2)).proof
    opened = await api.disputes.OpenDispute(
        dispute_pb2.OpenDisputeRequest(
            task_id=task.task_id, reason="not finished", request_id=request_id()
        ),
        metadata=poster.auth, timeout=10,
    )  # fmt: skip
    dispute_id = opened.dispute.dispute_id
    read = await admin_api.GetDisputeForAdmin(
        A.GetDisputeForAdminRequest(dispute_id=dispute_id, reason="ticket 42"),
        metadata=boss.auth, timeout=10,
    )  # fmt: skip
    assert read.dispute.reason == "not finished"
    assert read.task.task_id == task.task_id
    assert read.task.state == task_pb2.TASK_STATE_DISPUTED
    assert [p.proof_id for p in read.proofs] == [proof.proof_id]
    assert list(read.proofs[0].photo_upload_ids) == list(proof.photo_upload_ids)
    await admin_api.GetDisputeForAdmin(
        A.GetDisputeForAdminRequest(dispute_id=dispute_id), metadata=boss.auth, timeout=10
    )
    rows = log_rows(api, dispute_id)
    assert [(r[0], str(r[1]), r[3]) for r in rows] == [
        ("dispute.read", boss.id, "ticket 42"),
        ("dispute.read", boss.id, "dispute review"),
    ]
    # the parties read their own dispute (not logged: it is theirs); a stranger may not
    for party in (poster, worker):
        mine = await api.disputes.GetMyDispute(
            dispute_pb2.GetMyDisputeRequest(dispute_id=dispute_id), metadata=party.auth, timeout=10
        )
        assert mine.dispute.state == dispute_pb2.DISPUTE_STATE_OPEN
        assert [p.proof_id for p in mine.proofs] == [proof.proof_id]
    stranger = dispute_pb2.GetMyDisputeRequest(dispute_id=dispute_id)
    await fails(api.disputes.GetMyDispute(stranger, metadata=api.worker().auth), DENIED, "HX202")
    assert len(log_rows(api, dispute_id)) == 2
    missing = A.GetDisputeForAdminRequest(dispute_id=str(uuid.uuid4()))
    await fails(admin_api.GetDisputeForAdmin(missing, metadata=boss.auth), grpc.StatusCode.NOT_FOUND, "HX302")  # fmt: skip


async def test_an_admin_pages_through_a_users_ledgers(
    api: V2, admin_api: admin_pb2_grpc.AdminServiceStub
) -> None:
    boss, w = api.admin(), api.world
    worker = w.worker()
    for _ in range(3):
        task = w.task_in("OPEN")
        w.accept(task, worker)
        w.submit_proof(task)
        w.approve(task)
        w.award_xp(task)
    with w.transaction():
        w.rows("SET LOCAL hustle.trust_reason = 'five completed tasks'")
        w.rows("UPDATE users SET trust_tier = 2 WHERE id = %s", worker)

    def ask(kind: int, token: str = "", user: str = str(worker)) -> Any:
        request = A.ListUserLedgersRequest(user_id=user, kind=kind, page_size=2, page_token=token)
        return admin_api.ListUserLedgers(request, metadata=boss.auth, timeout=10)

    first = await ask(A.LEDGER_KIND_XP)
    second = await ask(A.LEDGER_KIND_XP, first.next_page_token)
    xp = [e.xp for e in (*first.entries, *second.entries)]
    assert len(xp) == 3
    assert not second.next_page_token
    assert [e.xp_after for e in xp] == sorted((e.xp_after for e in xp), reverse=True)
    assert all(e.amount > 0 and e.xp_after == e.xp_before + e.amount for e in xp)
    trust = (await ask(A.LEDGER_KIND_TRUST)).entries
    assert [(e.trust.old_tier, e.trust.new_tier, e.trust.reason) for e in trust] == [
        (1, 2, "five completed tasks"),  # newest first: the change, then the account's creation
        (0, 1, "account created"),
    ]
    other = str(w.user())
    fields = await invalid(ask(A.LEDGER_KIND_XP, first.next_page_token, user=other))
    assert set(fields) == {"page_token"}  # a token is for one user's one ledger
    fields = await invalid(ask(0))
    assert set(fields) == {"kind"}
    await fails(ask(A.LEDGER_KIND_XP, user=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND, "HX302")
