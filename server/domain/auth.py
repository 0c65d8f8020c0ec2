"""Identity rules: accounts, sessions, email and phone verification, password reset.

Secrets are never stored: sessions keep their token's SHA-256, one-time codes their HMAC. Every
email and SMS goes through the outbox, in the transaction that creates the code it carries.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from loguru import logger

from server import outbox, security
from server.config import Settings
from server.db import Database, Rows, Session
from server.domain import users
from server.domain.records import SessionInfo, User, UserMode
from server.errors import HxError
from server.sessions import SessionStore

EMAIL_LINK_LIFETIME = timedelta(hours=24)
RESET_LINK_LIFETIME = timedelta(hours=1)
OTP_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Grant:
    """A new session: the token is shown to the client once and never stored."""

    session_id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Client:
    """What the transport knows about the caller (kept with the session)."""

    user_agent: str | None
    ip: str | None


@dataclass(frozen=True, slots=True)
class _Opened:
    id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class _Credentials:
    id: str
    password_hash: str
    full_name: str


@dataclass(frozen=True, slots=True)
class _Revoked:
    token_hash: bytes


@dataclass(frozen=True, slots=True)
class _Code:
    """A one-time code's row (never its secret)."""

    id: str
    user_id: str
    target: str
    code_hash: bytes
    live: bool
    attempts: int
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Recipient:
    id: str
    email: str
    full_name: str


_CREATE_SESSION = Rows("create_session", _Opened)
_ROTATE_SESSION = Rows("rotate_session", _Opened)
_REVOKE_SESSION = Rows("revoke_session", _Revoked)
_REVOKE_ALL = Rows("revoke_all_sessions", _Revoked)
_LIST_SESSIONS = Rows("list_sessions", SessionInfo)
_CREATE_USER = Rows("create_user", User)
_CREDENTIALS = Rows("user_credentials", _Credentials)
_CREATE_CODE = Rows("create_code", _Opened)
_CODE_BY_HASH = Rows("code_by_hash", _Code)
_LATEST_CODE = Rows("latest_code", _Code)


async def _open_session(tx: Session, settings: Settings, user_id: object, client: Client) -> Grant:
    token = security.new_token()
    row = await tx.one(
        _CREATE_SESSION,
        user_id=user_id,
        token_hash=security.token_hash(token),
        ttl_days=settings.session_ttl_days,
        user_agent=(client.user_agent or "")[:512] or None,
        ip=client.ip,
    )
    assert row is not None
    return Grant(row.id, token, row.expires_at)


async def _send_link(tx: Session, settings: Settings, user: _Recipient, purpose: str) -> None:
    """Create a link token for `purpose` (older live ones stop working) and email it."""
    token = security.new_token()
    secret = settings.secret_key.get_secret_value()
    lifetime = EMAIL_LINK_LIFETIME if purpose == "EMAIL_VERIFICATION" else RESET_LINK_LIFETIME
    await tx.execute("retire_codes", user_id=user.id, purpose=purpose)
    await tx.one(
        _CREATE_CODE,
        user_id=user.id,
        purpose=purpose,
        target=user.email,
        lifetime=lifetime,
        code_hash=security.code_hash(secret, purpose, "", token),
    )
    path, template = (
        ("verify-email", "verify_email")
        if purpose == "EMAIL_VERIFICATION"
        else ("reset-password", "password_reset")
    )
    link = f"{settings.public_url.rstrip('/')}/{path}?token={token}"
    await outbox.enqueue(
        tx,
        "email.send",
        {"template": template, "to": user.email, "params": {"name": user.full_name}},
        secrets={"link": link},
    )


