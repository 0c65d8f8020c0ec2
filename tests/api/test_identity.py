"""AuthService and UserService through a real channel with the generated stubs, on real
Postgres, Redis and a real worker delivering the emails and texts to the capturing endpoint."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import grpc
import psycopg
import pytest
import redis
from grpc import aio
from loguru import logger

from hustle.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from server import security
from server.app import HustleServer, Resources
from server.config import Settings
from tests.helpers import error_details, eventually
from tests.jobs_harness import Capture, Worker, job_env, start_worker

PASSWORD = "correct horse 42"


@pytest.fixture
def roomy(settings: Settings) -> Settings:
    """Production settings but for the sign-in limit, so that a whole journey fits in a minute."""
    return settings.model_copy(update={"rate_limit_auth_per_minute": 100})


async def serve(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    server = HustleServer(settings, resources)
    await server.start()
    async with aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield channel
    await server.stop(grace=0)


@pytest.fixture
async def channel(roomy: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    async for ch in serve(roomy, resources):
        yield ch


@pytest.fixture
async def strict_channel(settings: Settings, resources: Resources) -> AsyncIterator[aio.Channel]:
    """The server with DOMAIN.md's limits as they are (5 sign-ins a minute)."""
    async for ch in serve(settings, resources):
        yield ch


@pytest.fixture
def mail_worker(database_url: str, redis_url: str, capture: Capture) -> Iterator[Worker]:
    yield from start_worker(job_env(database_url, redis_url, capture.url))


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def fails(call: object, code: grpc.StatusCode) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value
    return caught.value


def reason(error: aio.AioRpcError) -> str:
    return str(error_details(error)["ErrorInfo"].reason)


def field(error: aio.AioRpcError) -> str:
    return str(error_details(error)["BadRequest"].field_violations[0].field)


async def sign_up(channel: aio.Channel, email: str) -> auth_pb2.SignUpResponse:
    return await auth_pb2_grpc.AuthServiceStub(channel).SignUp(
        auth_pb2.SignUpRequest(email=email, password=PASSWORD, full_name="Tess Tester",
                               default_mode=user_pb2.USER_MODE_WORKER),
        timeout=10,
    )  # fmt: skip


def link_token(capture: Capture, to: str, subject: str) -> str:
    email = next(
        e for e in reversed(capture.emails()) if e["to"] == [to] and e["subject"] == subject
    )
    link = re.search(r"https?://\S+", email["text"])
    assert link, email["text"]
    return parse_qs(urlsplit(link.group(0)).query)["token"][0]


# Log fields that hold times, counts and ids of our own making (a 6-digit code could appear in
# a timestamp's microseconds by chance), and loguru's preformatted copy of the record ("text"):
# left out of the secret scan below.
_NUMERIC = {"ts", "time", "elapsed", "pid", "process", "thread", "line", "duration_ms", "retries",
            "outbox_id", "sent", "file", "module", "function", "level", "text"}  # fmt: skip


def _scannable(entry: object) -> str:
    """A log entry as text, without the fields that are ours and numeric (see _NUMERIC)."""
    if isinstance(entry, dict):
        return " ".join(_scannable(v) for k, v in entry.items() if k not in _NUMERIC)
    if isinstance(entry, list):
        return " ".join(_scannable(v) for v in entry)
    return str(entry)


def assert_no_secret_logged(lines: list[str], secrets: dict[str, str]) -> None:
    """No log line holds any of `secrets` (name -> value): checked in every field's text."""
    texts = []
    for line in lines:
        try:
            texts.append(_scannable(json.loads(line)))
        except ValueError:
            texts.append(line)
    found = {}
    for name, value in secrets.items():
        # a short code is looked for as a whole word (not inside a uuid or a longer number)
        short = value.isdigit() and len(value) <= 8
        pattern = (
            rf"(?<![0-9a-fA-F]){re.escape(value)}(?![0-9a-fA-F])" if short else re.escape(value)
        )
        hits = [t for t in texts if re.search(pattern, t)]
        if hits:
            found[name] = hits[0][:300]
    assert found == {}, found


