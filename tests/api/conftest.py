"""Fixtures shared by the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the test's database for arranging rows and checking them (autocommit)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection
