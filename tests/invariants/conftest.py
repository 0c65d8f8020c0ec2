"""Each invariant test gets its own migrated database and an autocommit connection to it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.invariants.world import World


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[object]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def world(conn: psycopg.Connection[object]) -> World:
    return World(conn)