async def test_the_whole_journey(
    channel: aio.Channel, capture: Capture, mail_worker: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sign up, verify the email, verify the phone, sign out and in, reset the password; and no
    password, token, code or phone number of it reaches any log line of the server or worker."""
    capsys.readouterr()  # what came before is not this journey's
    server_lines: list[str] = []
    sink = logger.add(lambda m: server_lines.append(str(m)), level="DEBUG", serialize=True)
    try:
        secrets = await _journey(channel, capture, mail_worker)
    finally:
        logger.remove(sink)
    await asyncio.sleep(0.5)  # the worker's last lines, through its pipe
    # every record (with its extra fields), the lines as written (the access lines go to stdout
    # directly with JSON logs), and the worker's output
    lines = server_lines + capsys.readouterr().out.splitlines() + list(mail_worker.process.lines)
    assert len(lines) > 50, "the journey logged (so the scan means something)"
    assert_no_secret_logged(lines, secrets)


async def _journey(channel: aio.Channel, capture: Capture, mail_worker: Worker) -> dict[str, str]:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    users = user_pb2_grpc.UserServiceStub(channel)
    email = "Tess@Example.com"

    signed_up = await sign_up(channel, email)
    assert signed_up.me.email == "tess@example.com"
    assert not signed_up.me.email_verified
    token = signed_up.session.access_token

    # the captured verification email's link verifies the email
    await eventually(
        capture.emails, lambda e: len(e) == 1, timeout=30, what=lambda: mail_worker.process.output
    )
    verify = link_token(capture, "tess@example.com", "Confirm your email address")
    await auth.VerifyEmail(auth_pb2.VerifyEmailRequest(token=verify), timeout=10)
    me = (await users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(token), timeout=10)).me
    assert me.email_verified
    again = await fails(auth.VerifyEmail(auth_pb2.VerifyEmailRequest(token=verify), timeout=10),
                        grpc.StatusCode.FAILED_PRECONDITION)  # fmt: skip
    assert reason(again) == "HX403"  # single use

    # the phone OTP from the captured SMS verifies the phone
    await auth.StartPhoneVerification(
        auth_pb2.StartPhoneVerificationRequest(phone_number="+1 415 555 0123"),
        metadata=bearer(token),
        timeout=10,
    )
    [sms] = await eventually(
        capture.sms, lambda s: len(s) == 1, timeout=30, what=lambda: mail_worker.process.output
    )
    assert sms["to"] == "+14155550123"
    code = sms["body"][:6]
    confirmed = await auth.ConfirmPhoneVerification(
        auth_pb2.ConfirmPhoneVerificationRequest(code=code), metadata=bearer(token), timeout=10
    )
    assert (confirmed.me.phone_number, confirmed.me.phone_verified) == ("+14155550123", True)
    retried = await auth.ConfirmPhoneVerification(  # the reply was lost: the same code again
        auth_pb2.ConfirmPhoneVerificationRequest(code=code), metadata=bearer(token), timeout=10
    )
    assert retried.me == confirmed.me

    # sign out, sign in
    await auth.SignOut(auth_pb2.SignOutRequest(), metadata=bearer(token), timeout=10)
    gone = await fails(users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(token), timeout=10),
                       grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
    assert reason(gone) == "HX401"
    signed_in = await auth.SignIn(
        auth_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10
    )
    second = signed_in.session.access_token
    assert (
        await users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(second), timeout=10)
    ).me.phone_verified

    # reset the password: the old sessions stop working, the old password too
    await auth.RequestPasswordReset(auth_pb2.RequestPasswordResetRequest(email=email), timeout=10)
    await eventually(
        capture.emails, lambda e: len(e) == 2, timeout=30, what=lambda: mail_worker.process.output
    )
    reset = link_token(capture, "tess@example.com", "Reset your Hustle password")
    await auth.ResetPassword(
        auth_pb2.ResetPasswordRequest(token=reset, new_password="new horse 99!"), timeout=10
    )
    await fails(users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(second), timeout=10),
                grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
    wrong = await fails(auth.SignIn(auth_pb2.SignInRequest(email=email, password=PASSWORD), timeout=10),
                        grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
    assert reason(wrong) == "HX402"
    fresh = await auth.SignIn(
        auth_pb2.SignInRequest(email=email, password="new horse 99!"), timeout=10
    )
    assert (
        await users.GetMe(
            user_pb2.GetMeRequest(), metadata=bearer(fresh.session.access_token), timeout=10
        )
    ).me
    return {
        "password": PASSWORD,
        "new password": "new horse 99!",
        "first token": token,
        "second token": second,
        "third token": fresh.session.access_token,
        "email link token": verify,
        "reset link token": reset,
        "phone code": code,
        "phone number": "4155550123",
        "phone number as typed": "415 555 0123",
    }


async def test_wrong_code_five_times_locks_the_code(
    channel: aio.Channel, database_url: str, settings: Settings
) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    token = (await sign_up(channel, "otp@example.com")).session.access_token
    await auth.StartPhoneVerification(
        auth_pb2.StartPhoneVerificationRequest(phone_number="+14155550100"),
        metadata=bearer(token),
        timeout=10,
    )
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT user_id, code_hash FROM one_time_codes WHERE purpose = 'PHONE_VERIFICATION'"
        ).fetchone()
    assert row is not None
    secret = settings.secret_key.get_secret_value()
    right = next(f"{n:06d}" for n in range(1_000_000)
                 if security.code_hash(secret, "PHONE_VERIFICATION", str(row[0]), f"{n:06d}") == row[1])  # fmt: skip
    wrong = "000000" if right != "000000" else "000001"

    reasons = []
    for _ in range(5):
        error = await fails(auth.ConfirmPhoneVerification(auth_pb2.ConfirmPhoneVerificationRequest(code=wrong),
                                                          metadata=bearer(token), timeout=10),
                            grpc.StatusCode.FAILED_PRECONDITION if len(reasons) < 4 else grpc.StatusCode.RESOURCE_EXHAUSTED)  # fmt: skip
        reasons.append(reason(error))
    assert reasons == ["HX403"] * 4 + ["HX404"]
    locked = await fails(auth.ConfirmPhoneVerification(auth_pb2.ConfirmPhoneVerificationRequest(code=right),
                                                       metadata=bearer(token), timeout=10),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)  # fmt: skip
    assert reason(locked) == "HX404"


async def test_an_expired_code_is_rejected(
    channel: aio.Channel, database_url: str, settings: Settings
) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    token = (await sign_up(channel, "late@example.com")).session.access_token
    await auth.StartPhoneVerification(
        auth_pb2.StartPhoneVerificationRequest(phone_number="+14155550101"),
        metadata=bearer(token),
        timeout=10,
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        user_id, code_hash = conn.execute(
            "SELECT user_id, code_hash FROM one_time_codes WHERE purpose = 'PHONE_VERIFICATION'"
        ).fetchone()  # type: ignore[misc]
        # its ten minutes pass (the database lets a code be retired early, never extended)
        conn.execute(
            "UPDATE one_time_codes SET expires_at = created_at + interval '1 millisecond' WHERE purpose = 'PHONE_VERIFICATION'"
        )
        assert conn.execute(
            "SELECT expires_at < now() FROM one_time_codes WHERE purpose = 'PHONE_VERIFICATION'"
        ).fetchone() == (True,)
    secret = settings.secret_key.get_secret_value()
    right = next(f"{n:06d}" for n in range(1_000_000)
                 if security.code_hash(secret, "PHONE_VERIFICATION", str(user_id), f"{n:06d}") == code_hash)  # fmt: skip
    error = await fails(auth.ConfirmPhoneVerification(auth_pb2.ConfirmPhoneVerificationRequest(code=right),
                                                      metadata=bearer(token), timeout=10),
                        grpc.StatusCode.FAILED_PRECONDITION)  # fmt: skip
    assert reason(error) == "HX403"
    assert "expired" in error.details()


async def test_a_revoked_token_is_refused_even_while_cached(
    channel: aio.Channel, redis_url: str
) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    users = user_pb2_grpc.UserServiceStub(channel)
    phone_token = (await sign_up(channel, "two@example.com")).session.access_token
    laptop = (
        await auth.SignIn(
            auth_pb2.SignInRequest(email="two@example.com", password=PASSWORD), timeout=10
        )
    ).session
    await users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(phone_token), timeout=10)
    cache = redis.Redis.from_url(redis_url)
    assert cache.exists(f"sess:{security.token_hash(phone_token).hex()}")  # it is cached

    listed = await auth.ListSessions(
        auth_pb2.ListSessionsRequest(), metadata=bearer(laptop.access_token), timeout=10
    )
    phone_session = next(s for s in listed.sessions if not s.current)
    await auth.RevokeSession(auth_pb2.RevokeSessionRequest(session_id=phone_session.session_id),
                             metadata=bearer(laptop.access_token), timeout=10)  # fmt: skip
    await fails(users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(phone_token), timeout=10),
                grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
    assert not cache.exists(f"sess:{security.token_hash(phone_token).hex()}")
    cache.close()


async def test_refresh_rotates_the_token(channel: aio.Channel) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    users = user_pb2_grpc.UserServiceStub(channel)
    first = (await sign_up(channel, "rot@example.com")).session
    await users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(first.access_token), timeout=10)
    second = (
        await auth.RefreshSession(
            auth_pb2.RefreshSessionRequest(), metadata=bearer(first.access_token), timeout=10
        )
    ).session
    assert second.session_id == first.session_id
    assert second.access_token != first.access_token
    assert (
        await users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(second.access_token), timeout=10)
    ).me
    await fails(users.GetMe(user_pb2.GetMeRequest(), metadata=bearer(first.access_token), timeout=10),
                grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip


async def test_sessions_page_with_a_tamper_proof_token(channel: aio.Channel) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    token = (await sign_up(channel, "many@example.com")).session.access_token
    for _ in range(2):
        await auth.SignIn(
            auth_pb2.SignInRequest(email="many@example.com", password=PASSWORD), timeout=10
        )
    first = await auth.ListSessions(
        auth_pb2.ListSessionsRequest(page_size=2), metadata=bearer(token), timeout=10
    )
    assert len(first.sessions) == 2
    assert first.next_page_token
    second = await auth.ListSessions(auth_pb2.ListSessionsRequest(page_size=2, page_token=first.next_page_token),
                                     metadata=bearer(token), timeout=10)  # fmt: skip
    assert len(second.sessions) == 1
    assert not second.next_page_token
    ids = [s.session_id for s in [*first.sessions, *second.sessions]]
    assert len(set(ids)) == 3
    forged = first.next_page_token[:-3] + (
        "AAA" if not first.next_page_token.endswith("AAA") else "BBB"
    )
    error = await fails(auth.ListSessions(auth_pb2.ListSessionsRequest(page_size=2, page_token=forged),
                                          metadata=bearer(token), timeout=10),
                        grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert field(error) == "page_token"


async def test_a_user_cannot_read_or_touch_anothers_private_data(channel: aio.Channel) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    users = user_pb2_grpc.UserServiceStub(channel)
    alice = await sign_up(channel, "alice@example.com")
    bob = await sign_up(channel, "bob@example.com")
    seen = (await users.GetUser(user_pb2.GetUserRequest(user_id=bob.me.user_id),
                                metadata=bearer(alice.session.access_token), timeout=10)).user  # fmt: skip
    assert seen.full_name == "Tess Tester"
    assert {f.name for f in seen.DESCRIPTOR.fields}.isdisjoint(
        {"email", "phone_number", "is_admin"}
    )
    error = await fails(auth.RevokeSession(auth_pb2.RevokeSessionRequest(session_id=bob.session.session_id),
                                           metadata=bearer(alice.session.access_token), timeout=10),
                        grpc.StatusCode.NOT_FOUND)  # fmt: skip
    assert reason(error) == "HX302"
    assert (
        await users.GetMe(
            user_pb2.GetMeRequest(), metadata=bearer(bob.session.access_token), timeout=10
        )
    ).me


async def test_the_sixth_sign_in_in_a_minute_is_rate_limited(
    strict_channel: aio.Channel, database_url: str
) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(strict_channel)
    with psycopg.connect(database_url, autocommit=True) as conn:  # an account made out of band
        conn.execute("INSERT INTO users (email, password_hash, full_name) VALUES ('rl@example.com', %s, 'R')",
                     (security.hash_password_blocking(PASSWORD),))  # fmt: skip
    for _ in range(5):
        await auth.SignIn(
            auth_pb2.SignInRequest(email="rl@example.com", password=PASSWORD), timeout=10
        )
    error = await fails(auth.SignIn(auth_pb2.SignInRequest(email="rl@example.com", password=PASSWORD), timeout=10),
                        grpc.StatusCode.RESOURCE_EXHAUSTED)  # fmt: skip
    assert reason(error) == "HX501"
    delay = error_details(error)["RetryInfo"].retry_delay
    assert 0 < delay.seconds + delay.nanos / 1e9 <= 60


async def test_wrong_password_and_unknown_email_look_the_same(
    channel: aio.Channel, database_url: str
) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    await sign_up(channel, "known@example.com")

    async def attempt(email: str) -> tuple[float, tuple[object, ...]]:
        started = time.perf_counter()
        error = await fails(auth.SignIn(auth_pb2.SignInRequest(email=email, password="Not the password 1"),
                                        timeout=10), grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
        elapsed = time.perf_counter() - started
        return elapsed, (error.code(), error.details(), reason(error), error.trailing_metadata())

    wrong, unknown = [], []
    for _ in range(6):  # alternate, so that any drift in the machine's speed hits both alike
        wrong.append(await attempt("known@example.com"))
        unknown.append(await attempt("nobody@example.com"))
    assert {w[1][:3] for w in wrong} == {u[1][:3] for u in unknown}
    assert len({w[1][:3] for w in wrong}) == 1
    known_time = statistics.median(w[0] for w in wrong)
    unknown_time = statistics.median(u[0] for u in unknown)
    # both do one argon2 verification (~30 ms); only a DB lookup differs
    assert abs(known_time - unknown_time) < 0.35 * max(known_time, unknown_time), (
        known_time,
        unknown_time,
    )


@pytest.mark.parametrize(
    ("request_kwargs", "bad_field"),
    [
        (
            {"email": "not-an-email", "password": PASSWORD, "full_name": "X", "default_mode": 2},
            "email",
        ),
        (
            {"email": "ok@example.com", "password": "short1", "full_name": "X", "default_mode": 2},
            "password",
        ),
        (
            {
                "email": "ok@example.com",
                "password": "abcdefghijkl",
                "full_name": "X",
                "default_mode": 2,
            },
            "password",
        ),
        (
            {
                "email": "ok@example.com",
                "password": "password123",
                "full_name": "X",
                "default_mode": 2,
            },
            "password",
        ),
        (
            {"email": "ok@example.com", "password": PASSWORD, "full_name": "  ", "default_mode": 2},
            "full_name",
        ),
        (
            {"email": "ok@example.com", "password": PASSWORD, "full_name": "X", "default_mode": 0},
            "default_mode",
        ),
    ],
)
async def test_malformed_sign_up_names_the_field(
    channel: aio.Channel, request_kwargs: dict[str, object], bad_field: str
) -> None:
    error = await fails(auth_pb2_grpc.AuthServiceStub(channel).SignUp(auth_pb2.SignUpRequest(**request_kwargs), timeout=10),
                        grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert reason(error) == "HX301"
    assert field(error) == bad_field


async def test_malformed_phone_names_the_field(channel: aio.Channel) -> None:
    token = (await sign_up(channel, "phone@example.com")).session.access_token
    for number in ("555-1234", "+0123456789", "4155550123", "+1415555012345678"):
        error = await fails(auth_pb2_grpc.AuthServiceStub(channel).StartPhoneVerification(
            auth_pb2.StartPhoneVerificationRequest(phone_number=number), metadata=bearer(token), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
        assert field(error) == "phone_number"


async def test_duplicate_email_is_already_exists(channel: aio.Channel) -> None:
    await sign_up(channel, "dup@example.com")
    error = await fails(sign_up(channel, "DUP@example.com"), grpc.StatusCode.ALREADY_EXISTS)
    assert reason(error) == "HX303"


async def test_no_token_is_unauthenticated(channel: aio.Channel) -> None:
    users = user_pb2_grpc.UserServiceStub(channel)
    error = await fails(
        users.GetMe(user_pb2.GetMeRequest(), timeout=10), grpc.StatusCode.UNAUTHENTICATED
    )
    assert reason(error) == "HX401"
    await fails(users.GetMe(user_pb2.GetMeRequest(), metadata=bearer("made-up"), timeout=10),
                grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip


async def test_update_profile_changes_only_what_is_set(
    channel: aio.Channel, database_url: str
) -> None:
    users = user_pb2_grpc.UserServiceStub(channel)
    token = (await sign_up(channel, "prof@example.com")).session.access_token
    me = (await users.UpdateProfile(user_pb2.UpdateProfileRequest(location_state="ca"), metadata=bearer(token),
                                    timeout=10)).me  # fmt: skip
    assert (me.location_state, me.full_name, me.default_mode) == (
        "CA",
        "Tess Tester",
        user_pb2.USER_MODE_WORKER,
    )
    error = await fails(users.UpdateProfile(user_pb2.UpdateProfileRequest(location_state="California"),
                                            metadata=bearer(token), timeout=10),
                        grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    assert field(error) == "location_state"
    with psycopg.connect(
        database_url
    ) as conn:  # the profile's derivation was queued with the change
        jobs = conn.execute("SELECT count(*) FROM outbox WHERE job = 'capability.recompute' AND payload->>'user_id' = %s",
                            (me.user_id,)).fetchone()  # fmt: skip
    assert jobs == (2,)  # at sign-up, and for the new state


async def test_rate_limiter_falls_back_locally_or_fails_closed(private_redis: object) -> None:
    import redis.asyncio as aioredis

    from server.errors import HxError
    from server.policy import Group
    from server.ratelimit import RateLimiter

    client = aioredis.Redis.from_url(
        "redis://127.0.0.1:1/0", socket_connect_timeout=0.5
    )  # nothing listens
    limiter = RateLimiter(client, {g: 2 for g in Group})
    await limiter.check(Group.READ, ["user:a"], fail_closed=False)
    await limiter.check(Group.READ, ["user:a"], fail_closed=False)
    with pytest.raises(HxError) as limited:
        await limiter.check(Group.READ, ["user:a"], fail_closed=False)
    assert limited.value.code == "HX501"
    with pytest.raises(HxError) as closed:
        await limiter.check(Group.ADMIN, ["user:a"], fail_closed=True)
    assert closed.value.code == "HX902"
    await client.aclose()
    await asyncio.sleep(0)


async def test_password_reset_for_an_unknown_email_answers_the_same(
    channel: aio.Channel, database_url: str
) -> None:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    await sign_up(channel, "real@example.com")
    known = await auth.RequestPasswordReset(
        auth_pb2.RequestPasswordResetRequest(email="real@example.com"), timeout=10
    )
    unknown = await auth.RequestPasswordReset(
        auth_pb2.RequestPasswordResetRequest(email="ghost@example.com"), timeout=10
    )
    assert known == unknown
    with psycopg.connect(database_url) as conn:
        sent = conn.execute(
            "SELECT payload->>'to' FROM outbox WHERE payload->>'template' = 'password_reset'"
        ).fetchall()
    assert sent == [("real@example.com",)]
