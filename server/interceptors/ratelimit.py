"""Rate limits per procedure group (server/ratelimit.py), inside authentication.

Sign-in, sign-up, code and password-reset procedures (AUTH) count by client IP and, when the
request names an account (its `email`), by that account too; the others count by user (or by IP
for anonymous callers).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from grpc import aio

from server import caller
from server.interceptors.auth import metadata_value
from server.interceptors.base import AroundInterceptor
from server.policy import Group, Policy
from server.ratelimit import RateLimiter


def client_ip(context: aio.ServicerContext[Any, Any], trust_proxy_headers: bool) -> str:
    if trust_proxy_headers:
        forwarded = metadata_value(context, "fly-client-ip") or metadata_value(
            context, "x-forwarded-for"
        )
        if forwarded:
            return forwarded.split(",")[0].strip()
    peer = context.peer() or "unknown"  # "ipv4:1.2.3.4:567", "ipv6:[::1]:567"
    kind, _, address = peer.partition(":")
    if kind == "ipv6" and address.startswith("["):
        return address[1 : address.index("]")]
    return address.rsplit(":", 1)[0] if kind == "ipv4" else peer


class RateLimitInterceptor(AroundInterceptor):
    def __init__(
        self, policies: Mapping[str, Policy], limiter: RateLimiter, *, trust_proxy_headers: bool
    ) -> None:
        self._policies = policies
        self._limiter = limiter
        self._trust_proxy_headers = trust_proxy_headers

    @asynccontextmanager
    async def around(
        self, method: str, context: aio.ServicerContext[Any, Any], request: Any
    ) -> AsyncIterator[None]:
        policy = self._policies.get(method)
        if policy is not None:
            who = caller.optional()
            identities: list[str] = []
            if policy.group is Group.AUTH or who is None:
                identities.append(f"ip:{client_ip(context, self._trust_proxy_headers)}")
            if policy.group is Group.AUTH:
                email = getattr(request, "email", "") if request is not None else ""
                if email:
                    identities.append(
                        f"acct:{hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]}"
                    )
            if who is not None:
                identities.append(f"user:{who.user_id}")
            await self._limiter.check(policy.group, identities, fail_closed=policy.fail_closed)
        yield
