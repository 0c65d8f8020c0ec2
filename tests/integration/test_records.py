"""Every typed statement's result columns are its record's fields, with compatible types.

PostgreSQL describes each named statement (prepared, never run), so a renamed or retyped column,
or a record field that no column fills, fails here, naming the statement, before any call meets
it. Together with mypy strict from the record to the protobuf message, this checks a value's
whole way from SQL to the wire.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import importlib
import pkgutil
import re
import types
import typing
from typing import Any

import psycopg
import pytest

import server.domain
from server import db as dbmod

# Every module that declares statements (importing them registers their Rows).
MODULES = [
    *(f"server.domain.{m.name}" for m in pkgutil.iter_modules(server.domain.__path__)),
    "server.sessions",
    "server.idempotency",
    "jobs.relay",
    "jobs.capabilities",
]
# PostgreSQL type name -> the Python types a field may declare for it.
COMPATIBLE: dict[str, tuple[type, ...]] = {
    "uuid": (str,),
    "text": (str,),
    "varchar": (str,),
    "bpchar": (str,),
    "int2": (int,),
    "int4": (int,),
    "int8": (int,),
    "float4": (float,),
    "float8": (float,),
    "bool": (bool,),
    "timestamptz": (dt.datetime,),
    "date": (dt.date,),
    "bytea": (bytes,),
    "jsonb": (dict,),
    "_uuid": (list,),
    "_text": (list,),
    "_int4": (list,),
    "numeric": (decimal.Decimal,),
    "interval": (dt.timedelta,),
}
_PARAM = re.compile(r"%\((\w+)\)s")


def _declared() -> list[dbmod.Rows[Any]]:
    for name in MODULES:
        importlib.import_module(name)
    return list(dbmod.statements())


def _base(hint: object) -> type:
    """The Python type a field holds, without None (an enum counts as its value type)."""
    if isinstance(hint, types.UnionType):
        hint = next(o for o in typing.get_args(hint) if o is not type(None))
    origin = typing.get_origin(hint) or hint
    assert isinstance(origin, type), hint
    if issubclass(origin, enum.StrEnum):
        return str
    if issubclass(origin, enum.IntEnum):
        return int
    return origin


def _describe(conn: psycopg.Connection[Any], sql: str) -> list[tuple[str, str]]:
    """(column name, type name) of the statement's result, from PostgreSQL's own description."""
    numbers: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

    text = _PARAM.sub(number, sql).replace("%%", "%")
    result = conn.pgconn.prepare(b"", text.encode())
    if result.error_message:
        raise AssertionError(result.error_message.decode())
    described = conn.pgconn.describe_prepared(b"")
    columns = []
    for i in range(described.nfields):
        name = (described.fname(i) or b"").decode()
        oid = described.ftype(i)
        info = conn.adapters.types.get(oid)
        if info is None:
            columns.append((name, str(oid)))
        else:  # the registry answers an array's oid with its element type
            columns.append((name, f"_{info.name}" if info.array_oid == oid else info.name))
    return columns


@pytest.fixture(scope="module")
def described(shared_database: str) -> dict[str, list[tuple[str, str]] | str]:
    """Each statement's columns, or why PostgreSQL could not prepare it."""
    queries = dbmod.load_queries()
    found: dict[str, list[tuple[str, str]] | str] = {}
    with psycopg.connect(shared_database, autocommit=True) as conn:
        for statement in _declared():
            try:
                found[statement.name] = _describe(conn, queries[statement.name].sql)
            except AssertionError as exc:
                found[statement.name] = str(exc)
    return found


def test_every_statement_names_a_query() -> None:
    queries = dbmod.load_queries()
    declared = _declared()
    assert len(declared) > 40
    assert [s for s in declared if s.name not in queries] == []


@pytest.mark.parametrize("statement", _declared(), ids=repr)
def test_columns_are_the_records_fields(
    statement: dbmod.Rows[Any], described: dict[str, list[tuple[str, str]] | str]
) -> None:
    columns = described[statement.name]
    assert not isinstance(columns, str), f"{statement}: PostgreSQL cannot prepare it: {columns}"
    fields = {f.name: f for f in dataclasses.fields(statement.record)}
    hints = typing.get_type_hints(statement.record)
    names = [name for name, _ in columns]
    assert len(set(names)) == len(names), f"{statement}: a column name repeats: {names}"
    unknown = [n for n in names if n not in fields]
    assert not unknown, f"{statement}: columns {unknown} are not fields of the record"
    unfilled = [
        f.name
        for f in fields.values()
        if f.name not in names
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    assert not unfilled, f"{statement}: fields {unfilled} have no column"
    for name, pg_type in columns:
        expected = COMPATIBLE.get(pg_type)
        assert expected is not None, f"{statement}: column {name} has unmapped type {pg_type}"
        held = _base(hints[name])
        assert issubclass(held, expected), (
            f"{statement}: column {name} is {pg_type}, the field says {hints[name]}"
        )


def test_a_renamed_column_is_caught(shared_database: str) -> None:
    """The checks bite: a record whose field has no column is reported by the description and
    refused by the row factory, naming the query."""

    @dataclasses.dataclass(frozen=True, slots=True)
    class Wrong:
        identifier: str

    with psycopg.connect(shared_database, autocommit=True) as conn:
        assert _describe(conn, "SELECT id FROM users WHERE id = %(user_id)s") == [("id", "uuid")]
        cursor = conn.cursor(row_factory=dbmod.record_row(Wrong, "wrong"))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"wrong: columns \['id'\] are not fields of Wrong"):
            cursor.execute("SELECT id FROM users LIMIT 0")
