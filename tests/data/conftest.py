"""Fresh, migrated databases for seed and import tests.

Seeding and importing commit, so these tests never share the per-process database of the other
areas: each test gets an empty database of its own (a file on SQLite, a scratch database on the
``KOPA_TEST_DATABASE_URL`` server, dropped afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.core.db import build_engine
from api.core.migrate import upgrade

REQUIRE_SERVICES = os.environ.get("KOPA_REQUIRE_SERVICES") == "1"


def _new_postgres_database() -> tuple[str, Callable[[], None]]:
    base = os.environ.get("KOPA_TEST_DATABASE_URL")
    if not base:
        if REQUIRE_SERVICES:
            pytest.fail("KOPA_TEST_DATABASE_URL is not set (KOPA_REQUIRE_SERVICES=1)")
        pytest.skip("KOPA_TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    name = f"kopa_data_{uuid.uuid4().hex[:10]}"
    admin = build_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(base).set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Make empty, migrated databases: ``new_database("sqlite" | "postgres")``."""
    cleanups: list[Callable[[], None]] = []
    counter = iter(range(1000))

    def make(kind: str) -> str:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / f'kopa-{next(counter)}.db'}"
        else:
            url, drop = _new_postgres_database()
            cleanups.append(drop)
        upgrade(url)
        return url

    yield make
    for cleanup in cleanups:
        cleanup()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_db_url(request: pytest.FixtureRequest, new_database: Callable[[str], str]) -> str:
    """One empty, migrated database, on SQLite and on PostgreSQL."""
    return new_database(request.param)
