"""The database: pool, named SQL, transactions and the slow-query log.

SQL lives in `sql/*.sql`, one statement per `-- name: <name>` block, with psycopg's own
`%(param)s` placeholders (values are always bound, never formatted in). Queries are loaded once,
at start-up. Every execution goes through `Session._run`, which times it under its name (a
histogram, plus a warning log over SLOW_QUERY_SECONDS) and turns a broken database rule into
the HxError it stands for.

    TASK = Rows("task_card", Task)              # a statement whose rows become Task records

    async with db.transaction() as tx:          # one transaction, committed on clean exit
        task = await tx.one(TASK, task_id=...)  # Task | None
    version = await db.scalar("schema_version", str)   # one statement in its own transaction

Rows become records at this boundary: `Rows(name, Record)` names a statement and the frozen
dataclass its rows are built as (`record_row`: columns must be the record's fields, by name;
text columns of enum-typed fields become the enum). Every `Rows` is registered, so that a test
can check each statement's columns and types against its record without running it
(tests/integration/test_records.py). Ids (uuid columns) arrive as `str`, the form every layer
above uses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import re
import select
import time
import types
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import psycopg
from loguru import logger
from psycopg.adapt import Buffer, Loader
from psycopg.rows import RowMaker, tuple_row
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from server import errors, metrics
from server.config import Settings

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
# The transaction this task is inside, if any (see Database.transaction).
_active: ContextVar[tuple[Database, Session] | None] = ContextVar("hustle_tx", default=None)
_NAME = re.compile(r"^--\s*name:\s*([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    has_default: bool
    convert: Callable[[Any], Any] | None  # text -> enum member, for enum-typed fields


def _converter(hint: object) -> Callable[[Any], Any] | None:
    """How a column value becomes a field's value: only enums need it (text -> member)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    kinds = [o for o in options if isinstance(o, type) and issubclass(o, enum.Enum)]
    if not kinds:
        return None
    kind = kinds[0]
    if type(None) in options:
        return lambda value: None if value is None else kind(value)
    return kind


_FIELDS: dict[type, tuple[_Field, ...]] = {}


def record_fields(record: type) -> tuple[_Field, ...]:
    """A record's fields as the row factory fills them (computed once per record type)."""
    found = _FIELDS.get(record)
    if found is None:
        if not dataclasses.is_dataclass(record):
            raise TypeError(f"{record.__name__} is not a dataclass")
        hints = typing.get_type_hints(record)
        found = _FIELDS[record] = tuple(
            _Field(
                f.name,
                f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING,
                _converter(hints[f.name]),
            )
            for f in dataclasses.fields(record)
        )
    return found


def record_row(record: type[R], query: str = "") -> Callable[[Any], RowMaker[R]]:
    """A psycopg row factory that builds `record` from each row, matching columns to fields by
    name. A column the record lacks, or a field without a default that no column fills, is an
    error naming the query (the test of every statement finds these before a call does)."""
    fields = record_fields(record)

    def factory(cursor: Any) -> RowMaker[R]:
        names = [column.name for column in cursor.description or ()]
        position = {name: i for i, name in enumerate(names)}
        extra = set(names) - {f.name for f in fields}
        missing = [f.name for f in fields if f.name not in position and not f.has_default]
        if extra or missing:
            raise TypeError(
                f"{query or 'a query'}: columns {sorted(extra)} are not fields of "
                f"{record.__name__}, fields {missing} have no column"
            )
        plan = [(f.name, position[f.name], f.convert) for f in fields if f.name in position]
        if [f.name for f in fields[: len(names)]] == names:
            # the columns are the record's leading fields, in order (the rest take defaults)
            converts = [(i, c) for i, (_, _, c) in enumerate(plan) if c is not None]

            def positional(values: Sequence[Any]) -> R:
                if converts:
                    row = list(values)
                    for i, convert in converts:
                        row[i] = convert(row[i])
                    return record(*row)
                return record(*values)

            return positional

        def by_name(values: Sequence[Any]) -> R:
            return record(
                **{
                    name: (convert(values[i]) if convert is not None else values[i])
                    for name, i, convert in plan
                }
            )

        return by_name

    return factory


_STATEMENTS: list[Rows[Any]] = []


class Rows(Generic[R]):
    """A named statement (sql/*.sql) whose rows are built as `record`. Declared once, at module
    level, by the domain module that runs it."""

    __slots__ = ("factory", "name", "record")

    def __init__(self, name: str, record: type[R]) -> None:
        self.name = name
        self.record = record
        self.factory = record_row(record, name)
        _STATEMENTS.append(self)

    def __repr__(self) -> str:
        return f"Rows({self.name!r}, {self.record.__name__})"


