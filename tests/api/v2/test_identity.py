"""hustle.v2.AuthService and UserService through a real channel: every procedure once, its main
refusals, BadRequests listing every field, and UpdateProfile's field mask. (The links and codes
are read from the outbox rows the server wrote: delivering them is the worker's part, tested in
tests/api/test_identity.py.)"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from hustle.v2 import auth_pb2, user_pb2
from tests.api.v2.market import V2, fails, invalid

A = auth_pb2
U = user_pb2
S = grpc.StatusCode
PASSWORD = "correct horse 42"


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def secret(api: V2, job: str, to: str, key: str) -> str:
    """What the newest outbox row of `job` to `to` carries for the recipient (a link, a code)."""
    value = api.world.value(
        "SELECT payload->'secrets'->>%s FROM outbox WHERE job = %s AND payload->>'to' = %s"
        " ORDER BY id DESC LIMIT 1",
        key, job, to,
    )  # fmt: skip
    assert value, f"no {job} to {to}"
    return str(value)


def link_token(api: V2, to: str) -> str:
    return parse_qs(urlsplit(secret(api, "email.send", to, "link")).query)["token"][0]


async def sign_up(api: V2, email: str) -> A.SignUpResponse:
    request = A.SignUpRequest(email=email, password=PASSWORD, full_name="Tess  Tester",
                              default_mode=U.USER_MODE_WORKER)  # fmt: skip
    return await api.auth.SignUp(request, timeout=10)


async def test_an_account_from_sign_up_to_a_verified_phone(api: V2) -> None:
    up = await sign_up(api, "Tess@Example.com")
    assert (up.me.email, up.me.full_name, up.me.default_mode) == (
        "tess@example.com", "Tess Tester", U.USER_MODE_WORKER)  # fmt: skip
    assert up.me.trust_tier == U.TRUST_TIER_ROOKIE
    me = bearer(up.session.access_token)
    await fails(sign_up(api, "tess@example.com"), S.ALREADY_EXISTS, "HX303")

    await api.auth.VerifyEmail(A.VerifyEmailRequest(token=link_token(api, "tess@example.com")))
    assert (await api.users.GetMe(U.GetMeRequest(), metadata=me)).me.email_verified
    await fails(api.auth.RequestEmailVerification(A.RequestEmailVerificationRequest(), metadata=me),
                S.ALREADY_EXISTS, "HX303")  # fmt: skip
    await fails(
        api.auth.VerifyEmail(A.VerifyEmailRequest(token="forged")), S.FAILED_PRECONDITION, "HX403"
    )

    started = await api.auth.StartPhoneVerification(
        A.StartPhoneVerificationRequest(phone_number="+1 415 555 0123"), metadata=me
    )
    assert started.HasField("expires_at")
    await fails(api.auth.ConfirmPhoneVerification(A.ConfirmPhoneVerificationRequest(code="000000"), metadata=me),
                S.FAILED_PRECONDITION, "HX403")  # fmt: skip
    code = secret(api, "sms.send", "+14155550123", "code")
    confirmed = await api.auth.ConfirmPhoneVerification(
        A.ConfirmPhoneVerificationRequest(code=code), metadata=me
    )
    assert (confirmed.me.phone_number, confirmed.me.phone_verified) == ("+14155550123", True)


async def test_sessions_sign_in_list_refresh_revoke_and_sign_out(api: V2) -> None:
    await sign_up(api, "sam@example.com")
    await fails(api.auth.SignIn(A.SignInRequest(email="sam@example.com", password="wrong password 1")),
                S.UNAUTHENTICATED, "HX402")  # fmt: skip
    tokens = []
    for _ in range(2):
        signed = await api.auth.SignIn(A.SignInRequest(email="sam@example.com", password=PASSWORD))
        tokens.append(signed.session)
    me = bearer(tokens[1].access_token)
    first = await api.auth.ListSessions(A.ListSessionsRequest(page_size=2), metadata=me)
    rest = await api.auth.ListSessions(A.ListSessionsRequest(page_size=2, page_token=first.next_page_token),
                                       metadata=me)  # fmt: skip
    listed = [*first.sessions, *rest.sessions]
    assert len(listed) == 3  # sign-up's and two sign-ins
    assert [s.session_id for s in listed if s.current] == [tokens[1].session_id]

    await api.auth.RevokeSession(
        A.RevokeSessionRequest(session_id=tokens[0].session_id), metadata=me
    )
    await fails(api.users.GetMe(U.GetMeRequest(), metadata=bearer(tokens[0].access_token)),
                S.UNAUTHENTICATED, "HX401")  # fmt: skip
    await api.auth.RevokeSession(
        A.RevokeSessionRequest(session_id=tokens[0].session_id), metadata=me
    )  # a retry
    stranger = api.poster()
    await fails(api.auth.RevokeSession(A.RevokeSessionRequest(session_id=tokens[1].session_id),
                                       metadata=stranger.auth), S.NOT_FOUND, "HX302")  # fmt: skip

    refreshed = (await api.auth.RefreshSession(A.RefreshSessionRequest(), metadata=me)).session
    assert refreshed.session_id == tokens[1].session_id
    assert refreshed.access_token != tokens[1].access_token
    await fails(api.users.GetMe(U.GetMeRequest(), metadata=me), S.UNAUTHENTICATED, "HX401")
    fresh = bearer(refreshed.access_token)
    await api.auth.SignOut(A.SignOutRequest(), metadata=fresh)
    await fails(api.auth.SignOut(A.SignOutRequest(), metadata=fresh), S.UNAUTHENTICATED, "HX401")


async def test_a_password_reset(api: V2) -> None:
    up = await sign_up(api, "rita@example.com")
    await api.auth.RequestPasswordReset(A.RequestPasswordResetRequest(email="nobody@example.com"))
    await api.auth.RequestPasswordReset(A.RequestPasswordResetRequest(email="rita@example.com"))
    token = link_token(api, "rita@example.com")
    assert sorted(await invalid(api.auth.ResetPassword(A.ResetPasswordRequest(new_password="short")))) == [
        "new_password", "token"]  # fmt: skip
    await api.auth.ResetPassword(A.ResetPasswordRequest(token=token, new_password="a new horse 43"))
    await fails(api.users.GetMe(U.GetMeRequest(), metadata=bearer(up.session.access_token)),
                S.UNAUTHENTICATED, "HX401")  # every session revoked  # fmt: skip
    await api.auth.SignIn(A.SignInRequest(email="rita@example.com", password="a new horse 43"))
    await fails(api.auth.ResetPassword(A.ResetPasswordRequest(token=token, new_password="a third horse 44")),
                S.FAILED_PRECONDITION, "HX403")  # fmt: skip


async def test_bad_identity_requests_list_every_field(api: V2) -> None:
    bad = A.SignUpRequest(email="not an email", password="short", full_name="  ")
    assert sorted(await invalid(api.auth.SignUp(bad))) == [
        "default_mode",
        "email",
        "full_name",
        "password",
    ]
    assert sorted(await invalid(api.auth.SignIn(A.SignInRequest()))) == ["email", "password"]
    assert list(await invalid(api.auth.VerifyEmail(A.VerifyEmailRequest()))) == ["token"]
    assert list(
        await invalid(api.auth.RequestPasswordReset(A.RequestPasswordResetRequest(email="x")))
    ) == ["email"]
    someone = api.poster()
    phone = A.StartPhoneVerificationRequest(phone_number="555")
    assert list(await invalid(api.auth.StartPhoneVerification(phone, metadata=someone.auth))) == [
        "phone_number"
    ]
    code = A.ConfirmPhoneVerificationRequest(code="12ab")
    assert list(await invalid(api.auth.ConfirmPhoneVerification(code, metadata=someone.auth))) == [
        "code"
    ]
    sessions = A.ListSessionsRequest(page_size=-5, page_token="forged")
    assert sorted(await invalid(api.auth.ListSessions(sessions, metadata=someone.auth))) == [
        "page_size", "page_token"]  # fmt: skip
    assert list(await invalid(api.auth.RevokeSession(A.RevokeSessionRequest(session_id="x"),
                                                     metadata=someone.auth))) == ["session_id"]  # fmt: skip


async def test_update_profile_changes_only_what_its_mask_names(api: V2) -> None:
    up = await sign_up(api, "pat@example.com")
    me = bearer(up.session.access_token)

    async def update(new: U.Me, *paths: str) -> U.Me:
        mask = FieldMask(paths=list(paths)) if paths else None
        request = U.UpdateProfileRequest(me=new, update_mask=mask)
        return (await api.users.UpdateProfile(request, metadata=me)).me

    named = await update(U.Me(full_name="Pat Q", default_mode=U.USER_MODE_POSTER), "full_name")
    assert (named.full_name, named.default_mode) == ("Pat Q", U.USER_MODE_WORKER)  # mode not named
    unmasked = await update(U.Me(default_mode=U.USER_MODE_POSTER, location_state="nv"))
    assert (unmasked.full_name, unmasked.default_mode, unmasked.location_state) == (
        "Pat Q", U.USER_MODE_POSTER, "NV")  # fmt: skip
    echoed = await update(unmasked)  # an echo changes nothing (output-only fields are ignored)
    assert echoed.full_name == "Pat Q"
    everything = await update(
        U.Me(full_name="Pat R", default_mode=U.USER_MODE_WORKER, location_state="CA"), "*"
    )
    assert (everything.full_name, everything.default_mode, everything.location_state) == (
        "Pat R", U.USER_MODE_WORKER, "CA")  # fmt: skip
    refused = await invalid(
        update(U.Me(full_name=""), "full_name", "default_mode", "location_state", "email")
    )
    assert sorted(refused) == [
        "me.default_mode",
        "me.full_name",
        "me.location_state",
        "update_mask.paths[3]",
    ]
    assert (await api.users.GetMe(U.GetMeRequest(), metadata=me)).me.full_name == "Pat R"


async def test_avatars_and_public_profiles(api: V2) -> None:
    owner, other = api.poster(), api.poster()
    avatar = str(api.world.upload(owner.user_id, "AVATAR"))
    updated = await api.users.SetAvatar(U.SetAvatarRequest(upload_id=avatar), metadata=owner.auth)
    assert updated.me.avatar_upload_id == avatar
    await fails(api.users.SetAvatar(U.SetAvatarRequest(upload_id=avatar), metadata=other.auth),
                S.PERMISSION_DENIED, "HX202")  # fmt: skip
    photo = str(api.world.upload(owner.user_id, "PROOF_PHOTO"))
    await fails(api.users.SetAvatar(U.SetAvatarRequest(upload_id=photo), metadata=owner.auth),
                S.INVALID_ARGUMENT, "HX301")  # fmt: skip
    public = (await api.users.GetUser(U.GetUserRequest(user_id=owner.id), metadata=other.auth)).user
    assert (public.user_id, public.avatar_upload_id, public.trust_tier) == (
        owner.id,
        avatar,
        U.TRUST_TIER_ROOKIE,
    )
    assert list(await invalid(api.users.GetUser(U.GetUserRequest(user_id="me"), metadata=other.auth))) == [
        "user_id"]  # fmt: skip
    await fails(api.users.GetUser(U.GetUserRequest(user_id=owner.id)), S.UNAUTHENTICATED, "HX401")
