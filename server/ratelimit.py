"""Rate limits (DOMAIN.md): a sliding window per group and identity, shared through Redis.

| group  | per minute | counted by           |
| AUTH   | 5          | client IP and account|
| READ   | 120        | user                 |
| WRITE  | 20         | user                 |
| ADMIN  | 60         | user                 |
| UPLOAD | 10         | user                 |
| MESSAGE| 10         | user                 |

(MESSAGE's hourly and daily limits are counted by the database: server/domain/messages.py.)

Each counter is a sorted set of request times; one Lua script checks every counter of a call
and records the call in all of them only if none is full, so a refused call costs nothing. The
window is exact over the last 60 s: any burst that stays within a minute's allowance passes
(a burst of twice the average rate for 10 s uses a sixth of it). The answer to a refused call
is the time until the oldest counted request leaves the window.

When Redis is unreachable each process falls back to a local window of the same size (the API
keeps serving, and says so in logs and `rate_limiter_fallback_total`); procedures that fail
closed (admin, money-moving) are refused instead.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis
import redis.exceptions

from server import metrics
from server.cache import FEED_LOOKUP
from server.config import Settings
from server.errors import HxError
from server.outage import Outage
from server.policy import Group

WINDOW_SECONDS = 60.0


def limits_from(settings: Settings) -> Mapping[Group, int]:
    return {
        Group.AUTH: settings.rate_limit_auth_per_minute,
        Group.READ: settings.rate_limit_read_per_minute,
        Group.WRITE: settings.rate_limit_write_per_minute,
        Group.ADMIN: settings.rate_limit_admin_per_minute,
        Group.UPLOAD: settings.rate_limit_upload_per_minute,
        Group.MESSAGE: settings.rate_limit_message_per_minute,
    }


# The sliding window over a list of counters: refuse (returning the wait in ms) if any is full,
# else record the call in all of them.
_WINDOW = """
local function admit(keys, now, window, limit, member)
  local wait = 0
  for _, key in ipairs(keys) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= limit then
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      wait = math.max(wait, tonumber(oldest[2]) + window - now)
    end
  end
  if wait > 0 then return wait end
  for _, key in ipairs(keys) do
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
  end
  return 0
end
"""

_SCRIPT = (
    _WINDOW + "return admit(KEYS, tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])"
)

# A cached session (KEYS[1], server/sessions.py's entry) and the call's counters in one round
# trip: no live entry → {nil, 0}, nothing counted; an admin-only call by a non-admin → {entry, 0},
# not counted (it is refused); else the user's counter (ARGV[6] .. user id) joins KEYS[2..].
_SESSION_SCRIPT = (
    _WINDOW
    + """
local entry = redis.call('GET', KEYS[1])
if not entry then return {false, 0} end
local session = cjson.decode(entry)
local now = tonumber(ARGV[1])
if tonumber(session.expires_at) * 1000 <= now then return {false, 0} end
if ARGV[5] == '1' and not session.is_admin then return {entry, 0} end
local keys = {}
for i = 2, #KEYS do keys[#keys + 1] = KEYS[i] end
keys[#keys + 1] = ARGV[6] .. session.user_id
local wait = admit(keys, now, tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
if ARGV[7] and wait == 0 then
  local found = feed_lookup(session.user_id, ARGV[7], math.floor(now / 1000))
  return {entry, wait, found[1], found[2]}
end
return {entry, wait}
"""
)
# The same, and when the call is admitted, the feed page it asks for looked up too (ARGV[7]:
# the query's slot): a cached GetFeed is then one round trip in all.
_SESSION_FEED_SCRIPT = FEED_LOOKUP + _SESSION_SCRIPT


def _key(group: Group, identity: str) -> str:
    return f"rl:{group.value}:{identity}"


def _refuse_if(group: Group, wait_ms: int) -> None:
    if wait_ms > 0:
        metrics.RATE_LIMITED.labels(group.value).inc()
        raise HxError("HX501", retry_after_seconds=round(wait_ms / 1000, 3))


class RateLimiter:
    def __init__(
        self,
        redis_client: aioredis.Redis,
        limits: Mapping[Group, int],
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        self._redis = redis_client
        self._limits = limits
        self._window_ms = int(window_seconds * 1000)
        self._script = redis_client.register_script(_SCRIPT)
        self._session_script = redis_client.register_script(_SESSION_SCRIPT)
        self._session_feed_script = redis_client.register_script(_SESSION_FEED_SCRIPT)
        self._local: dict[str, deque[int]] = defaultdict(deque)
        self._outage = Outage("rate limiter", "counting with a per-process budget")

    async def check(self, group: Group, identities: Sequence[str], *, fail_closed: bool) -> None:
        """Count one call of `group` for every identity, or raise HX501 with the retry delay."""
        keys = [_key(group, identity) for identity in identities]
        now = int(time.time() * 1000)
        limit = self._limits[group]
        try:
            wait_ms = int(
                await self._script(
                    keys=keys, args=[now, self._window_ms, limit, f"{now}-{uuid.uuid4().hex}"]
                )
            )
        except redis.exceptions.RedisError as exc:
            self._outage.failed(exc)
            if fail_closed:
                raise HxError("HX902", "Rate limiting is unavailable; retry shortly.") from exc
            metrics.RATE_LIMIT_FALLBACK.labels(group.value).inc()
            wait_ms = self._check_locally(keys, now, limit)
        else:
            self._outage.recovered()
        _refuse_if(group, wait_ms)

    async def check_session(
        self,
        session_key: str,
        group: Group,
        identities: Sequence[str],
        *,
        admin_only: bool,
        feed_slot: str | None = None,
    ) -> tuple[bytes | None, list[object] | None]:
        """The common case in one round trip: when the session cached at `session_key` is live,
        count the call for `identities` and its user (HX501 if any counter is full) and return
        the entry. None when the cache cannot answer (not cached, expired, Redis unreachable):
        nothing was counted, and the caller takes the separate paths (database, then `check`).
        An admin-only call by a non-admin returns the entry uncounted, to be refused.
        With `feed_slot`, an admitted call's feed page is looked up in the same round trip: the
        second item is FEED_LOOKUP's answer (None when not looked up)."""
        now = int(time.time() * 1000)
        keys = [session_key, *(_key(group, identity) for identity in identities)]
        args: list[str | int] = [
            now,
            self._window_ms,
            self._limits[group],
            f"{now}-{uuid.uuid4().hex}",
            "1" if admin_only else "0",
            _key(group, "user:"),
        ]
        script = self._session_script
        if feed_slot is not None:
            args.append(feed_slot)
            script = self._session_feed_script
        try:
            found = await script(keys=keys, args=args)
        except redis.exceptions.RedisError:
            return None, None
        entry, wait_ms = found[0], found[1]
        if entry is None:
            return None, None
        _refuse_if(group, int(wait_ms))
        return bytes(entry), (found[2:4] if len(found) > 2 else None)

    def _check_locally(self, keys: Sequence[str], now: int, limit: int) -> int:
        wait = 0
        for key in keys:
            window = self._local[key]
            while window and window[0] <= now - self._window_ms:
                window.popleft()
            if len(window) >= limit:
                wait = max(wait, window[0] + self._window_ms - now)
        if wait == 0:
            for key in keys:
                self._local[key].append(now)
        return wait
