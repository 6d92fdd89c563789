"""The notifier's rows of the reliability matrix (F-1, F-2, F-4 .. F-8, L-5, K-3), on PostgreSQL
and Redis as in production: real ``kopa notify worker`` processes where a process must die or
lose its database, the real deliverer and gateways against the fake providers otherwise.

Sizes are smaller than the matrix's (a campaign of 30 rather than 50,000, a 429 storm of three
refusals rather than 30 s, 3 s leases rather than 30 s); each test says which. The fixtures are
the notifier tests' own (``tests/reliability/conftest.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from api.borrowers.models import Borrower, Channel, Consent
from api.branches.models import Officer, StaffRole
from api.core.db import build_engine
from api.ledger.models import ContactEvent
from api.outbox.models import DeadLetter, DeadLetterReason, OutboxMessage, OutboxStatus
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.fakes.common import Fault, FaultSpec
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp
from notifier.config import load_campaigns
from notifier.delivery import REJUDGE_AFTER, Deliverer
from notifier.jobs import DeliveryStats
from notifier.pacing import BOOKING_HORIZON, MARK_MARGIN_MAX, MARK_TICK
from notifier.planner import Planner
from notifier.ratelimit import Limits, RedisRateLimiter, limits_from_config
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound
from tests.notifier.worker_kills import Kill, KilledRun, run_with_kills
from tests.notifier.worker_processes import (
    open_rows,
    outbox_rows,
    plan_campaign,
    start_workers,
    stop_workers,
    wait_until,
    worker_config,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(600)]
AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # Tuesday 09:30 in Nairobi
TODAY = date(2026, 12, 1)


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """The notifier runs on PostgreSQL in production: ``bound`` joins a PostgreSQL test
    transaction here (not SQLite as well)."""
    return postgres_url


@pytest.fixture
async def shared_limiter(redis_url: str) -> Any:
    """The Redis limiter every worker shares in production, on keys of this test's own."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    config = load_campaigns()
    limits = limits_from_config(config.channels) | {
        "telegram": Limits(20, 1),
        "whatsapp": Limits(20, 1),
    }
    yield RedisRateLimiter(client, limits, prefix=f"kopa-test:{time.monotonic_ns()}")
    await client.aclose()


def _plan(bound: Bound, count: int, **channels: bool) -> list[Borrower]:
    br = f.branch(bound.session)
    people = [f.borrower(bound.session, br, **channels) for _ in range(count)]
    for person in people:
        f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()
    return people


