"""The feed cache: pages in Redis, invalidated in O(1), never serving what the caller may not take.

Keys (one Redis round trip to look a page up, through a Lua script):

    feeduser:<user>          "<profile version>|<state>|<valid until, epoch s>"
    feedgen:<state>          generation of the state's open tasks (INCR: one entered or left OPEN)
    feed:<state>:<gen>:<user>:<version>:<query>   a serialized page, TTL 60 s (URGENT 15 s)

- A task entering or leaving OPEN bumps its state's generation (eligibility needs the same
  state, so other states' feeds are unaffected): every cached page of that state is skipped
  from then on and expires by itself. No KEYS, no scans.
- A capability recompute writes the user's new profile version (never an older one over a
  newer), so their pages are skipped from then on.
- A profile's verdicts also change by time (a credential expiring): `valid until` bounds both
  the page TTL and the user entry, so nothing is served past the moment it stops being true.
- Bumps happen after the change commits; a reader builds its key before it queries, so a page
  computed from old data is stored under an old key that nobody reads again.
"""

from __future__ import annotations

import hashlib
import time
from contextvars import ContextVar
from dataclasses import dataclass

import redis.asyncio as aioredis
import redis.exceptions

from server import metrics
from server.outage import Outage

# The page of `query` for `user`, as {key|valid_until, page} (false where unknown). A Lua
# function, so that the admission script can look a feed page up in its own round trip too
# (server/ratelimit.py, FEED_LOOKUP).
FEED_LOOKUP = """
local function feed_lookup(user, query, now)
  local entry = redis.call('GET', 'feeduser:' .. user)
  if not entry then return {false, false} end
  local version, state, valid_until = string.match(entry, '^([^|]*)|([^|]*)|([^|]*)$')
  if tonumber(valid_until) <= tonumber(now) then return {false, false} end
  local gen = redis.call('GET', 'feedgen:' .. state) or '0'
  local key = 'feed:' .. state .. ':' .. gen .. ':' .. user .. ':' .. version .. ':' .. query
  return {key .. '|' .. valid_until, redis.call('GET', key)}
end
"""
_LOOKUP = FEED_LOOKUP + "return feed_lookup(ARGV[1], ARGV[2], ARGV[3])"

# Store a user's profile entry unless a newer version is there already.
_REMEMBER = """
local current = redis.call('GET', 'feeduser:' .. ARGV[1])
if current then
  local version = tonumber(string.match(current, '^([^|]*)|'))
  if version and version > tonumber(ARGV[2]) then return 0 end
end
local entry = ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4]
redis.call('SET', 'feeduser:' .. ARGV[1], entry, 'EX', ARGV[5])
return 1
"""

USER_ENTRY_SECONDS = 3600
FAR_FUTURE = 4_102_444_800  # 2100-01-01: a profile with no expiring credential


@dataclass(frozen=True, slots=True)
class Lookup:
    key: str | None  # where to store the page (None: the user's profile must be read first)
    page: bytes | None
    valid_until: float

    @classmethod
    def of(cls, found: list[object]) -> Lookup:
        """The answer of FEED_LOOKUP."""
        located, page = found[0], found[1]
        if not isinstance(located, bytes):
            return cls(None, None, 0)
        key, _, valid_until = located.decode().rpartition("|")
        return cls(key, page if isinstance(page, bytes) else None, float(valid_until))


# A page looked up during admission, in the same round trip (server/interceptors/admission.py):
# (user, query slot, what the lookup found), for this call only.
_prefetched: ContextVar[tuple[str, str, Lookup] | None] = ContextVar(
    "hustle_feed_prefetch", default=None
)


def keep_prefetched(user_id: str, slot: str, found: list[object] | None) -> None:
    """Keep (or clear, with None) the lookup admission made for this call."""
    _prefetched.set((user_id, slot, Lookup.of(found)) if found is not None else None)


class FeedCache:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._outage = Outage("feed cache", "pages come from the database")
        self._lookup = client.register_script(_LOOKUP)
        self._remember = client.register_script(_REMEMBER)

    @staticmethod
    def query_key(*parts: object) -> str:
        return hashlib.sha1(
            "\x1f".join(map(str, parts)).encode(), usedforsecurity=False
        ).hexdigest()[:20]

    async def lookup(self, user_id: str, query: str, *, prefetched: bool = False) -> Lookup:
        """Where the page of `query` for the user lives and, when cached, the page. With
        `prefetched`, the lookup admission made for this very call answers when it is for this
        user and query (no round trip of its own)."""
        if prefetched:
            early = _prefetched.get()
            if early is not None and early[0] == user_id and early[1] == query:
                return early[2]
        try:
            found = await self._lookup(keys=[], args=[user_id, query, int(time.time())])
        except redis.exceptions.RedisError as exc:
            self._outage.failed(exc)
            return Lookup(None, None, 0)
        self._outage.recovered()
        return Lookup.of(found)

    async def remember_user(
        self, user_id: str, version: int, state: str, valid_until: float | None
    ) -> None:
        """Record the user's current profile (from the database) for keying their pages."""
        until = int(valid_until) if valid_until else FAR_FUTURE
        ttl = max(1, min(USER_ENTRY_SECONDS, until - int(time.time())))
        await self._redis_quietly(
            self._remember(keys=[], args=[user_id, version, state.strip(), until, ttl])
        )

    async def store(self, key: str, page: bytes, ttl_seconds: float, valid_until: float) -> None:
        ttl = min(ttl_seconds, valid_until - time.time()) if valid_until else ttl_seconds
        if ttl >= 1:
            await self._redis_quietly(self._redis.set(key, page, ex=int(ttl)))

    async def task_moved(self, *states: str) -> None:
        """A task entered or left OPEN in these states: their cached pages are stale."""
        for state in {s.strip() for s in states if s}:
            await self._redis_quietly(self._redis.incr(f"feedgen:{state}"))
            metrics.FEED_INVALIDATIONS.labels("task").inc()

    async def profile_changed(
        self, user_id: str, version: int, state: str | None, valid_until: float | None
    ) -> None:
        """A user's capability profile has a new version: their cached pages are stale."""
        await self.remember_user(user_id, version, state or "", valid_until)
        metrics.FEED_INVALIDATIONS.labels("profile").inc()

    async def _redis_quietly(self, operation: object) -> None:
        try:
            await operation  # type: ignore[misc]
        except redis.exceptions.RedisError as exc:
            self._outage.failed(exc)
