"""Several worker processes on PostgreSQL against the fake Telegram server (rules R-2 .. R-7).

Each test gets a database of its own (its rows are committed by the workers), a campaign config
with short leases, and three real ``kopa notify worker`` subprocesses.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from api.borrowers.models import Consent
from api.core.db import build_engine
from api.outbox.models import OutboxMessage, OutboxStatus
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
from tests.notifier.conftest import TG_TOKEN

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]
OPEN = (
    OutboxStatus.pending,
    OutboxStatus.retry,
    OutboxStatus.claimed,
    OutboxStatus.ready,
    OutboxStatus.sending,
)


def _noon_zone() -> str:
    """A fixed-offset zone where it is now about midday, so the send window is open."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def _config(tmp_path: Path, per_second: float, lease_seconds: float = 3) -> Path:
    data = {
        "version": 99,
        # No closed days: the test must not depend on the weekday or a holiday.
        "defaults": {"closed_weekdays": [], "installment_steps": [-3]},
        "channels": {
            "telegram": {"per_second": per_second, "per_chat_per_second": 1},
            "whatsapp": {"per_second": per_second, "per_chat_per_second": 1},
        },
        "delivery": {
            "lease_seconds": lease_seconds,
            "backoff_base_seconds": 0.2,
            "max_attempts": 5,
        },
    }
    path = tmp_path / "campaigns.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _campaign(url: str, config: Path, size: int) -> list[str]:
    """``size`` borrowers whose installment is due in three days, planned now."""
    engine = build_engine(url)
    with Session(engine) as session:
        br = f.branch(session, country="ZZ", timezone=_noon_zone())
        today = datetime.now(UTC).astimezone(_zone(br.timezone)).date()
        for _ in range(size):
            f.loan(session, f.borrower(session, br), first_due=today + timedelta(days=3))
        session.commit()
        cfg = CampaignConfig.model_validate(yaml.safe_load(config.read_text()))
        result = Planner(cfg).plan(session, datetime.now(UTC), write=True)
        session.commit()
    engine.dispose()
    assert result.inserted == size
    return sorted(c.recipient for c in result.candidates)


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _start_workers(
    url: str, fake_url: str, config: Path, redis: str | None, count: int = 3
) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "KOPA_ENV": "test",
        "KOPA_DATABASE_URL": url,
        "KOPA_TELEGRAM__TOKEN": TG_TOKEN,
        "KOPA_TELEGRAM__API_BASE_URL": f"{fake_url}/bot",
        "KOPA_TELEGRAM__READ_TIMEOUT": "1.0",
        "KOPA_WHATSAPP__ENABLED": "false",
        "KOPA_NOTIFY_CAMPAIGNS": str(config),
        "KOPA_NOTIFY_PLAN_EVERY_SECONDS": "0",
        "KOPA_NOTIFY_POLL_SECONDS": "0.2",
        "KOPA_NOTIFY_BATCH_SIZE": "6",
        "KOPA_NOTIFY_CONCURRENCY": "2",
        "KOPA_NOTIFY_REDIS_PREFIX": f"kopa-test:{uuid.uuid4().hex}",
    }
    env.pop("KOPA_REDIS_URL", None)
    if redis:
        env["KOPA_REDIS_URL"] = redis
    return [
        subprocess.Popen(
            [sys.executable, "-m", "kopa.cli", "notify", "worker", "--worker-id", f"w{n}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(count)
    ]


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _open_rows(url: str) -> int:
    engine = build_engine(url)
    with Session(engine) as session:
        count = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status.in_(OPEN))
        )
    engine.dispose()
    return int(count or 0)


def _wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _rows(url: str) -> list[OutboxMessage]:
    engine = build_engine(url)
    with Session(engine) as session:
        rows = list(session.scalars(select(OutboxMessage)))
        session.expunge_all()
    engine.dispose()
    return rows


