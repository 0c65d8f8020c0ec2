"""Authentication: `authorization: Bearer <token>` → the calling user, and each procedure's
access rule (options.proto: PUBLIC, USER, ADMIN) enforced before it runs.

A missing, expired or revoked token on a procedure that needs a user is UNAUTHENTICATED
(HX401); a user on an admin procedure is PERMISSION_DENIED (HX202). Procedures outside the
hustle contract (health, reflection) are public.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio

from server import caller, request_context, security
from server.errors import HxError
from server.interceptors.base import AroundInterceptor
from server.policy import Access, Policy
from server.sessions import SessionStore


def metadata_value(context: aio.ServicerContext[Any, Any], key: str) -> str | None:
    for item_key, value in context.invocation_metadata() or ():
        if item_key == key:
            return value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return None


def bearer_token(context: aio.ServicerContext[Any, Any]) -> str | None:
    header = metadata_value(context, "authorization") or ""
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class AuthInterceptor(AroundInterceptor):
    def __init__(self, policies: Mapping[str, Policy], sessions: SessionStore) -> None:
        self._policies = policies
        self._sessions = sessions

    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        policy = self._policies.get(method)
        token = bearer_token(context) if policy is not None else None
        who = await self._sessions.authenticate(security.token_hash(token)) if token else None
        if policy is not None and policy.access is not Access.PUBLIC:
            if who is None:
                raise HxError(
                    "HX401",
                    "Sign in first." if not token else "The session expired or was revoked.",
                )
            if policy.access is Access.ADMIN and not who.is_admin:
                raise HxError("HX202", "Only admins may do this.")
        caller.bind(who)
        if who is not None:
            request_context.set_user(who.user_id)
        try:
            yield
        finally:
            caller.bind(None)