async def sign_up(
    db: Database,
    settings: Settings,
    *,
    email: str,
    password: str,
    full_name: str,
    default_mode: UserMode,
    client: Client,
) -> tuple[Grant, User]:
    password_hash = await security.hash_password(password)
    async with db.transaction() as tx:
        user = await tx.one(
            _CREATE_USER,
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            default_mode=default_mode,
        )
        assert user is not None
        grant = await _open_session(tx, settings, user.id, client)
        await _send_link(tx, settings, _Recipient(user.id, email, full_name), "EMAIL_VERIFICATION")
        # every user has a capability profile from the start (the worker derives it)
        await outbox.enqueue(tx, "capability.recompute", {"user_id": user.id})
    logger.bind(user_id=user.id).info("account created")
    return grant, user


async def sign_in(
    db: Database, settings: Settings, *, email: str, password: str, client: Client
) -> Grant:
    """A session for the right password. A wrong password and an unknown email are the same
    error after the same work (one argon2 verification)."""
    user = await db.one(_CREDENTIALS, email=email)
    if not await security.verify_password(user.password_hash if user else None, password):
        raise HxError("HX402", "The email or the password is wrong.")
    assert user is not None
    async with db.transaction() as tx:
        if security.needs_rehash(user.password_hash):
            await tx.execute(
                "set_password",
                user_id=user.id,
                password_hash=await security.hash_password(password),
            )
        return await _open_session(tx, settings, user.id, client)


async def sign_out(db: Database, store: SessionStore, *, user_id: str, session_id: str) -> None:
    await revoke_session(db, store, user_id=user_id, session_id=session_id)


async def revoke_session(
    db: Database, store: SessionStore, *, user_id: str, session_id: str
) -> None:
    """Revoke one of the user's sessions; revoking one already revoked is done (a retry)."""
    row = await db.one(_REVOKE_SESSION, user_id=user_id, session_id=session_id)
    if row is None:
        if await db.scalar("session_of", str, user_id=user_id, session_id=session_id) is None:
            raise HxError("HX302", "No such session.")
        return
    await store.forget(user_id, [row.token_hash])


async def refresh_session(
    db: Database,
    store: SessionStore,
    settings: Settings,
    *,
    user_id: str,
    session_id: str,
    old_token_hash: bytes,
) -> Grant:
    token = security.new_token()
    row = await db.one(
        _ROTATE_SESSION,
        session_id=session_id,
        user_id=user_id,
        token_hash=security.token_hash(token),
        ttl_days=settings.session_ttl_days,
    )
    if row is None:
        raise HxError("HX401", "The session expired or was revoked.")
    await store.forget(user_id, [old_token_hash])
    return Grant(row.id, token, row.expires_at)


async def list_sessions(
    db: Database, *, user_id: str, after: list[str] | None, limit: int
) -> list[SessionInfo]:
    after_created, after_id = (after[0], after[1]) if after else (None, None)
    return await db.all(
        _LIST_SESSIONS,
        user_id=user_id,
        after_created=after_created,
        after_id=after_id,
        limit=limit,
    )


async def request_email_verification(db: Database, settings: Settings, *, user_id: str) -> None:
    async with db.transaction() as tx:
        user = await tx.one(users.USER, user_id=user_id)
        assert user is not None
        if user.email_verified_at is not None:
            raise HxError("HX303", "This email address is already verified.")
        await _send_link(
            tx, settings, _Recipient(user.id, user.email, user.full_name), "EMAIL_VERIFICATION"
        )


async def _take_link_code(tx: Session, settings: Settings, purpose: str, token: str) -> _Code:
    """The live code a link token stands for, marked used; HX403 when there is none."""
    secret = settings.secret_key.get_secret_value()
    code = await tx.one(
        _CODE_BY_HASH, code_hash=security.code_hash(secret, purpose, "", token), purpose=purpose
    )
    if code is None or code.used_at is not None or not code.live:
        raise HxError("HX403", "This link is invalid, expired or already used.")
    await tx.execute("use_code", id=code.id)
    return code