def statements() -> tuple[Rows[Any], ...]:
    """Every typed statement declared so far (import the modules that declare them first)."""
    return tuple(_STATEMENTS)


class UuidStrLoader(Loader):
    """uuid columns as `str`: the form ids take in every layer above (text format)."""

    def load(self, data: Buffer) -> str:
        return bytes(data).decode()


class UuidStrBinaryLoader(Loader):
    """uuid columns as `str` (binary format)."""

    format = psycopg.pq.Format.BINARY

    def load(self, data: Buffer) -> str:
        return str(uuid.UUID(bytes=bytes(data)))


def use_str_ids(conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]) -> None:
    """Load uuid columns of this connection's results as `str`."""
    conn.adapters.register_loader("uuid", UuidStrLoader)
    conn.adapters.register_loader("uuid", UuidStrBinaryLoader)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    use_str_ids(conn)


class _PromptReconnect(AttemptWithBackoff):
    """Reconnection attempts 0.2 s apart, growing to at most 1 s (psycopg_pool's own start at
    1 s and double each time, so after an outage of a few seconds the pool would wait 4-8 s
    more before trying again, and every call meanwhile waits for it). An attempt against a
    database that is down costs one refused TCP connection."""

    INITIAL_DELAY = 0.2
    DELAY_BACKOFF = 1.5
    MAX_DELAY = 1.0

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.MAX_DELAY)


class _Pool(AsyncConnectionPool):
    """psycopg's pool, reconnecting promptly once the database is back (see _PromptReconnect).

    `_add_connection` is the pool's private retry loop (psycopg-pool 3.3): each failed attempt
    reschedules itself with the attempt it is given, so giving it ours is all it takes.
    tests/reliability/test_database_restart.py fails if a new version stops honouring it."""

    async def _add_connection(
        self, attempt: AttemptWithBackoff | None, growing: bool = False
    ) -> None:
        if attempt is None:
            attempt = _PromptReconnect(timeout=self.reconnect_timeout)
        await super()._add_connection(attempt, growing)


def _suspect(conn: psycopg.AsyncConnection[Any]) -> bool:
    """True when an idle connection may be dead: it is marked bad, or its socket has something
    to read (an idle, healthy connection has nothing: the server speaks when asked)."""
    pgconn = conn.pgconn
    if pgconn.status != psycopg.pq.ConnStatus.OK:
        return True
    try:
        fd = pgconn.socket
    except psycopg.OperationalError:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


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


POOL_SAMPLE_SECONDS = 1.0
_QUERY_SECONDS: dict[str, Any] = {}  # each statement's histogram child, looked up once


def observe(name: str, started: float, slow_after: float) -> None:
    elapsed = time.perf_counter() - started
    histogram = _QUERY_SECONDS.get(name)
    if histogram is None:
        histogram = _QUERY_SECONDS[name] = metrics.DB_QUERY_SECONDS.labels(name)
    histogram.observe(elapsed)
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

    async def _run(
        self, name: str, params: Mapping[str, Any], factory: Callable[[Any], RowMaker[Any]]
    ) -> psycopg.AsyncCursor[Any]:
        query = self._queries[name]
        cursor = self.conn.cursor(row_factory=factory, binary=True)
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

    async def one(self, statement: Rows[R], **params: Any) -> R | None:
        """The first row as a record, or None."""
        cursor = await self._run(statement.name, params, statement.factory)
        row: R | None = await cursor.fetchone()
        return row

    async def all(self, statement: Rows[R], **params: Any) -> list[R]:
        cursor = await self._run(statement.name, params, statement.factory)
        rows: list[R] = await cursor.fetchall()
        return rows

    async def scalar(self, name: str, kind: type[T], /, **params: Any) -> T | None:
        """The first column of the first row (checked to be a `kind`), or None."""
        cursor = await self._run(name, params, tuple_row)
        row = await cursor.fetchone()
        if row is None or row[0] is None:
            return None
        value = row[0]
        if not isinstance(value, kind):
            raise TypeError(f"{name}: {type(value).__name__} where {kind.__name__} was expected")
        return value

    async def execute(self, name: str, **params: Any) -> int:
        """Run a statement; the number of rows it touched."""
        cursor = await self._run(name, params, tuple_row)
        return cursor.rowcount


