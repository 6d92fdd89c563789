"""F-3 and F-12: worker processes killed in the middle of a campaign or of a send."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.cases import service as cases
from api.cases.models import Case, CaseKind
from api.core.db import build_engine
from api.outbox.models import OutboxMessage, OutboxStatus
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from notifier.rules import CLOCK_SKEW_MARGIN
from tests.notifier import notify_factory as f
from tests.notifier.worker_processes import (
    connections_by_worker,
    noon_zone,
    open_rows,
    outbox_rows,
    start_workers,
    stop_workers,
    wait_until,
)
from tests.reliability.conduct_and_load.pipeline import add_officer
from tests.reliability.conduct_and_load.worker_campaign import (
    ledger_events,
    plan_reminders,
    telegram_config,
    wait_for,
)

CAMPAIGN_STATES_LEFT_OPEN = (
    OutboxStatus.pending,
    OutboxStatus.retry,
    OutboxStatus.claimed,
    OutboxStatus.ready,
    OutboxStatus.sending,
)


def _in_flight(url: str) -> int:
    """Rows a worker holds, or that are due and waiting for one."""
    engine = build_engine(url)
    with Session(engine) as session:
        count = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                (OutboxMessage.status.in_(CAMPAIGN_STATES_LEFT_OPEN[2:]))
                | (
                    OutboxMessage.status.in_(CAMPAIGN_STATES_LEFT_OPEN[:2])
                    & (OutboxMessage.send_at <= datetime.now(UTC))
                )
            )
        )
    engine.dispose()
    return int(count or 0)


def _local_clock(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).time().replace(microsecond=0).isoformat()


@pytest.mark.postgres
@pytest.mark.redis
def test_F3_two_of_four_workers_killed_mid_campaign_deliver_at_most_once_and_never_after_hours(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """F-3 with 4 ``kopa notify worker`` processes on PostgreSQL and Redis sending a campaign
    (up to 900 reminders: more than 25/s can send in time) whose send window closes 35 s after
    the workers were started (configured to end the 2-minute clock-skew margin later: the
    notifier stops sending that long before a window's end, row F-13): 2 of them are SIGKILLed
    halfway through the campaign's time and restarted after their 3-second lease (the row's
    "2 minutes" with production's 30-second lease).

    The campaign completes (no row left claimed, ready or sending); every borrower receives at
    most one reminder (measured at the fake Bot API); none arrives after the window closed; the
    rows that did not go in time are rescheduled to the next morning (06:02, the window's start
    and the margin), not dropped."""
    zone = ZoneInfo(noon_zone())
    closes = datetime.now(UTC) + timedelta(seconds=35)
    config = telegram_config(
        tmp_path,
        per_second=25,
        quiet_hours={"start": "06:00", "end": _local_clock(closes + CLOCK_SKEW_MARGIN, zone)},
        send_time="06:00",
    )
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        workers = start_workers(fresh_pg, server.url, config, redis_url, count=4)
        try:
            wait_for(
                lambda: len(connections_by_worker(fresh_pg)) == 4,
                30,
                fresh_pg,
                fake,
                workers,
            )
            # More than can go before the window closes (about 22/s), whenever that is.
            left = (closes - datetime.now(UTC)).total_seconds()
            assert left > 8, "the workers took too long to start"
            size = min(900, int(left * 22) + 80)
            assert plan_reminders(fresh_pg, config, borrowers=size) == size

            def sent() -> int:
                return len(fake.state.query("sendMessage", None))

            halfway = closes - timedelta(seconds=left / 2)
            wait_until(lambda: datetime.now(UTC) >= halfway, 60)
            for proc in workers[:2]:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=5)
            killed_after = sent()
            time.sleep(3.5)  # past their lease
            workers[:2] = start_workers(fresh_pg, server.url, config, redis_url, count=2)
            wait_until(lambda: datetime.now(UTC) > closes + timedelta(seconds=1), 60)
            wait_for(lambda: _in_flight(fresh_pg) == 0, 60, fresh_pg, fake, workers)
            time.sleep(1.0)
        finally:
            stop_workers(workers)
        log = fake.state.query("sendMessage", None)

    per_chat = Counter(str(e["recipient"]) for e in log)
    assert max(per_chat.values()) == 1
    after_hours = [
        datetime.fromtimestamp(float(e["at"]), UTC).astimezone(zone).time().isoformat()
        for e in log
        if datetime.fromtimestamp(float(e["at"]), UTC) >= closes.replace(microsecond=0)
    ]
    assert after_hours == [], f"sent after the window closed at {_local_clock(closes, zone)}"
    rows = outbox_rows(fresh_pg)
    states = Counter(r.status for r in rows)
    assert set(states) <= {OutboxStatus.sent, OutboxStatus.unknown, OutboxStatus.pending}
    assert states[OutboxStatus.sent] > killed_after > 0  # the campaign went on after the kill
    tomorrow_start = (
        datetime.combine(
            closes.astimezone(zone).date() + timedelta(days=1), clock_time(6), tzinfo=zone
        )
        + CLOCK_SKEW_MARGIN
    )
    late = [r for r in rows if r.status == OutboxStatus.pending]
    assert late, "the window closed before the campaign was done: some rows must wait"
    assert all(r.send_at == tomorrow_start for r in late)
    rescheduled = {
        e.detail.get("outbox_id")
        for e in ledger_events(fresh_pg)
        if e.decision == "rescheduled" and e.rule == "quiet_hours"
    }
    assert {r.id for r in late} <= rescheduled
    # Killed between "may leave" and the answer: unknown, never resent, at most their lanes.
    unknown = [r for r in rows if r.status == OutboxStatus.unknown]
    assert all(per_chat[r.recipient] <= 1 for r in unknown)


@pytest.mark.postgres
@pytest.mark.redis
def test_F12_relay_killed_between_publish_and_mark_published_has_the_business_effect_once(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """F-12: the notifier is the outbox's relay; "publish" is the provider accepting the
    message, "mark published" the commit of its outcome. A hardship case is opened twice with
    one idempotency key (the API's own retry: a duplicate publish into the outbox), and the
    ``kopa notify worker`` carrying its officer alert is SIGKILLed the moment the fake Bot API
    has received the request, before it answers; a new worker starts.

    The duplicate enqueue is absorbed (one case, one outbox row: the unique business key);
    the relay that takes over finds the row in flight (committed ``sending`` before the request
    left) and never publishes it again: the officer is alerted once, measured at the fake Bot
    API, the row ends ``unknown`` with its ledger event, and no second ``sent``. (Telegram takes
    no idempotency key, so the dedupe on the consumer's side of the relay is the outbox row.)"""
    config = telegram_config(tmp_path, per_second=25)
    engine = build_engine(fresh_pg)
    with Session(engine) as session:
        br = f.branch(session, country="ZZ", timezone=noon_zone())
        officer = add_officer(session, br.id, "9000777")
        person = f.borrower(session, br)
        person.officer_id = officer.id
        f.loan(session, person, first_due=date(2029, 1, 1))
        session.commit()
        opened = [
            cases.open_case(
                session=session,
                borrower=person,
                kind=CaseKind.hardship,
                now=datetime.now(UTC),
                channel="telegram",
                idempotency_key="tg:12345:update:9001",
            )
            for _ in range(2)
        ]
        session.commit()
    assert [o.created for o in opened] == [True, False]
    fake = FakeTelegram()
    workers: list[subprocess.Popen[bytes]] = []

    def kill_on_alert(entry: dict[str, Any]) -> None:
        if entry["method"] == "sendMessage" and entry["recipient"] == "9000777" and workers:
            workers[0].send_signal(signal.SIGKILL)

    fake.state.listeners.append(kill_on_alert)
    with ServerThread(fake.app) as server:
        workers += start_workers(fresh_pg, server.url, config, redis_url, count=1)
        try:
            wait_for(lambda: workers[0].poll() is not None, 120, fresh_pg, fake, workers)
            fake.state.listeners.clear()
            workers += start_workers(fresh_pg, server.url, config, redis_url, count=1)
            wait_for(lambda: open_rows(fresh_pg) == 0, 180, fresh_pg, fake, workers)
            time.sleep(1.0)  # nothing may arrive late
        finally:
            stop_workers(workers)
        alerts = fake.state.query("sendMessage", "9000777")

    rows = outbox_rows(fresh_pg)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 1
    engine.dispose()
    [alert] = [r for r in rows if r.purpose == "officer_alert"]
    assert len(alerts) == 1
    assert alert.status == OutboxStatus.unknown
    events = [e for e in ledger_events(fresh_pg) if e.detail.get("outbox_id") == alert.id]
    assert [(e.decision, e.rule) for e in events] == [("unknown", "lease_expired")]