async def verify_email(db: Database, settings: Settings, *, token: str) -> None:
    """Mark the address verified; a link works once (HX403 after)."""
    async with db.transaction() as tx:
        code = await _take_link_code(tx, settings, "EMAIL_VERIFICATION", token)
        verified = await tx.scalar(
            "mark_email_verified", str, user_id=code.user_id, email=code.target
        )
        if verified is None:
            raise HxError("HX403", "This link is for an email address the account no longer has.")


async def request_password_reset(db: Database, settings: Settings, *, email: str) -> None:
    """Email a reset link if the address has an account; the same answer either way."""
    async with db.transaction() as tx:
        user = await tx.one(_CREDENTIALS, email=email)
        if user is not None:
            await _send_link(
                tx, settings, _Recipient(user.id, email, user.full_name), "PASSWORD_RESET"
            )


async def reset_password(
    db: Database, store: SessionStore, settings: Settings, *, token: str, new_password: str
) -> None:
    password_hash = await security.hash_password(new_password)
    async with db.transaction() as tx:
        code = await _take_link_code(tx, settings, "PASSWORD_RESET", token)
        await tx.execute("set_password", user_id=code.user_id, password_hash=password_hash)
        revoked = await tx.all(_REVOKE_ALL, user_id=code.user_id)
    await store.forget(code.user_id, [r.token_hash for r in revoked])
    logger.bind(user_id=code.user_id, sessions_revoked=len(revoked)).info("password reset")


async def start_phone_verification(
    db: Database, settings: Settings, *, user_id: str, phone: str
) -> datetime:
    otp = security.new_otp()
    secret = settings.secret_key.get_secret_value()
    async with db.transaction() as tx:
        await tx.execute("retire_codes", user_id=user_id, purpose="PHONE_VERIFICATION")
        row = await tx.one(
            _CREATE_CODE,
            user_id=user_id,
            purpose="PHONE_VERIFICATION",
            target=phone,
            lifetime=OTP_LIFETIME,
            code_hash=security.code_hash(secret, "PHONE_VERIFICATION", user_id, otp),
        )
        assert row is not None
        await outbox.enqueue(
            tx, "sms.send", {"template": "phone_otp", "to": phone}, secrets={"code": otp}
        )
    return row.expires_at


async def confirm_phone_verification(
    db: Database, settings: Settings, *, user_id: str, code: str
) -> None:
    """Check the texted code: 5 attempts, 10 minutes, single use. A wrong attempt is counted
    (committed) before the error is raised. The code that verified the number, sent again, is
    answered as the first time (a retry)."""
    secret = settings.secret_key.get_secret_value()
    failure: HxError | None = None
    async with db.transaction() as tx:
        row = await tx.one(_LATEST_CODE, user_id=user_id, purpose="PHONE_VERIFICATION")
        expected = security.code_hash(secret, "PHONE_VERIFICATION", user_id, code.strip())
        if (
            row is not None
            and row.used_at is not None
            and hmac.compare_digest(expected, row.code_hash)
        ):
            user = await tx.one(users.USER, user_id=user_id)
            if user is not None and user.phone == row.target and user.phone_verified_at:
                return  # this code verified this number already: a retry
        if row is None or row.used_at is not None:
            raise HxError("HX403", "No code is waiting: ask for a new one.")
        if row.attempts >= MAX_ATTEMPTS:
            raise HxError("HX404", "Too many wrong codes: ask for a new one.")
        if not row.live:
            raise HxError("HX403", "The code has expired: ask for a new one.")
        if not hmac.compare_digest(expected, row.code_hash):
            attempts = await tx.scalar("count_attempt", int, id=row.id) or 0
            failure = (
                HxError("HX404", "Too many wrong codes: ask for a new one.")
                if attempts >= MAX_ATTEMPTS
                else HxError("HX403", f"Wrong code; {MAX_ATTEMPTS - attempts} attempts left.")
            )
        else:
            await tx.execute("use_code", id=row.id)
            await tx.execute("set_verified_phone", user_id=user_id, phone=row.target)
    if failure is not None:
        raise failure
