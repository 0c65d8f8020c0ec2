"""The database: pool, named SQL, transactions and the slow-query log.

SQL lives in `sql/*.sql`, one statement per `-- name: <name>` block, with psycopg's own
`%(param)s` placeholders (values are always bound, never formatted in). Queries are loaded once,
at start-up. Every execution goes through `Session._run`, which times it under its name (a
histogram, plus a warning log over SLOW_QUERY_SECONDS) and turns a broken database rule into
the HxError it stands for.

    async with db.transaction() as tx:          # one transaction, committed on clean exit
        row = await tx.one("accept_task", task_id=..., worker_id=...)
    value = await db.scalar("schema_version")   # a single statement in its own transaction
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import psycopg
from loguru import logger
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from server import errors, metrics
from server.config import Settings

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
# The transaction this task is inside, if any (see Database.transaction).
_active: ContextVar[tuple[Database, Session] | None] = ContextVar("hustle_tx", default=None)
_NAME = re.compile(r"^--\s*name:\s*([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str


def load_queries(folder: Path = SQL_DIR) -> Mapping[str, Query]:
    """Every named statement under `folder`; a duplicate or empty name is an error at start."""
    queries: dict[str, Query] = {}
    for path in sorted(folder.glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        starts = list(_NAME.finditer(text))
        head = text[: starts[0].start()] if starts else text
        if any(line.strip() and not line.lstrip().startswith("--") for line in head.splitlines()):
            raise ValueError(f"{path.name}: SQL before the first '-- name:' line")
        for i, match in enumerate(starts):
            name = match.group(1)
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            body = text[match.end() : end].strip()
            if not body:
                raise ValueError(f"{path.name}: query {name!r} is empty")
            if name in queries:
                raise ValueError(f"{path.name}: query {name!r} is defined twice")
            # The leading comment names the statement in pg_stat_activity and server logs.
            queries[name] = Query(name, f"/* {name} */ {body}")
    return MappingProxyType(queries)


def observe(name: str, started: float, slow_after: float) -> None:
    elapsed = time.perf_counter() - started
    metrics.DB_QUERY_SECONDS.labels(name).observe(elapsed)
    if elapsed >= slow_after:
        metrics.DB_SLOW_QUERIES.labels(name).inc()
        logger.bind(query=name, duration_ms=round(elapsed * 1000, 1)).warning("slow query")


AfterCommit = Callable[[], Awaitable[None]]


class Session:
    """Named statements on one connection (inside one transaction when from `transaction()`)."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        queries: Mapping[str, Query],
        slow_query_seconds: float,
        after_commit: list[AfterCommit] | None = None,
    ) -> None:
        self.conn = conn
        self._queries = queries
        self._slow_query_seconds = slow_query_seconds
        self._after_commit = after_commit if after_commit is not None else []

    def on_commit(self, effect: AfterCommit) -> None:
        """Run `effect` once the outermost transaction has committed (never if it rolls back):
        for what must not happen before the change is visible (cache invalidation)."""
        self._after_commit.append(effect)

    async def _run(self, name: str, params: Mapping[str, Any]) -> psycopg.AsyncCursor[DictRow]:
        query = self._queries[name]
        cursor = self.conn.cursor(row_factory=dict_row, binary=True)
        started = time.perf_counter()
        try:
            await cursor.execute(query.sql, params)
        except psycopg.Error as exc:
            mapped = errors.from_db_error(exc)
            if mapped is not None:
                raise mapped from exc
            raise
        finally:
            observe(name, started, self._slow_query_seconds)
        return cursor

    async def one(self, name: str, **params: Any) -> DictRow | None:
        """The first row, or None."""
        cursor = await self._run(name, params)
        return await cursor.fetchone()

    async def all(self, name: str, **params: Any) -> list[DictRow]:
        cursor = await self._run(name, params)
        return await cursor.fetchall()

    async def scalar(self, name: str, **params: Any) -> Any:
        """The first column of the first row, or None."""
        row = await self.one(name, **params)
        return None if row is None else next(iter(row.values()))

    async def execute(self, name: str, **params: Any) -> int:
        """Run a statement; the number of rows it touched."""
        cursor = await self._run(name, params)
        return cursor.rowcount


