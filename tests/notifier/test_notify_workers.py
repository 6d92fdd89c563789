"""Several worker processes on PostgreSQL against the fake Telegram server (rules R-2 .. R-7).

Each test gets a database of its own (its rows are committed by the workers), a campaign config
with short leases, and three real ``kopa notify worker`` subprocesses.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from api.borrowers.models import Consent
from api.core.db import build_engine
from api.outbox.models import OutboxStatus
from bot.channels.telegram import TelegramGateway
from bot.fakes.common import Fault, FaultSpec
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from notifier.config import CampaignConfig, load_campaigns
from notifier.delivery import Deliverer
from notifier.jobs import DeliveryStats
from notifier.planner import Planner
from notifier.ratelimit import LocalRateLimiter, Reservation, limits_from_config
from tests.notifier import notify_factory as f
from tests.notifier.worker_kills import run_with_kills
from tests.notifier.worker_processes import (
    connections_by_worker,
    noon_zone,
    open_rows,
    outbox_rows,
    plan_campaign,
    start_workers,
    stop_workers,
    wait_until,
    worker_config,
)

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


@pytest.mark.timeout(400)
def test_a_worker_killed_before_the_call_or_before_the_commit_loses_and_doubles_nothing(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """Two kills at controlled moments: one worker between the provider's acceptance of a
    message and the commit of its outcome, another before the call of a message (its mark
    held). Every message that did not become unknown is delivered exactly once."""
    run, [after_call, before_call] = run_with_kills(
        fresh_pg, redis_url, tmp_path, [(8, "sent"), (20, "sending")]
    )

    assert len(run.rows) == 30 and after_call.worker != before_call.worker
    # Accepted, then killed before the commit: unknown, counted, never sent again.
    assert run.rows[after_call.chat].status == OutboxStatus.unknown
    assert run.requests[after_call.chat] == 1
    # Killed before the call: it never left, and went exactly once after the lease.
    assert run.rows[before_call.chat].status == OutboxStatus.sent
    assert run.requests[before_call.chat] == 1
    for chat, row in run.rows.items():
        if row.status == OutboxStatus.unknown:
            # Only the killed workers' sends in flight at their kill: at most once each.
            assert row.claimed_by in {after_call.worker, before_call.worker}
            assert run.requests[chat] <= 1
        else:
            assert row.status == OutboxStatus.sent
            assert run.requests[chat] == 1, chat
    assert max(run.requests.values()) == 1


def test_a_blocked_chat_is_opted_out_by_workers_and_only_it(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    fake = FakeTelegram()
    config = worker_config(tmp_path, per_second=20)
    with ServerThread(fake.app) as server:
        recipients = plan_campaign(fresh_pg, config, size=12)
        blocked, slow = recipients[:2], recipients[2]
        for chat in blocked:
            fake.state.faults.append(Fault(FaultSpec(kind="blocked", recipient=chat)))
        fake.state.faults.append(Fault(FaultSpec(kind="timeout", recipient=slow, delay=1.5)))
        workers = start_workers(fresh_pg, server.url, config, redis_url)
        try:
            wait_until(lambda: open_rows(fresh_pg) == 0, 150)
        finally:
            stop_workers(workers)
        requests = Counter(str(e["recipient"]) for e in fake.state.query("sendMessage", None))

    rows = {r.recipient: r for r in outbox_rows(fresh_pg)}
    assert max(requests.values()) == 1
    for chat, row in rows.items():
        expected = (
            OutboxStatus.failed
            if chat in blocked
            else OutboxStatus.unknown
            if chat == slow
            else OutboxStatus.sent
        )
        assert row.status == expected
    engine = build_engine(fresh_pg)
    with Session(engine) as session:
        opted_out = session.scalars(select(Consent).where(Consent.opted_in.is_(False))).all()
    engine.dispose()
    assert len(opted_out) == 2


def test_a_429_storm_pauses_every_worker_until_retry_after(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    fake = FakeTelegram()
    config = worker_config(tmp_path, per_second=50)
    with ServerThread(fake.app) as server:
        plan_campaign(fresh_pg, config, size=24)
        fake.state.faults.append(Fault(FaultSpec(kind="rate_limit", times=3, retry_after=2)))
        workers = start_workers(fresh_pg, server.url, config, redis_url)
        try:
            wait_until(lambda: open_rows(fresh_pg) == 0, 90)
        finally:
            stop_workers(workers)
        log = [e for e in fake.state.query("sendMessage", None)]

    refusals = [e for e in log if e["outcome"] == "rate_limit"]
    assert len(refusals) == 3
    for refusal in refusals:
        start = float(refusal["at"])
        # Requests already in flight when the 429 was answered may land just after it.
        early = [e for e in log if start + 0.25 < float(e["at"]) < start + 2.0]
        assert early == [], f"{len(early)} requests inside retry_after"
    delivered = Counter(str(e["recipient"]) for e in log if e["outcome"] == "ok")
    assert len(delivered) == 24 and set(delivered.values()) == {1}
    assert {r.status for r in outbox_rows(fresh_pg)} == {OutboxStatus.sent}


def test_only_one_worker_plans_at_a_time(fresh_pg: str, tmp_path: Path) -> None:
    from notifier.worker import PLAN_LOCK, NotifierSettings, Worker

    config_path = worker_config(tmp_path, per_second=20)
    config = CampaignConfig.model_validate(yaml.safe_load(config_path.read_text()))
    engine = build_engine(fresh_pg)
    with Session(engine) as session:
        br = f.branch(session, country="ZZ", timezone=noon_zone())
        today = datetime.now(UTC).astimezone(ZoneInfo(br.timezone)).date()
        f.loan(session, f.borrower(session, br), first_due=today + timedelta(days=3))
        session.commit()
    worker = Worker(
        session_factory=sessionmaker(bind=engine),
        gateways={},
        limiter=LocalRateLimiter({}),
        settings=NotifierSettings(plan_every_seconds=1),
        worker_id="planner",
        config=config,
    )
    with engine.connect() as other:  # another worker, in the middle of its plan
        other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PLAN_LOCK})
        blocked = worker.plan_if_due(loop_time=0.0)
        other.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PLAN_LOCK})
        other.commit()
    planned = worker.plan_if_due(loop_time=10.0)
    again = worker.plan_if_due(loop_time=20.0)
    engine.dispose()

    assert (blocked, planned, again) == (0, 1, 0)


def test_idle_workers_hold_their_warm_pools_under_their_own_names(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """A worker opens its whole pool before its first poll (a campaign that comes due finds it
    warm), and an operator can tell in pg_stat_activity which worker holds which connection."""
    config = worker_config(tmp_path, per_second=20)
    per_worker = 2 + 2  # KOPA_NOTIFY_CONCURRENCY lanes, the marks' and planning's
    with ServerThread(FakeTelegram().app) as server:
        workers = start_workers(fresh_pg, server.url, config, redis_url)
        try:
            wait_until(lambda: len(connections_by_worker(fresh_pg)) == 3, 60)
            time.sleep(1.0)  # several idle polls: no connection is opened or dropped by them
            held = connections_by_worker(fresh_pg)
            judging = connections_by_worker(fresh_pg, "kopa-notify-judging")
        finally:
            stop_workers(workers)
    assert held == {f"kopa-notify w{n}": per_worker for n in range(3)}
    # Each worker's judging process (notifier.judging) is up and warm before it polls.
    assert judging == {f"kopa-notify-judging w{n}": 1 for n in range(3)}
    # ... and ends with its worker.
    wait_until(lambda: not connections_by_worker(fresh_pg, "kopa-notify-judging"), 10)


async def test_a_judging_process_that_dies_is_replaced(fresh_pg: str) -> None:
    """The pass running when it died fails (its rows come back after their lease); the next
    pass gets a new judging process, which gives way to its worker as the first did."""
    from concurrent.futures.process import BrokenProcessPool

    from notifier.judging import JudgingProcess

    judging = JudgingProcess(fresh_pg, "j", ["telegram"], niceness=10)
    stats = DeliveryStats()
    lower = min(19, os.nice(0) + 10)
    try:
        assert await judging.judge(10, None, stats) == (0, [])  # nothing is due
        assert await judging._call(os.nice, 0) == lower
        first = await judging._call(os.getpid)  # the judging process's pid, asked of it
        os.kill(first, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            await judging.judge(10, None, stats)
        assert await judging.judge(10, None, stats) == (0, [])
        assert await judging._call(os.getpid) != first
        assert await judging._call(os.nice, 0) == lower
    finally:
        judging.close()


class _NoRoomFor:
    """A shared limiter whose channel is fully booked by other workers for a while."""

    def __init__(self, inner: LocalRateLimiter, seconds: float) -> None:
        self._inner = inner
        self._until = time.monotonic() + seconds

    async def reserve(self, channel: str, recipients: Sequence[str], **kwargs: Any) -> Reservation:
        if time.monotonic() < self._until:
            return Reservation((None,) * len(recipients), retry_in=0.1)
        return await self._inner.reserve(channel, recipients, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_lane_kept_waiting_for_slots_keeps_the_lease_of_the_chunk_it_claimed_ahead(
    fresh_pg: str, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """A lane waiting for slots holds the chunk it is booking and the one it claimed ahead;
    both stay leased, or another worker takes the second over as expired rows."""
    at = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # Tuesday 09:30 in Nairobi
    engine = build_engine(fresh_pg)  # a real pool: prefetch runs two statements at once
    with Session(engine) as session:
        br = f.branch(session)
        for _ in range(6):
            f.loan(session, f.borrower(session, br), first_due=date(2026, 12, 4))
        session.commit()
        assert Planner().plan(session, at, write=True).inserted == 6
        session.commit()
    # Chunks of 3 (0.1 s at 30/s), leases of 1.5 s, and no free slot for 2.5 s.
    config = load_campaigns()
    config.channels["telegram"] = config.channels["telegram"].model_copy(
        update={"per_second": 30, "per_chat_per_second": 30}
    )
    config.delivery = config.delivery.model_copy(update={"lease_seconds": 1.5})
    started = time.monotonic()

    def worker(worker_id: str, limiter: Any) -> Deliverer:
        return Deliverer(
            session_factory=sessionmaker(bind=engine, expire_on_commit=False),
            gateways={"telegram": telegram},
            worker_id=worker_id,
            config=config,
            limiter=limiter,
            clock=lambda: at + timedelta(seconds=time.monotonic() - started),
            prefetch=True,
        )

    kept_waiting = worker(
        "waiting", _NoRoomFor(LocalRateLimiter(limits_from_config(config.channels)), 2.5)
    )
    other = worker("other", LocalRateLimiter(limits_from_config(config.channels)))

    async def other_worker_polls_later() -> DeliveryStats:
        await asyncio.sleep(2.0)  # past the first lease, before the slots free up
        return await other.run_once()

    try:
        waited, polled = await asyncio.gather(kept_waiting.run_once(), other_worker_polls_later())
    finally:
        kept_waiting.close()
        other.close()
    rows = outbox_rows(fresh_pg)
    engine.dispose()

    assert (waited.sent, waited.lost_lease, polled.claimed, polled.reclaimed) == (6, 0, 0, 0)
    assert {row.status for row in rows} == {OutboxStatus.sent}
    sent = [e["payload"]["chat_id"] for e in fake_tg[0].state.query("sendMessage", None)]
    assert len(sent) == len(set(sent)) == 6
