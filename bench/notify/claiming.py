"""Claim latency over a large outbox backlog (PostgreSQL), and the query plan of the claim."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import sessionmaker

from bench.notify.host import fresh_postgres


def bench_claim(backlog: int, runnable: int, rounds: int) -> dict[str, Any]:
    from api.core.db import build_engine
    from bench.notify.backlog import claim_plans, load_backlog, plan_problems
    from notifier.outbox import claim

    with fresh_postgres() as url:
        now = datetime.now(UTC)
        started = time.perf_counter()
        load_backlog(url, backlog, runnable, now)
        load_seconds = time.perf_counter() - started
        engine = build_engine(url)
        factory = sessionmaker(bind=engine)
        latencies = []
        for n in range(rounds):
            with factory() as session, session.begin():
                t0 = time.perf_counter()
                ids = claim(
                    session, now=datetime.now(UTC), worker_id=f"c{n}", limit=100, lease_seconds=30
                )
                session.flush()
            latencies.append((time.perf_counter() - t0) * 1000)
            assert len(ids) == 100
        plans = claim_plans(engine)
        engine.dispose()
    latencies.sort()
    problems = plan_problems(plans["custom"])
    if plans["generic_plans"]:
        problems += [f"generic plan: {p}" for p in plan_problems(plans["generic"])]
    return {
        "backlog": backlog,
        "runnable": runnable,
        "load_seconds": round(load_seconds, 1),
        "rounds": rounds,
        "batch": 100,
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "uses_partial_index": not problems,
        "plan_problems": problems,
    }


CLAIM_P95_MS = 50.0  # matrix row L-4


def claim_misses(claim: dict[str, Any]) -> list[str]:
    """How the claim misses matrix row L-4 (partial index, no seq scan, p95 < 50 ms)."""
    misses = list(claim["plan_problems"])
    if claim["p95_ms"] >= CLAIM_P95_MS:
        misses.append(f"claim p95 {claim['p95_ms']} ms >= {CLAIM_P95_MS} ms")
    return misses