# A trigger that makes the update of one chat's row into one status wait for an advisory lock
# the test holds: the worker that makes it is caught at a known moment, to be killed there.
# Every hold is armed before the workers start (a campaign may reach its row at any time).
_HOLD_LOCK = 0x686F6C64  # "hold"; hold n waits on _HOLD_LOCK + n
_HOLD_FUNCTION = """
CREATE OR REPLACE FUNCTION kopa_test_hold() RETURNS trigger AS $$
BEGIN
    IF NEW.recipient = TG_ARGV[0] AND NEW.status = TG_ARGV[1] AND OLD.status <> NEW.status THEN
        PERFORM pg_advisory_xact_lock(TG_ARGV[2]::bigint);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


@dataclass
class Kill:
    """Where a worker is killed: ``sent`` holds the commit of a send the provider accepted
    (after the call, before the commit); ``sending`` holds the mark that lets a request leave
    (before the call)."""

    chat: str
    moment: str  # "sent" | "sending"
    worker: str = ""  # the worker caught there and killed
    killed_at: float = 0.0  # time.time() of the kill


def _arm(admin: Any, kills: Sequence[Kill]) -> None:
    admin.execute(text(_HOLD_FUNCTION))
    for n, kill in enumerate(kills):
        key = _HOLD_LOCK + n
        admin.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        admin.execute(
            text(
                f"CREATE TRIGGER kopa_test_hold_{n} BEFORE UPDATE ON outbox_message FOR EACH ROW "
                f"EXECUTE FUNCTION kopa_test_hold('{kill.chat}', '{kill.moment}', '{key}')"
            )
        )


def _disarm(admin: Any, n: int) -> None:
    # Unlock first: dropping the trigger waits for the sessions the lock holds up.
    admin.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _HOLD_LOCK + n})
    admin.execute(text(f"DROP TRIGGER IF EXISTS kopa_test_hold_{n} ON outbox_message"))


def _next_held(admin: Any, armed: set[int], timeout: float) -> tuple[int, str]:
    """The first of the ``armed`` holds a worker waits on, and that worker's id (holds are
    reached in whatever order the campaign goes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = admin.execute(
            text(
                "SELECT l.objid, a.application_name FROM pg_locks l"
                " JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'"
                " AND NOT l.granted AND a.datname = current_database()"
            )
        ).all()
        for objid, name in waiting:
            n = int(objid) - (_HOLD_LOCK & 0xFFFFFFFF)
            if n in armed:
                return n, str(name).rsplit(" ", 1)[-1]
        time.sleep(0.02)
    statuses = admin.execute(
        text("SELECT status, count(*) FROM outbox_message GROUP BY status")
    ).all()
    raise AssertionError(f"no worker reached holds {sorted(armed)}: {dict(statuses)}")


def _kill_next(admin: Any, workers: Sequence[subprocess.Popen[bytes]], kills: list[Kill]) -> None:
    """SIGKILL the worker caught at the next hold reached, there; end its database sessions
    (its held transaction rolls back) and let the others go on."""
    armed = {n for n, kill in enumerate(kills) if not kill.worker}
    n, worker = _next_held(admin, armed, 240)  # three workers starting on a busy machine
    kill = kills[n]
    try:
        kill.worker = worker
        proc = workers[int(kill.worker.removeprefix("w"))]
        # The whole worker dies at once, as with its host: its judging process too (left
        # alone it would notice within 0.5 s, and meanwhile try its commit again).
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        for child in children:
            os.kill(int(child), signal.SIGKILL)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
        kill.killed_at = time.time()
        # A killed client does not end a session waiting on a lock: end its sessions (the
        # worker's and its judging process's) as a crashed host's would end.
        admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name IN (:a, :b)"
            ),
            {"a": f"kopa-notify {kill.worker}", "b": f"kopa-notify-judging {kill.worker}"},
        )
    finally:
        _disarm(admin, n)


@dataclass
class KilledRun:
    rows: dict[str, OutboxMessage]  # by recipient
    requests: Counter[str]  # accepted sendMessage requests per recipient
    arrivals: dict[str, list[float]]  # when each recipient's accepted requests came