class Database:
    """The pool and the loaded queries; built once per process and passed down."""

    def __init__(
        self, pool: AsyncConnectionPool, queries: Mapping[str, Query], slow_query_seconds: float
    ) -> None:
        self.pool = pool
        self.queries = queries
        self.slow_query_seconds = slow_query_seconds
        self._checking: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, name: str = "hustle") -> Database:
        pool = _Pool(
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
            configure=_configure,
            name=name,
            open=False,
        )
        return cls(pool, load_queries(), settings.slow_query_seconds)

    async def open(self, *, wait: bool = False) -> None:
        opening = self.pool.closed
        await self.pool.open(wait=wait)
        if opening:
            metrics.DB_POOL_MAX.inc(self.pool.max_size)
            self._sampler = asyncio.create_task(self._sample_pool(), name=f"{self.pool.name}-stats")

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
            await asyncio.gather(self._checking, return_exceptions=True)
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
            self._sampler = None
        if not self.pool.closed:
            metrics.DB_POOL_MAX.dec(self.pool.max_size)
            metrics.DB_POOL_IN_USE.set(0)
            metrics.DB_POOL_WAITING.set(0)
        await self.pool.close()

    def observe_pool(self) -> None:
        """The pool gauges from the pool's own counters (connections in use, callers waiting)."""
        stats = self.pool.get_stats()
        metrics.DB_POOL_IN_USE.set(stats.get("pool_size", 0) - stats.get("pool_available", 0))
        metrics.DB_POOL_WAITING.set(stats.get("requests_waiting", 0))

    async def _sample_pool(self) -> None:
        """Read the pool's counters now and then: a gauge write per checkout cost more than
        the checkout itself, and a scrape every 15 s sees no finer grain."""
        while True:
            self.observe_pool()
            await asyncio.sleep(POOL_SAMPLE_SECONDS)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            conn = await self._checkout()
            try:
                async with conn:  # as the pool's own connection(): rollback on error
                    yield conn
            finally:
                await self.pool.putconn(conn)
        except Exception as exc:
            if conn is not None and conn.pgconn.status != psycopg.pq.ConnStatus.OK:
                self._check_idle_connections()  # it died in use: a restart cut the others too
            if isinstance(exc, psycopg.Error):
                # Pool timeouts and lost connections surface here, outside any statement.
                mapped = errors.from_db_error(exc)
                if mapped is not None:
                    raise mapped from exc
            raise

    async def _checkout(self) -> psycopg.AsyncConnection[Any]:
        """A pooled connection that is not known to be dead.

        After a database restart every idle connection is dead, and the pool would hand each
        one out to fail a call. The server closes a connection by sending it an error and EOF,
        so a dead idle connection has bytes to read where a live one has none: a zero-timeout
        poll of its socket (no round trip) finds the suspects, an empty query settles it, and
        a dead one is closed (the pool replaces it) while the rest of the pool is checked in
        the background. Live connections cost one poll(2).
        """
        deadline = time.monotonic() + self.pool.timeout
        while True:
            conn = await self.pool.getconn(timeout=max(0.001, deadline - time.monotonic()))
            if not _suspect(conn):
                return conn
            try:
                await conn.execute("")
            except psycopg.Error:
                metrics.DB_POOL_DISCARDED.inc()
                await conn.close()
                await self.pool.putconn(conn)  # closed: discarded, and a new one is opened
                self._check_idle_connections()
                continue
            return conn

    def _check_idle_connections(self) -> None:
        """Check (and replace) the pool's idle connections in the background, once at a time."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self.pool.check(), name="db-pool-check")

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

    async def after_commit(self, effect: AfterCommit) -> None:
        """Run `effect` once what this task just wrote is committed: now, or, inside a
        transaction, when the outermost one commits."""
        outer = _active.get()
        if outer is not None and outer[0] is self:
            outer[1].on_commit(effect)
        else:
            await effect()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Session]:
        """A read-only transaction whose statements all see one snapshot (REPEATABLE READ)."""
        async with self.connection() as conn:
            await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
            await conn.set_read_only(True)
            try:
                async with conn.transaction():
                    yield Session(conn, self.queries, self.slow_query_seconds)
            finally:
                await conn.set_isolation_level(None)
                await conn.set_read_only(None)

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

    async def one(self, statement: Rows[R], **params: Any) -> R | None:
        async with self._statement() as session:
            return await session.one(statement, **params)

    async def all(self, statement: Rows[R], **params: Any) -> list[R]:
        async with self._statement() as session:
            return await session.all(statement, **params)

    async def scalar(self, name: str, kind: type[T], /, **params: Any) -> T | None:
        async with self._statement() as session:
            return await session.scalar(name, kind, **params)

    async def execute(self, name: str, **params: Any) -> int:
        async with self._statement() as session:
            return await session.execute(name, **params)
