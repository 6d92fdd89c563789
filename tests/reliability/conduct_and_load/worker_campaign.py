"""A campaign sent by real ``kopa notify worker`` processes to the fake Bot API (L-1, F-3,
F-12): their config at the production Telegram limits, the campaign planned now, waiting for
it, and the contact ledger it leaves.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.ledger.models import ContactEvent
from bot.fakes.telegram import FakeTelegram
from notifier.config import CampaignConfig
from notifier.planner import Planner
from tests.notifier import notify_factory as f
from tests.notifier.worker_processes import noon_zone, outbox_rows, wait_until, worker_config


def telegram_config(tmp_path: Path, per_second: float, **defaults: Any) -> Path:
    """The notifier tests' worker config (3 s leases, no closed days) with the production
    Telegram limits (``per_second``, 1/s per chat) and ``defaults`` on top."""
    path = worker_config(tmp_path, per_second=per_second)
    data = yaml.safe_load(path.read_text())
    data["defaults"].update(defaults)
    path.write_text(yaml.safe_dump(data))
    return path


def plan_reminders(url: str, config: Path, borrowers: int, extra_loans: int = 0) -> int:
    """``borrowers`` borrowers of a branch where it is about midday, each with an installment
    due in three days; the first ``extra_loans`` of them have two more loans (three reminders
    to one chat). Planned now; returns the rows planned."""
    engine = build_engine(url)
    with Session(engine) as session:
        br = f.branch(session, country="ZZ", timezone=noon_zone())
        today = datetime.now(UTC).astimezone(ZoneInfo(br.timezone)).date()
        for n in range(borrowers):
            person = f.borrower(session, br)
            for _ in range(3 if n < extra_loans else 1):
                f.loan(session, person, first_due=today + timedelta(days=3))
        session.commit()
        cfg = CampaignConfig.model_validate(yaml.safe_load(config.read_text()))
        inserted = Planner(cfg).plan(session, datetime.now(UTC), write=True).inserted
        session.commit()
    engine.dispose()
    return inserted


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    url: str,
    fake: FakeTelegram,
    workers: Sequence[subprocess.Popen[bytes]],
) -> None:
    """``wait_until``, saying where the campaign stood when it timed out."""
    try:
        wait_until(predicate, timeout)
    except AssertionError:
        states = Counter(str(r.status) for r in outbox_rows(url))
        ended = [p for p in workers if p.poll() is not None]
        # Why a worker ended (its last words), so that a failure in CI explains itself.
        last_words = [
            p.stderr.read().decode(errors="replace")[-600:] if p.stderr is not None else ""
            for p in ended
        ]
        raise AssertionError(
            f"timed out: rows {dict(states)}, {len(fake.state.sent)} requests, "
            f"workers exited {[p.returncode for p in ended]}; stderr: {last_words}"
        ) from None


def ledger_events(url: str) -> list[ContactEvent]:
    engine = build_engine(url)
    with Session(engine) as session:
        events = list(session.scalars(select(ContactEvent)))
        session.expunge_all()
    engine.dispose()
    return events
