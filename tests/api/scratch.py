"""A migrated PostgreSQL database of a test module's own, for tests whose sessions commit."""

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


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """Create ``<prefix>_<random>`` on KOPA_TEST_DATABASE_URL, migrate it, drop it at the end."""
    base = os.environ.get("KOPA_TEST_DATABASE_URL")
    if not base:
        if os.environ.get("KOPA_REQUIRE_SERVICES") == "1":
            pytest.fail("KOPA_TEST_DATABASE_URL is required here")
        pytest.skip("KOPA_TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
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
