"""Bearer tokens → callers, with a Redis cache in front of the sessions table.

A token's session is cached for up to an hour (`sess:<sha256>`, JSON: user_id, session_id,
is_admin, active, expires_at; server/ratelimit.py's session script reads it too), and remembered
in the user's set (`usersess:<user id>`) so that revoking one session or all of them drops the
cache: a revoked token is refused on its next call even if it was cached. When Redis is
unreachable the database answers every lookup.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis
import redis.exceptions

from server import outbox
from server.caller import Caller
from server.db import Database, Rows
from server.outage import Outage

CACHE_SECONDS = 3600
# How long a dropped token may not be cached again: longer than any lookup takes from its
# database read to its cache write, so that a lookup that read the row before a revocation (or
# an admin-rights change) committed cannot put the old entry back after the drop.
TOMBSTONE_SECONDS = 10

# Fill a token's entry (KEYS[1]) and the user's set (KEYS[2]) unless the token was dropped
# within TOMBSTONE_SECONDS (KEYS[3]).
_FILL = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


@dataclass(frozen=True, slots=True)
class _Live:
    """A live session, as the lookup of its token finds it."""

    session_id: str
    user_id: str
    expires_at: datetime
    is_admin: bool
    stale: bool  # last seen long enough ago to record the call
    active: bool  # the account's standing is ACTIVE (INV-17: else mutations are HX405)


_BY_TOKEN = Rows("session_by_token", _Live)


def _key(token_hash: bytes) -> str:
    return f"sess:{token_hash.hex()}"


def _user_key(user_id: str) -> str:
    return f"usersess:{user_id}"


def _tombstone_key(token_hash: bytes) -> str:
    return f"sessgone:{token_hash.hex()}"


class SessionStore:
    def __init__(self, db: Database, redis_client: aioredis.Redis) -> None:
        self._db = db
        self._redis = redis_client
        self._outage = Outage("session cache", "sessions are read from the database")
        self._fill = redis_client.register_script(_FILL)

    @staticmethod
    def cache_key(token_hash: bytes) -> str:
        """Where a token's session is cached (read in one round trip with the rate limits)."""
        return _key(token_hash)

    @staticmethod
    def from_cache(cached: bytes | str, token_hash: bytes) -> Caller | None:
        """The caller a cached entry names, None once the session has expired."""
        entry = json.loads(cached)
        if entry["expires_at"] <= time.time():
            return None
        return Caller(
            entry["user_id"],
            entry["session_id"],
            entry["is_admin"],
            token_hash,
            entry.get("active", True),
        )

    async def authenticate(self, token_hash: bytes) -> Caller | None:
        now = time.time()
        try:
            cached = await self._redis.get(_key(token_hash))
        except redis.exceptions.RedisError as exc:
            self._outage.failed(exc)
            cached = None
        else:
            self._outage.recovered()
        if cached is not None and (found := self.from_cache(cached, token_hash)) is not None:
            return found
        row = await self._db.one(_BY_TOKEN, token_hash=token_hash)
        if row is None:
            return None
        caller = Caller(row.user_id, row.session_id, row.is_admin, token_hash, row.active)
        if row.stale:
            await self._db.execute("session_seen", session_id=row.session_id)
        expires_at = row.expires_at.timestamp()
        entry = {
            "user_id": caller.user_id,
            "session_id": caller.session_id,
            "is_admin": caller.is_admin,
            "active": caller.active,
            "expires_at": expires_at,
        }
        ttl = max(1, min(CACHE_SECONDS, int(expires_at - now)))
        # (when Redis does not answer: the database did; the cache is filled next time)
        with contextlib.suppress(redis.exceptions.RedisError):
            await self._fill(
                keys=[_key(token_hash), _user_key(caller.user_id), _tombstone_key(token_hash)],
                args=[json.dumps(entry), ttl, token_hash.hex(), CACHE_SECONDS * 2],
            )
        return caller

    async def forget(self, user_id: str, token_hashes: Iterable[bytes]) -> None:
        """Drop revoked tokens from the cache (called after the revocation commits).

        When Redis cannot be reached the revocation still stands (the database is asked on
        every call meanwhile), but the entries would outlive the outage (Redis keeps its data
        across a restart): a `session.forget` job is queued instead, which the worker runs once
        Redis is back."""
        hashes = [bytes(h) for h in token_hashes]
        if not hashes:
            return
        try:
            await self.drop(user_id, hashes)
        except redis.exceptions.RedisError as exc:
            self._outage.failed(exc)
            async with self._db.transaction() as tx:
                await outbox.enqueue(
                    tx,
                    "session.forget",
                    {"user_id": user_id, "token_hashes": [h.hex() for h in hashes]},
                )

    async def drop(self, user_id: str, token_hashes: Iterable[bytes]) -> None:
        """Delete the tokens' cache entries, and keep them out of the cache for
        TOMBSTONE_SECONDS (a lookup that raced the change cannot put them back); raises when
        Redis cannot be reached."""
        hashes = [bytes(h) for h in token_hashes]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(_key(h) for h in hashes))
            pipe.srem(_user_key(user_id), *(h.hex() for h in hashes))
            for h in hashes:
                pipe.set(_tombstone_key(h), b"1", ex=TOMBSTONE_SECONDS)
            await pipe.execute()
