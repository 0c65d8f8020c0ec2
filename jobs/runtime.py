"""What actors use (the database pool, the email and SMS providers), opened once per worker
process.

Dramatiq actors receive only their message's arguments, so the worker's resources are opened by
the `WorkerResources` middleware when a worker process boots, on the event loop thread that
runs async actors, and handed out here. Nothing is opened in processes that only send jobs.
"""

from __future__ import annotations

from typing import Any

import dramatiq
import redis.asyncio as aioredis
from dramatiq.asyncio import get_event_loop_thread
from loguru import logger

from jobs.providers import Providers
from server.cache import FeedCache
from server.config import Settings
from server.db import Database
from server.lifecycle import die_with_parent
from server.sessions import SessionStore
from server.storage import Storage

_db: Database | None = None
_providers: Providers | None = None
_cache: FeedCache | None = None
_storage: Storage | None = None
_sessions: SessionStore | None = None


def db() -> Database:
    if _db is None:
        raise RuntimeError("worker resources are not open (is this a worker process?)")
    return _db


def providers() -> Providers:
    if _providers is None:
        raise RuntimeError("worker resources are not open (is this a worker process?)")
    return _providers


def storage() -> Storage:
    if _storage is None:
        raise RuntimeError("worker resources are not open (is this a worker process?)")
    return _storage


def sessions() -> SessionStore:
    if _sessions is None:
        raise RuntimeError("worker resources are not open (is this a worker process?)")
    return _sessions


def feed_cache() -> FeedCache:
    if _cache is None:
        raise RuntimeError("worker resources are not open (is this a worker process?)")
    return _cache


class WorkerResources(dramatiq.Middleware):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    # before_worker_boot: Dramatiq starts consuming between the before and after hooks, so
    # resources opened "after" could miss the first messages (the AsyncIO middleware, listed
    # first, has started the event loop thread by now).
    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        global _db, _providers, _cache, _storage, _sessions
        die_with_parent()  # Dramatiq's main process killed outright: stop, do not linger
        database = Database.from_settings(self._settings, name="hustle-worker")
        loop_thread = get_event_loop_thread()
        assert loop_thread is not None, "the AsyncIO middleware must come first"
        loop_thread.run_coroutine(database.open())
        _db = database
        _providers = Providers(self._settings)
        client = aioredis.Redis.from_url(
            str(self._settings.redis_url), socket_connect_timeout=2, socket_timeout=5
        )
        _cache = FeedCache(client)
        _sessions = SessionStore(database, client)
        _storage = Storage(self._settings)
        logger.info("worker resources open")

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        global _db
        loop_thread = get_event_loop_thread()
        if _db is not None and loop_thread is not None:
            loop_thread.run_coroutine(_db.close())
        _db = None
