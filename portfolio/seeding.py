"""Entry points that open a database, migrate it and seed it; shared by the CLI and the demo."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date

from sqlalchemy.orm import Session

from api.console.auth import NewStaff
from api.core.config import ConsolePolicy
from api.core.db import build_engine
from api.core.migrate import upgrade
from portfolio.demo import DemoLoanView, ensure_demo_portfolio
from portfolio.demo_staff import ensure_demo_staff


@contextlib.contextmanager
def _session_on(database_url: str) -> Iterator[Session]:
    engine = build_engine(database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def seed_demo(database_url: str, *, today: date, pepper: str) -> list[DemoLoanView]:
    """Migrate ``database_url`` and make sure the demo portfolio is in it (idempotent)."""
    upgrade(database_url)
    with _session_on(database_url) as session:
        views = ensure_demo_portfolio(session, today=today, pepper=pepper)
        session.commit()
    return views


def seed_demo_staff(
    database_url: str, *, password: str, policy: ConsolePolicy
) -> tuple[NewStaff, ...]:
    """The demo branches' console accounts, all signing in with ``password`` (after
    :func:`seed_demo`; idempotent). Raises WeakPassword."""
    with _session_on(database_url) as session:
        staff = ensure_demo_staff(session, password=password, policy=policy)
        session.commit()
    return staff