def _outbox(bound: Bound) -> list[OutboxMessage]:
    bound.session.expire_all()
    return list(bound.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _deliverer(bound: Bound, gateways: dict[str, Any], limiter: Any, **kw: Any) -> Deliverer:
    return Deliverer(
        session_factory=bound.factory, gateways=gateways, worker_id="w", limiter=limiter, **kw
    )


# -- F-1, F-2: a worker killed at a controlled moment ----------------------------------------
@pytest.fixture(scope="module")
def killed_campaign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KilledRun, Any]]:
    """One campaign of 20 on three workers (3 s leases, 20/s) in a scratch database: the worker
    that commits the outcome of the 6th recipient's accepted send is killed before the commit
    (F-1); the one that marks the 14th recipient's send is killed before the call (F-2)."""
    import os
    import uuid

    from sqlalchemy.engine import make_url

    from api.core.migrate import upgrade

    base = os.environ.get("KOPA_TEST_DATABASE_URL")
    redis = os.environ.get("KOPA_TEST_REDIS_URL")
    if not base or not redis:
        pytest.skip("needs KOPA_TEST_DATABASE_URL and KOPA_TEST_REDIS_URL")
    name = f"kopa_rel_{uuid.uuid4().hex[:10]}"
    admin = build_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield run_with_kills(
            url, redis, tmp_path_factory.mktemp("kills"), [(5, "sent"), (13, "sending")], size=20
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_F1_killed_after_the_provider_accepted_before_the_commit_is_unknown_never_resent(
    killed_campaign: tuple[KilledRun, list[Kill]],
) -> None:
    """F-1: reclaimed after the lease as an unknown outcome, never sent a second time, and an
    attempt that counts against the caps (rule C-3: ``unknown`` is one of the counted states)."""
    from notifier.facts import ATTEMPTED

    run, [after_call, _] = killed_campaign
    row = run.rows[after_call.chat]
    assert run.requests[after_call.chat] == 1
    assert row.status == OutboxStatus.unknown and row.status in ATTEMPTED
    assert row.last_error == "lease expired while sending"
    assert row.attempts == 1


def test_F2_killed_before_the_call_is_delivered_exactly_once_after_the_lease(
    killed_campaign: tuple[KilledRun, list[Kill]],
) -> None:
    """F-2: delivered exactly once, within lease + heartbeat (3 s + 1 s here; 30 s + 10 s in
    production, the matrix's 60 s) plus the time a busy machine takes to poll (5 s)."""
    run, [_, before_call] = killed_campaign
    assert run.rows[before_call.chat].status == OutboxStatus.sent
    [arrival] = run.arrivals[before_call.chat]
    assert arrival - before_call.killed_at <= 3 + 1 + 5
    # And every other message that did not become unknown went exactly once.
    assert all(
        run.requests[chat] == 1 for chat, r in run.rows.items() if r.status == OutboxStatus.sent
    )


# -- F-4: the database goes away and comes back slow ------------------------------------------
def test_F4_worker_survives_terminated_connections_and_5_s_of_commit_latency(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """F-4 with one worker and a campaign of 40 at 20/s (12 s leases): mid-run every connection
    of the worker and of its judging process is terminated (``pg_terminate_backend`` on their
    application names, as a database restart does), later an exclusive lock holds every claim,
    mark and commit for 5 s. No message is lost, none goes twice, none is left unknown, and the
    worker is still running."""
    fake = FakeTelegram()
    config = worker_config(tmp_path, per_second=20, lease_seconds=12)
    with ServerThread(fake.app) as server:
        plan_campaign(fresh_pg, config, size=40)
        [worker] = start_workers(fresh_pg, server.url, config, redis_url, count=1)

        def accepted() -> int:
            return sum(1 for e in fake.state.query("sendMessage", None) if e["outcome"] == "ok")

        admin = build_engine(fresh_pg, isolation_level="AUTOCOMMIT")
        try:
            wait_until(lambda: accepted() >= 8, 150)
            with admin.connect() as conn:
                ended = conn.scalars(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                        " datname = current_database() AND application_name LIKE 'kopa-notify%w0'"
                    )
                ).all()
            assert len(ended) >= 2  # the worker's pool and its judging process's connection
            wait_until(lambda: accepted() >= 20, 60)
            locker = build_engine(fresh_pg)
            with locker.connect() as conn, conn.begin():
                conn.execute(text("LOCK TABLE outbox_message IN EXCLUSIVE MODE"))
                time.sleep(5.0)
            locker.dispose()
            wait_until(lambda: open_rows(fresh_pg) == 0, 90)
            time.sleep(0.5)
            assert worker.poll() is None  # it survived both
        finally:
            admin.dispose()
            stop_workers([worker])
        log = fake.state.query("sendMessage", None)

    rows = outbox_rows(fresh_pg)
    ok = [str(e["recipient"]) for e in log if e["outcome"] == "ok"]
    assert len(ok) == len(set(ok)) == 40
    assert {r.status for r in rows} == {OutboxStatus.sent}


# -- F-5 .. F-8: provider faults, in the deliverer --------------------------------------------
async def test_F5_read_timeout_after_delivery_is_unknown_never_resent_counted_and_reported(
    bound: Bound,
    fake_tg: tuple[FakeTelegram, ServerThread],
    telegram: TelegramGateway,
    shared_limiter: RedisRateLimiter,
) -> None:
    fake, _ = fake_tg
    br = f.branch(bound.session)
    person = f.borrower(bound.session, br)
    item = f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()
    chat = _outbox(bound)[0].recipient
    fake.state.faults.append(Fault(FaultSpec(kind="timeout", recipient=chat, times=1, delay=1.6)))

    first = await _deliverer(bound, {"telegram": telegram}, shared_limiter).run_once(now=AT)
    later = [
        await _deliverer(bound, {"telegram": telegram}, shared_limiter).run_once(
            now=AT + timedelta(minutes=m)
        )
        for m in (1, 30)
    ]
    # Two days later, under a policy of one message a week, the unknown attempt fills it.
    policy = load_campaigns().model_copy(deep=True)
    policy.defaults.caps.per_7_days = 1
    [replan] = (
        Planner(policy)
        .plan(bound.session, AT + timedelta(days=2), write=False, loan_ids=[item.id])
        .candidates
    )

    assert first.unknown == 1 and sum(s.claimed for s in later) == 0
    assert len(fake.state.query("sendMessage", chat)) == 1  # 0 automatic resends
    [row] = _outbox(bound)
    assert row.status == OutboxStatus.unknown
    assert (replan.status, replan.reason) == ("suppressed", "cap_7d")  # counted in the caps
    # Visible in the ops report: the ledger's decision for it.
    events = bound.session.scalars(
        select(ContactEvent.decision).where(ContactEvent.borrower_id == person.id)
    ).all()
    assert "unknown" in events


async def test_F6_502_retried_with_jittered_backoff_at_most_5_times_then_dead_letter_and_alert(
    bound: Bound,
    fake_tg: tuple[FakeTelegram, ServerThread],
    telegram: TelegramGateway,
    shared_limiter: RedisRateLimiter,
) -> None:
    """F-6: 502 on every try; retries spread by full jitter (base 5 s, doubling); after the 5th
    try a dead letter and the officer's alert, within 5 minutes of the first try."""
    fake, _ = fake_tg
    br = f.branch(bound.session)
    officer = Officer(
        branch_id=br.id,
        name="Officer Achieng",
        role=StaffRole.officer,
        channel="telegram",
        chat_id="555000333",
        locale="en",
    )
    bound.session.add(officer)
    bound.session.flush()
    person = f.borrower(bound.session, br)
    person.officer_id = officer.id
    f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()
    chat = _outbox(bound)[0].recipient
    fake.state.faults.append(Fault(FaultSpec(kind="server_error", recipient=chat, status=502)))

    when = AT
    gaps: list[float] = []
    for _ in range(5):
        await _deliverer(bound, {"telegram": telegram}, shared_limiter).run_once(now=when)
        row = _outbox(bound)[0]
        if row.status == OutboxStatus.retry:
            gaps.append((row.send_at - when).total_seconds())
            when = row.send_at
    alert = await _deliverer(bound, {"telegram": telegram}, shared_limiter).run_once(now=when)

    row = _outbox(bound)[0]
    assert (row.status, row.attempts) == (OutboxStatus.dead, 5)
    assert len(fake.state.query("sendMessage", chat)) == 5
    assert all(0 <= gap <= 5 * 2**n for n, gap in enumerate(gaps)) and len(gaps) == 4
    [letter] = bound.session.scalars(select(DeadLetter)).all()
    assert (letter.reason, letter.outbox_id, letter.halts_channel) == (
        DeadLetterReason.retries_exhausted,
        row.id,
        False,
    )
    assert letter.at - AT <= timedelta(minutes=5)
    assert alert.sent == 1 and len(fake.sent_texts("555000333")) == 1


async def test_F7_blocked_telegram_user_suppressed_no_retry_and_whatsapp_outside_window_template(
    bound: Bound,
    fake_tg: tuple[FakeTelegram, ServerThread],
    telegram: TelegramGateway,
    fake_wa: tuple[FakeWhatsApp, ServerThread],
    whatsapp: WhatsAppGateway,
    shared_limiter: RedisRateLimiter,
) -> None:
    tg_fake, _ = fake_tg
    wa_fake, _ = fake_wa
    br = f.branch(bound.session)
    blocked = f.borrower(bound.session, br)
    cold = f.borrower(bound.session, br, telegram=False, whatsapp=True, whatsapp_opt_in=True)
    for person in (blocked, cold):
        f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()
    tg_chat = next(r.recipient for r in _outbox(bound) if r.channel == "telegram")
    wa_id = cold.phone_e164.lstrip("+")
    tg_fake.state.faults.append(Fault(FaultSpec(kind="blocked", recipient=tg_chat)))
    # The first free-form try finds the window closed (131047).
    wa_fake.state.faults.append(Fault(FaultSpec(kind="outside_window", recipient=wa_id, times=1)))
    gateways = {"telegram": telegram, "whatsapp": whatsapp}

    for minute in (0, 1, 60):
        await _deliverer(bound, gateways, shared_limiter).run_once(
            now=AT + timedelta(minutes=minute)
        )

    rows = {r.channel: r for r in _outbox(bound)}
    assert rows["telegram"].status == OutboxStatus.failed
    assert len(tg_fake.state.query("sendMessage", tg_chat)) == 1  # no retry
    consent = bound.session.scalar(
        select(Consent).where(
            Consent.borrower_id == blocked.id, Consent.channel == Channel.telegram
        )
    )
    assert consent is not None and not consent.opted_in
    assert rows["whatsapp"].status == OutboxStatus.sent
    sent = [e["payload"] for e in wa_fake.state.query("messages", wa_id) if e["outcome"] == "ok"]
    assert [p["type"] for p in sent] == ["template"]  # no free-form text outside the window


async def test_F8_whatsapp_pair_rate_limit_backs_off_only_that_recipient(
    bound: Bound,
    fake_wa: tuple[FakeWhatsApp, ServerThread],
    whatsapp: WhatsAppGateway,
    shared_limiter: RedisRateLimiter,
) -> None:
    """F-8 with five recipients through the shared Redis limiter: the first meets 131056."""
    fake, _ = fake_wa
    people = _plan(bound, 5, telegram=False, whatsapp=True, whatsapp_opt_in=True)
    limited = _outbox(bound)[0].recipient
    fake.state.faults.append(Fault(FaultSpec(kind="pair_rate_limit", recipient=limited)))

    stats = DeliveryStats()
    for second in (0, 1, 2):
        stats.add(
            await _deliverer(bound, {"whatsapp": whatsapp}, shared_limiter).run_once(
                now=AT + timedelta(seconds=second)
            )
        )

    assert (stats.recipient_limited, stats.sent, stats.rate_limited) == (1, 4, 0)
    assert await shared_limiter.paused_for("whatsapp") == 0.0
    for person in people:
        chat = person.phone_e164.lstrip("+")
        assert len(fake.state.query("messages", chat)) == 1
    row = next(r for r in _outbox(bound) if r.recipient == limited)
    assert row.status == OutboxStatus.retry and row.send_at >= AT + timedelta(seconds=6)
    booking = await shared_limiter.reserve("whatsapp", [limited], lead=0.0, horizon=0.6)
    assert booking.delays == (None,)  # Redis holds that recipient back for every worker


# -- L-5: a 429 storm -------------------------------------------------------------------------
async def test_L5_429_storm_nothing_before_retry_after_then_drains_once(
    fresh_pg: str,
    fake_tg: tuple[FakeTelegram, ServerThread],
    telegram: TelegramGateway,
    shared_limiter: RedisRateLimiter,
) -> None:
    """L-5 smaller: three 429s with retry_after 2 s (the matrix: retry_after 5 for 30 s), two
    workers sharing the Redis limiter, a backlog of 24. No request within retry_after of a
    refusal (beyond those already marked when it came back), all delivered once, none outside
    the window. The two workers are two deliverers in this process, each with its own pool."""
    fake, _ = fake_tg
    engine = build_engine(fresh_pg)
    with Session(engine) as session:
        br = f.branch(session)
        for _ in range(24):
            f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=3))
        session.commit()
        assert Planner().plan(session, AT, write=True).inserted == 24
        session.commit()
    fake.state.faults.append(Fault(FaultSpec(kind="rate_limit", times=3, retry_after=2)))
    started = time.monotonic()

    def clock() -> datetime:
        return AT + timedelta(seconds=time.monotonic() - started)

    async def worker(name: str) -> DeliveryStats:
        deliverer = Deliverer(
            session_factory=sessionmaker(bind=engine, expire_on_commit=False),
            gateways={"telegram": telegram},
            worker_id=name,
            limiter=shared_limiter,
            clock=clock,
            prefetch=True,
        )
        total = DeliveryStats()
        try:
            while time.monotonic() - started < 60:
                stats = await deliverer.run_once(limit=12)
                total.add(stats)
                if stats.claimed == 0 and open_rows(fresh_pg) == 0:
                    break
                await asyncio.sleep(0.2)
        finally:
            deliverer.close()
        return total

    await asyncio.gather(worker("a"), worker("b"))
    rows = outbox_rows(fresh_pg)
    engine.dispose()

    log = fake.state.query("sendMessage", None)
    refusals = [e for e in log if e["outcome"] == "rate_limit"]
    assert len(refusals) == 3
    # Requests marked before a refusal came back may still arrive after it: a mark's margin
    # and tick, and a quarter of a second for a busy machine.
    in_flight = MARK_MARGIN_MAX + MARK_TICK + 0.25
    for refusal in refusals:
        start = float(refusal["at"])
        early = [e for e in log if start + in_flight < float(e["at"]) < start + 2.0]
        assert early == [], f"{len(early)} requests inside retry_after"
    delivered = [str(e["recipient"]) for e in log if e["outcome"] == "ok"]
    assert len(delivered) == len(set(delivered)) == 24
    assert {r.status for r in rows} == {OutboxStatus.sent}
    # 09:30 to 09:31 in Nairobi: inside the 08:00-19:00 window.
    assert all(r.sent_at is not None and r.sent_at < AT + timedelta(minutes=1) for r in rows)


