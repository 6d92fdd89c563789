"""Write a synthetic portfolio into a database in one transaction, in chunks of borrowers."""

from __future__ import annotations

import time as clock
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import text

from api.core.db import build_engine
from api.core.migrate import upgrade
from portfolio.bulk import BulkWriter, Row
from portfolio.synthetic.generator import PortfolioGenerator
from portfolio.synthetic.tables import EXTERNAL_PREFIX, SHAPES, TABLE_ORDER

# An empty database and a large portfolio: index after loading (see BulkWriter.defer_indexes).
DEFER_INDEXES_FROM = 10_000


class AlreadySeeded(RuntimeError):
    """The database already holds a synthetic portfolio."""


@dataclass
class SeedReport:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def seed_portfolio(
    database_url: str,
    *,
    borrowers: int,
    seed: int,
    today: date,
    pepper: str,
    chunk: int = 2000,
    progress: Callable[[int], None] | None = None,
    migrate: bool = True,
    defer_indexes: bool | None = None,
) -> SeedReport:
    """Migrate ``database_url`` and write a synthetic portfolio of ``borrowers`` in one transaction.

    ``defer_indexes`` (default: for large portfolios) builds plain indexes after the load when
    the database holds no borrower yet.

    Raises:
        AlreadySeeded: the database already holds synthetic borrowers.
    """
    started = clock.perf_counter()
    if migrate:
        upgrade(database_url)
    engine = build_engine(database_url)
    report = SeedReport(counts=dict.fromkeys(TABLE_ORDER, 0))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA cache_size=-262144")
            elif conn.execute(
                text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar():
                # Skips per-row foreign-key triggers for this transaction only. Rows come
                # parents first from one generator, and the tests check every link.
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            existing = conn.execute(
                text("SELECT 1 FROM borrower WHERE external_id LIKE :p LIMIT 1"),
                {"p": f"{EXTERNAL_PREFIX}%"},
            ).first()
            if existing:
                raise AlreadySeeded("this database already holds a synthetic portfolio")
            writer = BulkWriter(conn)
            if (
                borrowers >= DEFER_INDEXES_FROM
                and not conn.execute(text("SELECT 1 FROM borrower LIMIT 1")).first()
            ):
                writer.defer_indexes(TABLE_ORDER)
            generator = PortfolioGenerator(
                writer=writer, borrowers=borrowers, seed=seed, today=today, pepper=pepper
            )

            def write(done: int, rows: dict[str, list[Row]]) -> None:
                for table in TABLE_ORDER:
                    report.counts[table] += writer.write(SHAPES[table], rows[table])
                if progress:
                    progress(done)

            # The driver writes one chunk while Python draws the next: both drivers release
            # the GIL while the database works, so the two overlap on a second core.
            pending: deque[Future[None]] = deque()
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-writer") as pool:
                for done, rows in generator.chunks(chunk):
                    pending.append(pool.submit(write, done, rows))
                    while len(pending) > 2:
                        pending.popleft().result()
                while pending:
                    pending.popleft().result()
            writer.finish()
    finally:
        engine.dispose()
    report.seconds = clock.perf_counter() - started
    return report
