"""Admission: who is calling (`authorization: Bearer <token>` → the user) and whether they may
call now (the procedure's access rule and its rate-limit group), in one Redis round trip when the
session is cached.

- Access (options.proto: PUBLIC, USER, ADMIN): a missing, expired or revoked token on a procedure
  that needs a user is UNAUTHENTICATED (HX401); a user on an admin procedure is
  PERMISSION_DENIED (HX202); a mutation by a suspended or banned account (whose sessions a
  suspension revokes: only one that raced it) is PERMISSION_DENIED (HX405). A call refused for
  access is not counted against any limit.
- Rate limits (server/ratelimit.py): sign-in, sign-up, code and password-reset procedures (AUTH)
  count by client IP and, when the request names an account (its `email`), by that account too;
  the others count by user (by IP for anonymous callers). HX501 with the retry delay.
- Procedures outside the hustle contract (health, reflection) are public and not limited.

The common call (a cached session) reads the session and counts the call in one Lua script;
otherwise the session comes from the database (and is cached) and the counters are a second
call, which is also the path when Redis is unreachable (its fallbacks apply unchanged).

A procedure may name a feed page to look up in that same round trip (`prefetch`: method → a
function of the request giving the page's cache slot, or None): GetFeed's servicer finds the
lookup made (server/cache.py) instead of asking Redis again, so a cached feed page costs one
round trip in all.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio

from server import cache, caller, request_context, security
from server.caller import Caller
from server.errors import HxError
from server.interceptors.base import AroundInterceptor, metadata_value
from server.policy import Access, Group, Policy
from server.ratelimit import RateLimiter
from server.sessions import SessionStore

Context = aio.ServicerContext[Any, Any]


def bearer_token(context: Context) -> str | None:
    header = metadata_value(context, "authorization") or ""
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def client_ip(context: Context, header: str | None = None, hops: int = 1) -> str:
    """The caller's IP address.

    Without `header`: the TCP peer. With it (CLIENT_IP_HEADER, the header the proxy in front
    sets), only what that proxy wrote, never a value the client chose: `x-forwarded-for` is read
    from the right, where each of the `hops` trusted proxies appended the address it saw (the
    entries to their left are whatever the client sent); any other header (fly-client-ip, which
    Fly's HTTP handler sets itself) counts in its last occurrence. A missing or malformed value
    falls back to the peer, which is the proxy: one shared budget, never a fresh one.
    """
    if header is not None:
        values = [
            value.decode("ascii", "replace") if isinstance(value, bytes) else value
            for key, value in context.invocation_metadata() or ()
            if key == header
        ]
        if values:
            if header == "x-forwarded-for":
                entries = [e.strip() for v in values for e in v.split(",")]
                found = entries[-hops] if len(entries) >= hops else ""
            else:
                found = values[-1].strip()
            try:
                return str(ipaddress.ip_address(found))
            except ValueError:
                pass
    peer = context.peer() or "unknown"  # "ipv4:1.2.3.4:567", "ipv6:[::1]:567"
    kind, _, address = peer.partition(":")
    if kind == "ipv6" and address.startswith("["):
        return address[1 : address.index("]")]
    return address.rsplit(":", 1)[0] if kind == "ipv4" else peer


class AdmissionInterceptor(AroundInterceptor):
    def __init__(
        self,
        policies: Mapping[str, Policy],
        sessions: SessionStore,
        limiter: RateLimiter,
        *,
        client_ip_header: str | None = None,
        trusted_proxy_hops: int = 1,
        prefetch: Mapping[str, Callable[[Any], str | None]] | None = None,
    ) -> None:
        super().__init__()
        self._policies = policies
        self._sessions = sessions
        self._limiter = limiter
        self._client_ip_header = client_ip_header
        self._trusted_proxy_hops = trusted_proxy_hops
        self._prefetch = dict(prefetch or {})

    @asynccontextmanager
    async def around(self, method: str, context: Context, request: Any) -> AsyncIterator[None]:
        policy = self._policies.get(method)
        who = await self._admit(policy, method, context, request) if policy is not None else None
        caller.bind(who)
        if who is not None:
            request_context.set_user(who.user_id)
        try:
            yield
        finally:
            caller.bind(None)
            cache.keep_prefetched("", "", None)

    async def _admit(
        self, policy: Policy, method: str, context: Context, request: Any
    ) -> Caller | None:
        token = bearer_token(context)
        shared = self._shared_identities(policy, context, request)
        if token is not None:
            token_hash = security.token_hash(token)
            slotter = self._prefetch.get(method)
            slot = slotter(request) if slotter is not None and request is not None else None
            cached, page = await self._limiter.check_session(
                self._sessions.cache_key(token_hash),
                policy.group,
                shared,
                admin_only=policy.access is Access.ADMIN,
                feed_slot=slot,
            )
            if cached is not None:  # counted (unless refused below: then it was not)
                who = self._sessions.from_cache(cached, token_hash)
                if who is not None:
                    _require(policy, token, who)
                    if slot is not None and page is not None:
                        cache.keep_prefetched(who.user_id, slot, page)
                    return who
            who = await self._sessions.authenticate(token_hash)
        else:
            who = None
        _require(policy, token, who)
        identities = list(shared)
        if who is not None:
            identities.append(f"user:{who.user_id}")
        elif policy.group is not Group.AUTH:
            identities.append(self._ip(context))
        await self._limiter.check(policy.group, identities, fail_closed=policy.fail_closed)
        return who

    def _shared_identities(self, policy: Policy, context: Context, request: Any) -> list[str]:
        """The counters a call has whoever makes it: AUTH procedures' IP and account."""
        if policy.group is not Group.AUTH:
            return []
        identities = [self._ip(context)]
        email = getattr(request, "email", "") if request is not None else ""
        if email:
            digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
            identities.append(f"acct:{digest}")
        return identities

    def _ip(self, context: Context) -> str:
        ip = client_ip(context, self._client_ip_header, self._trusted_proxy_hops)
        request_context.set_client_ip(ip)
        return f"ip:{ip}"


def _require(policy: Policy, token: str | None, who: Caller | None) -> None:
    if policy.access is Access.PUBLIC:
        return
    if who is None:
        raise HxError(
            "HX401", "Sign in first." if not token else "The session expired or was revoked."
        )
    if policy.access is Access.ADMIN and not who.is_admin:
        raise HxError("HX202", "Only admins may do this.")
    if policy.mutation and not who.active:
        raise HxError("HX405", "This account is suspended or banned.")
