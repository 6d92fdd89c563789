"""On SQLite, the loan API shares its database file with other writers (the gateways' durable
inbox, the notifier): a use case that reads, then writes, must wait for another process's
write instead of failing with "database is locked" (the borrower would hear "try again").

The other writer is a plain ``sqlite3`` connection, as another process would hold one. The
interleaving is forced: the API's transaction has read before the other writer starts, and
writes only after the other writer has tried to commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api.core import db
from api.core.migrate import upgrade
from tests.cli.app_caches import clear_app_caches


@pytest.fixture
def api_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "shared.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE other_writer (note TEXT)")
        setup.execute("CREATE TABLE api_writes (note TEXT)")
    monkeypatch.setenv("KOPA_DATABASE_URL", url)
    clear_app_caches()
    yield path
    clear_app_caches()


def test_a_read_then_write_of_the_api_waits_for_another_process_instead_of_failing(
    api_database: Path,
) -> None:
    api_has_read = threading.Event()
    other_done = threading.Event()
    other_errors: list[str] = []

    def other_process() -> None:
        api_has_read.wait(5)
        other = sqlite3.connect(api_database, timeout=10, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO other_writer VALUES ('inbox row')")
            other.execute("COMMIT")
        except sqlite3.Error as exc:
            other_errors.append(str(exc))
        finally:
            other.close()
            other_done.set()

    writer = threading.Thread(target=other_process)
    writer.start()
    with db.get_sessionmaker()() as session:
        session.execute(text("SELECT count(*) FROM other_writer")).scalar_one()
        api_has_read.set()
        # The other process either waits for this transaction (it holds the write lock) or
        # commits now, in between this read and the write below.
        other_done.wait(0.5)
        session.execute(text("INSERT INTO api_writes VALUES ('alias registered')"))
        session.commit()
    writer.join(15)

    assert not other_errors
    with sqlite3.connect(api_database) as check:
        assert check.execute("SELECT count(*) FROM api_writes").fetchone() == (1,)
        assert check.execute("SELECT count(*) FROM other_writer").fetchone() == (1,)
