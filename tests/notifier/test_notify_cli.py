"""``kopa notify plan``: the dry run an operator reads, as JSON lines and as a table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.core.migrate import upgrade
from api.outbox.models import OutboxMessage
from tests.notifier import notify_factory as f

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 1)


def _kopa(url: str, *args: str) -> str:
    env = {**os.environ, "KOPA_DATABASE_URL": url, "COLUMNS": "160"}
    done = subprocess.run(
        [sys.executable, "-m", "kopa.cli", "notify", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_plan_dry_run_prints_one_json_line_per_candidate_and_a_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kopa.db'}"
    upgrade(url)
    engine = build_engine(url)
    with Session(engine) as session:
        br = f.branch(session)
        upcoming = f.loan(
            session, f.borrower(session, br, locale="fr"), first_due=TODAY + timedelta(3)
        )
        paused = f.loan(session, f.borrower(session, br), first_due=TODAY)
        paused.collection_paused = True
        ids = (upcoming.id, upcoming.borrower_id, paused.id)
        session.commit()

    lines = _kopa(url, "plan", "--at", "2026-12-01T20:30:00+03:00", "--json").splitlines()
    table = _kopa(url, "plan", "--at", "2026-12-01T20:30:00+03:00")

    by_loan = {row["loan_id"]: row for row in map(json.loads, lines)}
    assert by_loan[ids[0]] == {
        "loan_id": ids[0],
        "borrower_id": ids[1],
        "step": "installment-3",
        "channel": "telegram",
        "locale": "fr",
        "status": "planned",
        "reason": "quiet_hours",
        # 20:30 is after the window: the next open morning, in the borrower's offset.
        "send_at": "2026-12-02T08:02:00+03:00",  # the window's start and its skew margin
    }
    assert (by_loan[ids[2]]["status"], by_loan[ids[2]]["reason"]) == (
        "suppressed",
        "hardship_case_open",
    )
    assert "installment-3" in table and "hardship_case_open" in table
    with Session(engine) as session:  # a dry run writes nothing
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    engine.dispose()


def test_a_halted_channel_shows_in_the_dead_letters_until_an_operator_resumes_it(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from api.outbox.models import DeadLetter, DeadLetterReason

    url = f"sqlite:///{tmp_path / 'kopa.db'}"
    upgrade(url)
    engine = build_engine(url)
    with Session(engine) as session:
        session.add(
            DeadLetter(
                at=datetime(2026, 12, 1, 6, 30, tzinfo=UTC),
                channel="whatsapp",
                reason=DeadLetterReason.channel_error,
                error="graph 400 code 132001",
                halts_channel=True,
                worker="w1",
            )
        )
        session.commit()

    halted = _kopa(url, "dead-letters")
    resumed = _kopa(url, "resume", "whatsapp", "--by", "ops-amina")
    after = _kopa(url, "dead-letters")
    history = _kopa(url, "dead-letters", "--all")

    assert "whatsapp" in halted and "CHANNEL HALTED" in halted and "132001" in halted
    assert resumed.strip() == "whatsapp: 1 halt(s) resolved"
    assert "Notifier dead letters (0)" in after
    assert "resolved" in history and "ops-amina" in history
    engine.dispose()