class Database:
    """The pool and the loaded queries; built once per process and passed down."""

    def __init__(
        self, pool: AsyncConnectionPool, queries: Mapping[str, Query], slow_query_seconds: float
    ) -> None:
        self.pool = pool
        self.queries = queries
        self.slow_query_seconds = slow_query_seconds

    @classmethod
    def from_settings(cls, settings: Settings, *, name: str = "hustle") -> Database:
        pool = AsyncConnectionPool(
            settings.database_conninfo,
            min_size=min(settings.db_pool_min_size, settings.db_pool_max_size),
            max_size=settings.db_pool_max_size,
            timeout=settings.db_connect_timeout_seconds,
            max_idle=settings.db_pool_max_idle_seconds,
            kwargs={
                # a lone statement is its own transaction (one round trip, not BEGIN/COMMIT
                # around it); `transaction()` opens explicit ones
                "autocommit": True,
                "connect_timeout": max(1, round(settings.db_connect_timeout_seconds)),
                "application_name": name,
                # short OLTP queries: compiling them with JIT costs more than it saves
                "options": "-c jit=off",
            },
            name=name,
            open=False,
        )
        return cls(pool, load_queries(), settings.slow_query_seconds)

    async def open(self, *, wait: bool = False) -> None:
        opening = self.pool.closed
        await self.pool.open(wait=wait)
        if opening:
            metrics.DB_POOL_MAX.inc(self.pool.max_size)

    async def close(self) -> None:
        if not self.pool.closed:
            metrics.DB_POOL_MAX.dec(self.pool.max_size)
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        metrics.DB_POOL_WAITING.inc()
        waiting = True
        try:
            async with self.pool.connection() as conn:
                metrics.DB_POOL_WAITING.dec()
                waiting = False
                metrics.DB_POOL_IN_USE.inc()
                try:
                    yield conn
                finally:
                    metrics.DB_POOL_IN_USE.dec()
        except psycopg.Error as exc:
            # Pool timeouts and lost connections surface here, outside any statement.
            mapped = errors.from_db_error(exc)
            if mapped is not None:
                raise mapped from exc
            raise
        finally:
            if waiting:
                metrics.DB_POOL_WAITING.dec()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """One transaction: committed when the block ends cleanly, rolled back on error.

        Inside another transaction of the same task (e.g. a domain function called within an
        idempotent call's transaction) it is a savepoint of that transaction, and its
        `on_commit` effects wait for the outer commit.
        """
        outer = _active.get()
        if outer is not None and outer[0] is self:
            conn, effects = outer[1].conn, outer[1]._after_commit
            async with conn.transaction():
                yield Session(conn, self.queries, self.slow_query_seconds, effects)
            return
        effects = []
        async with self.connection() as conn, conn.transaction():
            session = Session(conn, self.queries, self.slow_query_seconds, effects)
            token = _active.set((self, session))
            try:
                yield session
            finally:
                _active.reset(token)
        for effect in effects:
            try:
                await effect()
            except Exception as exc:  # the change is committed: report, do not undo the call
                logger.opt(exception=exc).warning("an after-commit effect failed")

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[Session]:
        """Where one statement runs: the task's open transaction (as a savepoint, as
        `transaction()` nests), or else a pooled connection on its own (autocommit)."""
        outer = _active.get()
        if outer is not None and outer[0] is self:
            async with self.transaction() as tx:
                yield tx
            return
        async with self.connection() as conn:
            yield Session(conn, self.queries, self.slow_query_seconds)

    async def one(self, name: str, **params: Any) -> DictRow | None:
        async with self._statement() as session:
            return await session.one(name, **params)

    async def all(self, name: str, **params: Any) -> list[DictRow]:
        async with self._statement() as session:
            return await session.all(name, **params)

    async def scalar(self, name: str, **params: Any) -> Any:
        async with self._statement() as session:
            return await session.scalar(name, **params)

    async def execute(self, name: str, **params: Any) -> int:
        async with self._statement() as session:
            return await session.execute(name, **params)
