"""L-1: a campaign sent by four worker processes holds the rates."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from api.outbox.models import OutboxStatus
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from tests.notifier.worker_processes import open_rows, outbox_rows, start_workers, stop_workers
from tests.reliability.conduct_and_load.worker_campaign import (
    ledger_events,
    plan_reminders,
    telegram_config,
    wait_for,
)
from tests.reliability.mixed_load import most_in_any_second


@pytest.mark.postgres
@pytest.mark.redis
def test_L1_campaign_by_four_workers_holds_the_rates_with_no_duplicate_and_every_decision_logged(
    fresh_pg: str, redis_url: str, tmp_path: Path
) -> None:
    """L-1 with 200 reminders (the row's 50 000 in 2 hours run in ``python -m bench.notify``)
    by 4 ``kopa notify worker`` processes on PostgreSQL sharing the Redis limiter, at the
    production Telegram limits (25/s overall, 1/s per chat), 20 chats getting three reminders.

    Measured at the fake Bot API: never more than 25 requests in any second, never two to one
    chat within a second; all rows sent or suppressed within 3.6 times the minimum time at that
    rate (2 h for 50 000 at 25/s); 0 duplicates (no chat gets a row twice, no row has two
    ``sent`` events); every decision in the ledger (each row's planning and its send)."""
    config = telegram_config(tmp_path, per_second=25)
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        planned = plan_reminders(fresh_pg, config, borrowers=160, extra_loans=20)
        assert planned == 200
        workers = start_workers(fresh_pg, server.url, config, redis_url, count=4)
        try:
            wait_for(lambda: open_rows(fresh_pg) == 0, 240, fresh_pg, fake, workers)
            time.sleep(1.0)  # nothing may arrive late
        finally:
            stop_workers(workers)
        log = [e for e in fake.state.query("sendMessage", None) if e["outcome"] == "ok"]

    stamps = [float(e["at"]) for e in log]
    assert most_in_any_second(stamps) <= 25
    by_chat: dict[str, list[float]] = defaultdict(list)
    for entry in log:
        by_chat[str(entry["recipient"])].append(float(entry["at"]))
    gaps = sorted(
        (round(b - a, 3), chat)
        for chat, times in by_chat.items()
        for a, b in itertools.pairwise(sorted(times))
    )
    assert max(most_in_any_second(s) for s in by_chat.values()) == 1, f"closest: {gaps[:5]}"
    assert sorted(len(s) for s in by_chat.values())[-20:] == [3] * 20
    assert max(stamps) - min(stamps) <= 3.6 * planned / 25
    rows = outbox_rows(fresh_pg)
    assert {r.status for r in rows} <= {OutboxStatus.sent, OutboxStatus.suppressed}
    sent = [r for r in rows if r.status == OutboxStatus.sent]
    assert len(log) == len(sent) == planned
    # A Telegram message id is unique within its chat (the fake numbers each chat's from 1).
    assert len({(r.recipient, r.provider_message_id) for r in sent}) == len(sent)
    events = ledger_events(fresh_pg)
    sent_events = Counter(e.detail.get("outbox_id") for e in events if e.decision == "sent")
    assert set(sent_events.values()) == {1}
    assert set(sent_events) == {r.id for r in sent}
    planned_keys = {e.detail.get("business_key") for e in events if e.decision == "planned"}
    assert planned_keys == {r.business_key for r in rows}
