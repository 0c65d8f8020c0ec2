"""hustle.v2.AuthService: input checks (every invalid field at once) and translation; the rules
live in server.domain.auth."""

from __future__ import annotations

from typing import Any

from grpc import aio

from hustle.v2 import auth_pb2, auth_pb2_grpc
from server import caller, pagination, request_context, validation
from server.api.v2 import convert, lists
from server.config import Settings
from server.db import Database
from server.domain import auth, users
from server.errors import invalid
from server.sessions import SessionStore
from server.validation import Checks

Context = aio.ServicerContext[Any, Any]
SESSIONS = lists.kind("sessions")


def _code(value: str, field: str = "code") -> str:
    code = value.strip()
    if not (len(code) == 6 and code.isdigit()):
        raise invalid(field, "must be the 6 digits from the text message")
    return code


class AuthService(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, db: Database, sessions: SessionStore, settings: Settings) -> None:
        self._db = db
        self._sessions = sessions
        self._settings = settings
        self._secret = settings.secret_key.get_secret_value()

    @staticmethod
    def _client() -> auth.Client:
        """What the transport said of the caller (the interceptors keep it for the call)."""
        ctx = request_context.current()
        if ctx is None:
            return auth.Client(user_agent=None, ip=None)
        return auth.Client(user_agent=ctx.user_agent, ip=ctx.client_ip or None)

    async def SignUp(
        self, request: auth_pb2.SignUpRequest, context: Context
    ) -> auth_pb2.SignUpResponse:
        with Checks() as check:
            email = check(validation.email, request.email)
            password = check(validation.password, request.password, email=email or "")
            name = check(validation.full_name, request.full_name)
            mode = convert.USER_MODES.to_domain(request.default_mode)
            if mode is None:
                check.fail("default_mode", "must be USER_MODE_POSTER or USER_MODE_WORKER")
        assert mode is not None
        grant, user = await auth.sign_up(
            self._db,
            self._settings,
            email=email,
            password=password,
            full_name=name,
            default_mode=mode,
            client=self._client(),
        )
        return auth_pb2.SignUpResponse(session=convert.session(grant), me=convert.me(user))

    async def SignIn(
        self, request: auth_pb2.SignInRequest, context: Context
    ) -> auth_pb2.SignInResponse:
        with Checks() as check:
            email = check(validation.email, request.email)
            check(validation.required, request.password, "password")
        grant = await auth.sign_in(
            self._db,
            self._settings,
            email=email,
            password=request.password,
            client=self._client(),
        )
        return auth_pb2.SignInResponse(session=convert.session(grant))

    async def SignOut(
        self, request: auth_pb2.SignOutRequest, context: Context
    ) -> auth_pb2.SignOutResponse:
        who = caller.current()
        await auth.sign_out(
            self._db, self._sessions, user_id=who.user_id, session_id=who.session_id
        )
        return auth_pb2.SignOutResponse()

    async def ListSessions(
        self, request: auth_pb2.ListSessionsRequest, context: Context
    ) -> auth_pb2.ListSessionsResponse:
        with Checks() as check:
            limit = lists.page_size(check, request.page_size)
            after = lists.after(check, self._secret, SESSIONS, request.page_token)
        who = caller.current()
        found = await auth.list_sessions(
            self._db, user_id=who.user_id, after=after, limit=limit + 1
        )
        page, token = pagination.split_keyed(self._secret, SESSIONS, found, limit)
        return auth_pb2.ListSessionsResponse(
            sessions=[convert.session_info(s, who.session_id) for s in page],
            next_page_token=token,
        )

    async def RevokeSession(
        self, request: auth_pb2.RevokeSessionRequest, context: Context
    ) -> auth_pb2.RevokeSessionResponse:
        with Checks() as check:
            session_id = check(validation.uuid_id, request.session_id, "session_id")
        await auth.revoke_session(
            self._db, self._sessions, user_id=caller.current().user_id, session_id=session_id
        )
        return auth_pb2.RevokeSessionResponse()

    async def RefreshSession(
        self, request: auth_pb2.RefreshSessionRequest, context: Context
    ) -> auth_pb2.RefreshSessionResponse:
        who = caller.current()
        grant = await auth.refresh_session(
            self._db,
            self._sessions,
            self._settings,
            user_id=who.user_id,
            session_id=who.session_id,
            old_token_hash=who.token_hash,
        )
        return auth_pb2.RefreshSessionResponse(session=convert.session(grant))

    async def RequestEmailVerification(
        self, request: auth_pb2.RequestEmailVerificationRequest, context: Context
    ) -> auth_pb2.RequestEmailVerificationResponse:
        await auth.request_email_verification(
            self._db, self._settings, user_id=caller.current().user_id
        )
        return auth_pb2.RequestEmailVerificationResponse()

    async def VerifyEmail(
        self, request: auth_pb2.VerifyEmailRequest, context: Context
    ) -> auth_pb2.VerifyEmailResponse:
        with Checks() as check:
            token = check(validation.required, request.token, "token")
        await auth.verify_email(self._db, self._settings, token=token)
        return auth_pb2.VerifyEmailResponse()

    async def RequestPasswordReset(
        self, request: auth_pb2.RequestPasswordResetRequest, context: Context
    ) -> auth_pb2.RequestPasswordResetResponse:
        with Checks() as check:
            email = check(validation.email, request.email)
        await auth.request_password_reset(self._db, self._settings, email=email)
        return auth_pb2.RequestPasswordResetResponse()

    async def ResetPassword(
        self, request: auth_pb2.ResetPasswordRequest, context: Context
    ) -> auth_pb2.ResetPasswordResponse:
        with Checks() as check:
            token = check(validation.required, request.token, "token")
            password = check(validation.password, request.new_password, "new_password")
        await auth.reset_password(
            self._db, self._sessions, self._settings, token=token, new_password=password
        )
        return auth_pb2.ResetPasswordResponse()

    async def StartPhoneVerification(
        self, request: auth_pb2.StartPhoneVerificationRequest, context: Context
    ) -> auth_pb2.StartPhoneVerificationResponse:
        with Checks() as check:
            phone = check(validation.phone, request.phone_number)
        expires_at = await auth.start_phone_verification(
            self._db, self._settings, user_id=caller.current().user_id, phone=phone
        )
        return auth_pb2.StartPhoneVerificationResponse(expires_at=convert.timestamp(expires_at))

    async def ConfirmPhoneVerification(
        self, request: auth_pb2.ConfirmPhoneVerificationRequest, context: Context
    ) -> auth_pb2.ConfirmPhoneVerificationResponse:
        with Checks() as check:
            code = check(_code, request.code)
        who = caller.current()
        await auth.confirm_phone_verification(
            self._db, self._settings, user_id=who.user_id, code=code
        )
        return auth_pb2.ConfirmPhoneVerificationResponse(
            me=convert.me(await users.get(self._db, who.user_id))
        )
