"""The services tests run on: what to do when one is missing, and scratch PostgreSQL databases.

With ``KOPA_REQUIRE_SERVICES=1`` (CI) a missing server is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.core.db import build_engine
from api.core.migrate import upgrade

REQUIRE_SERVICES = os.environ.get("KOPA_REQUIRE_SERVICES") == "1"


def service_unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (KOPA_REQUIRE_SERVICES=1: this must run here)")
    # The reason names what is missing (a URL to set, a package `make test` installs); CI sets
    # KOPA_REQUIRE_SERVICES=1, so a skip here never hides a test there.
    pytest.skip(f"{reason}; provide it to run these tests (README, 'make test')")


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """Create ``<prefix>_<random>`` on KOPA_TEST_DATABASE_URL, migrate it, drop it at the end."""
    base = os.environ.get("KOPA_TEST_DATABASE_URL")
    if not base:
        service_unavailable("KOPA_TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    assert base is not None
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = build_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
