"""Feed pages on the wire, for every API version: cached pages, encoded cards, assembled bytes.

A GetFeed call, in the common cases:

    cached page  one Redis round trip (server/cache.py's lookup): the stored bytes are the answer
    miss         the page's entries from one statement (ids, versions, positions, distances);
                 each card's encoded form from this process's CardCache by (id, version), the
                 ones it lacks read in one more statement; the page assembled from those bytes
                 (encoded sub-messages concatenate into a repeated field) and stored in Redis

Cards are keyed by the task's version, which moves with every change of its row (migration
0030), so a card found is the card as the page saw it: never stale by construction. Cards read
after the page are checked against the page's versions; if a task changed in between, the page
and its cards are read again in one snapshot. Each API version has its own encoder and its own
cards (`PageEncoder`); the domain returns entries and records and knows nothing of bytes.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from server import metrics, pagination
from server.cache import FeedCache
from server.db import Database, Session
from server.domain import feed
from server.domain.records import FeedEntry, FeedMode, Task

_CARD_HITS = metrics.FEED_CARDS.labels("hit")
_CARD_MISSES = metrics.FEED_CARDS.labels("miss")


class PageEncoder(Protocol):
    """How one API version writes a feed page."""

    namespace: str  # its pages' part of the Redis keys ("v1", "v2")

    def card(self, task: Task) -> bytes:
        """A task card as this version's message, serialized."""
        ...

    def page(self, items: Sequence[tuple[bytes, float]], next_token: str, mode: FeedMode) -> bytes:
        """The response: (card bytes, distance) per item, then the next page's token."""
        ...


def varint(value: int) -> bytes:
    """A protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + varint(len(payload)) + payload


def double(tag: int, value: float) -> bytes:
    """A double field (omitted at 0, as proto3 does)."""
    return bytes((tag,)) + struct.pack("<d", value) if value else b""


class CardCache:
    """Encoded cards of this process, least recently used first out, by (task id, version)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._cards: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def get(self, task_id: str, version: int) -> bytes | None:
        key = (task_id, version)
        found = self._cards.get(key)
        if found is not None:
            self._cards.move_to_end(key)
        return found

    def put(self, task_id: str, version: int, card: bytes) -> None:
        self._cards[(task_id, version)] = card
        self._cards.move_to_end((task_id, version))
        while len(self._cards) > self.capacity:
            self._cards.popitem(last=False)

    def __len__(self) -> int:
        return len(self._cards)


class FeedPages:
    def __init__(
        self,
        db: Database,
        cache: FeedCache,
        secret: str,
        encoder: PageEncoder,
        *,
        card_capacity: int,
    ) -> None:
        self._db = db
        self._cache = cache
        self._secret = secret
        self._encoder = encoder
        self.cards = CardCache(card_capacity)

    def slot(self, query: feed.FeedQuery) -> str:
        """Where the page of `query` is cached (for any user; this version's own key)."""
        return FeedCache.query_key(self._encoder.namespace, *query.identity(), query.page_token)

    async def page(self, user_id: str, query: feed.FeedQuery) -> bytes:
        """One page of a feed in the encoder's wire form, from the cache when it can be (the
        lookup admission made in its round trip, when it made one)."""
        identity = query.identity()
        kind = "feed:" + FeedCache.query_key(*identity)
        after = pagination.decode(self._secret, kind, query.page_token)
        slot = self.slot(query)
        mode = query.mode.value
        found = await self._cache.lookup(user_id, slot, prefetched=True)
        if found.page is not None:
            metrics.FEED_CACHE.labels(mode, "hit").inc()
            return found.page
        metrics.FEED_CACHE.labels(mode, "miss").inc()
        if found.key is None:
            profile = await feed.profile(self._db, user_id)
            if profile is None:  # no capability profile yet: nothing is eligible
                return self._encoder.page((), "", query.mode)
            valid_until = profile.valid_until.timestamp() if profile.valid_until else None
            await self._cache.remember_user(
                user_id, profile.version, profile.location_state or "", valid_until
            )
            found = await self._cache.lookup(user_id, slot)

        started = time.perf_counter()
        entries, cards = await self._read(self._db, user_id, query, after)
        if cards is None:  # a task changed between the page and its cards: read both at once
            async with feed.snapshot(self._db) as tx:
                entries, cards = await self._read(tx, user_id, query, after)
            assert cards is not None  # one snapshot: the versions agree
        metrics.FEED_QUERY_SECONDS.labels(mode).observe(time.perf_counter() - started)
        shown = entries[: query.page_size]
        token = (
            pagination.encode(self._secret, kind, feed.position(query.mode, shown[-1]))
            if len(entries) > query.page_size
            else ""
        )
        body = self._encoder.page(
            [(c, e.distance) for c, e in zip(cards, shown, strict=True)], token, query.mode
        )
        if found.key is not None:
            await self._cache.store(
                found.key, body, feed.TTL_SECONDS[query.mode], found.valid_until
            )
        return body

    async def _read(
        self,
        db: Database | Session,
        user_id: str,
        query: feed.FeedQuery,
        after: list[object] | None,
    ) -> tuple[list[FeedEntry], list[bytes] | None]:
        """The page's entries and their encoded cards (None: a card's version is not the page's)."""
        entries = await feed.entries(db, user_id, query, after)
        return entries, await self.cards_for(db, entries[: query.page_size])

    async def cards_for(
        self, db: Database | Session, shown: Sequence[FeedEntry]
    ) -> list[bytes] | None:
        """The encoded card of each entry, at the entry's version: from this process's cache, the
        others read in one statement. None when a task read is not at its entry's version (it
        changed since the page was read)."""
        cards: list[bytes | None] = [self.cards.get(e.id, e.version) for e in shown]
        missing = [e for e, c in zip(shown, cards, strict=True) if c is None]
        if missing:
            _CARD_MISSES.inc(len(missing))
            read = {task.id: task for task in await feed.cards(db, [e.id for e in missing])}
            for i, entry in enumerate(shown):
                if cards[i] is not None:
                    continue
                task = read.get(entry.id)
                if task is None or task.version != entry.version:
                    return None
                card = self._encoder.card(task)
                self.cards.put(task.id, task.version, card)
                cards[i] = card
        _CARD_HITS.inc(len(shown) - len(missing))
        return [c for c in cards if c is not None]