def run_with_kills(
    url: str, redis: str, tmp_path: Path, kills: Sequence[tuple[int, str]], size: int = 30
) -> tuple[KilledRun, list[Kill]]:
    """A campaign of ``size`` messages on three workers; for each (index, moment) of ``kills``
    the worker that reaches ``moment`` for the index-th recipient is killed there, in turn."""
    fake = FakeTelegram()
    config = _config(tmp_path, per_second=20)
    with ServerThread(fake.app) as server:
        recipients = _campaign(url, config, size=size)
        caught = [Kill(recipients[index], moment) for index, moment in kills]
        engine = build_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as admin:
            _arm(admin, caught)
            workers = _start_workers(url, server.url, config, redis)
            try:
                for _ in caught:
                    _kill_next(admin, workers, caught)
                _wait_until(lambda: _open_rows(url) == 0, 120)
                time.sleep(1.0)  # nothing may arrive late
            finally:
                for n in range(len(caught)):
                    _disarm(admin, n)
                _stop(workers)
        engine.dispose()
        accepted = [e for e in fake.state.query("sendMessage", None) if e["outcome"] == "ok"]
    arrivals: dict[str, list[float]] = {}
    for entry in accepted:
        arrivals.setdefault(str(entry["recipient"]), []).append(float(entry["at"]))
    requests = Counter({chat: len(times) for chat, times in arrivals.items()})
    return KilledRun({r.recipient: r for r in _rows(url)}, requests, arrivals), caught


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
    config = _config(tmp_path, per_second=20)
    with ServerThread(fake.app) as server:
        recipients = _campaign(fresh_pg, config, size=12)
        blocked, slow = recipients[:2], recipients[2]
        for chat in blocked:
            fake.state.faults.append(Fault(FaultSpec(kind="blocked", recipient=chat)))
        fake.state.faults.append(Fault(FaultSpec(kind="timeout", recipient=slow, delay=1.5)))
        workers = _start_workers(fresh_pg, server.url, config, redis_url)
        try:
            _wait_until(lambda: _open_rows(fresh_pg) == 0, 150)
        finally:
            _stop(workers)
        requests = Counter(str(e["recipient"]) for e in fake.state.query("sendMessage", None))

    rows = {r.recipient: r for r in _rows(fresh_pg)}
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
    config = _config(tmp_path, per_second=50)
    with ServerThread(fake.app) as server:
        _campaign(fresh_pg, config, size=24)
        fake.state.faults.append(Fault(FaultSpec(kind="rate_limit", times=3, retry_after=2)))
        workers = _start_workers(fresh_pg, server.url, config, redis_url)
        try:
            _wait_until(lambda: _open_rows(fresh_pg) == 0, 90)
        finally:
            _stop(workers)
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
    assert {r.status for r in _rows(fresh_pg)} == {OutboxStatus.sent}


def test_only_one_worker_plans_at_a_time(fresh_pg: str, tmp_path: Path) -> None:
    from notifier.worker import PLAN_LOCK, NotifierSettings, Worker

    config_path = _config(tmp_path, per_second=20)
    config = CampaignConfig.model_validate(yaml.safe_load(config_path.read_text()))
    engine = build_engine(fresh_pg)
    with Session(engine) as session:
        br = f.branch(session, country="ZZ", timezone=_noon_zone())
        today = datetime.now(UTC).astimezone(_zone(br.timezone)).date()
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


def _connections_by_worker(url: str, kind: str = "kopa-notify") -> Counter[str]:
    """Open connections per application name: ``kopa-notify <id>`` (workers) or
    ``kopa-notify-judging <id>`` (their judging processes)."""
    engine = build_engine(url)
    with engine.connect() as conn:
        names = conn.scalars(
            text(
                "SELECT application_name FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE :kind"
            ),
            {"kind": f"{kind} %"},
        ).all()
    engine.dispose()
    return Counter(names)


def test_idle_workers_hold_their_warm_pools_under_their_own_names(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """A worker opens its whole pool before its first poll (a campaign that comes due finds it
    warm), and an operator can tell in pg_stat_activity which worker holds which connection."""
    config = _config(tmp_path, per_second=20)
    per_worker = 2 + 2  # KOPA_NOTIFY_CONCURRENCY lanes, the marks' and planning's
    with ServerThread(FakeTelegram().app) as server:
        workers = _start_workers(fresh_pg, server.url, config, redis_url)
        try:
            _wait_until(lambda: len(_connections_by_worker(fresh_pg)) == 3, 60)
            time.sleep(1.0)  # several idle polls: no connection is opened or dropped by them
            held = _connections_by_worker(fresh_pg)
            judging = _connections_by_worker(fresh_pg, "kopa-notify-judging")
        finally:
            _stop(workers)
    assert held == {f"kopa-notify w{n}": per_worker for n in range(3)}
    # Each worker's judging process (notifier.judging) is up and warm before it polls.
    assert judging == {f"kopa-notify-judging w{n}": 1 for n in range(3)}
    # ... and ends with its worker.
    _wait_until(lambda: not _connections_by_worker(fresh_pg, "kopa-notify-judging"), 10)


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
    rows = _rows(fresh_pg)
    engine.dispose()

    assert (waited.sent, waited.lost_lease, polled.claimed, polled.reclaimed) == (6, 0, 0, 0)
    assert {row.status for row in rows} == {OutboxStatus.sent}
    sent = [e["payload"]["chat_id"] for e in fake_tg[0].state.query("sendMessage", None)]
    assert len(sent) == len(set(sent)) == 6
