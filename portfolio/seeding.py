"""Entry points that open a database, migrate it and seed it; shared by the CLI and the demo."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.core.migrate import upgrade
from portfolio.demo import DemoLoanView, ensure_demo_portfolio


def seed_demo(database_url: str, *, today: date, pepper: str) -> list[DemoLoanView]:
    """Migrate ``database_url`` and make sure the demo portfolio is in it (idempotent)."""
    upgrade(database_url)
    engine = build_engine(database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            views = ensure_demo_portfolio(session, today=today, pepper=pepper)
            session.commit()
        return views
    finally:
        engine.dispose()