# -- K-3: an opt-out while a batch is in flight ----------------------------------------------
async def test_K3_opt_out_committed_mid_batch_stops_the_borrowers_sends(
    bound: Bound,
    fake_tg: tuple[FakeTelegram, ServerThread],
    telegram: TelegramGateway,
    shared_limiter: RedisRateLimiter,
) -> None:
    """K-3: a borrower with five loans (five reminders, one a second to their chat) and ten
    others; after the borrower's first message arrives their opt-out is committed. No message
    whose verdict came after the commit reaches them: at most the one judged and booked before
    it, within REJUDGE_AFTER + the booking horizon + a mark (2.8 s); the rest are suppressed as
    ``opted_out``. (The matrix's strict 0 after the commit needs the opt-out write to withdraw
    rows already judged ``ready``: that write is the API's, issue 14's inbound side.)"""
    fake, _ = fake_tg
    br = f.branch(bound.session)
    quitter = f.borrower(bound.session, br)
    for days in (3, 4, 5, 6, 7):
        f.loan(bound.session, quitter, first_due=TODAY + timedelta(days=days))
    for _ in range(10):
        f.loan(bound.session, f.borrower(bound.session, br), first_due=TODAY + timedelta(days=3))
    config = load_campaigns().model_copy(deep=True)
    config.defaults.installment_steps = [-7, -6, -5, -4, -3]  # one step due today per loan
    Planner(config).plan(bound.session, AT, write=True)
    bound.session.commit()
    mine = [r for r in _outbox(bound) if r.borrower_id == quitter.id]
    chat = mine[0].recipient
    committed: list[float] = []

    async def opt_out_after_first_arrival() -> None:
        while not fake.state.query("sendMessage", chat):  # noqa: ASYNC110 - the fake's log
            await asyncio.sleep(0.01)
        with bound.factory() as session, session.begin():
            session.add(
                Consent(
                    borrower_id=quitter.id,
                    channel=Channel.telegram,
                    opted_in=False,
                    opted_out_at=AT,
                    source="chat",
                )
            )
        committed.append(time.time())

    started = time.monotonic()
    deliverer = _deliverer(
        bound,
        {"telegram": telegram},
        shared_limiter,
        config=config,
        clock=lambda: AT + timedelta(seconds=time.monotonic() - started),
    )
    await asyncio.gather(deliverer.run_once(), opt_out_after_first_arrival())

    arrivals = [float(e["at"]) for e in fake.state.query("sendMessage", chat)]
    bound_s = REJUDGE_AFTER + BOOKING_HORIZON + MARK_MARGIN_MAX + MARK_TICK
    assert len(mine) == 5 and committed
    assert all(at <= committed[0] + bound_s for at in arrivals)
    assert len(arrivals) < 5
    rest = [r for r in _outbox(bound) if r.borrower_id == quitter.id and r.sent_at is None]
    assert rest and all(
        (r.status, r.last_error) == (OutboxStatus.suppressed, "opted_out") for r in rest
    )
