"""Planning one instant for ``kopa seed``'s synthetic portfolio, then again at the same instant."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

PLAN_AT = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def bench_plan(url: str, borrowers: int) -> dict[str, Any]:
    from api.core.db import build_engine
    from notifier.planner import Planner
    from portfolio.synthetic.seed import seed_portfolio

    seeded = seed_portfolio(
        url, borrowers=borrowers, seed=11, today=PLAN_AT.date(), pepper="bench-pepper"
    )
    engine = build_engine(url)
    with engine.connect() as conn:
        loans = conn.execute(text("SELECT count(*) FROM loan")).scalar_one()
    started = time.perf_counter()
    with Session(engine) as session:
        result = Planner().plan(session, PLAN_AT, write=True)
        session.commit()
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    with Session(engine) as session:
        again = Planner().plan(session, PLAN_AT, write=True)
        session.commit()
    replan = time.perf_counter() - started
    engine.dispose()
    planned = sum(1 for c in result.candidates if c.status == "planned")
    return {
        "loans": int(loans),
        "seed_seconds": round(seeded.seconds, 1),
        "candidates": len(result.candidates),
        "planned": planned,
        "suppressed": len(result.candidates) - planned,
        "inserted": result.inserted,
        "seconds": round(seconds, 2),
        "loans_per_second": round(loans / seconds),
        "replan_inserted": again.inserted,
        "replan_seconds": round(replan, 2),
    }
