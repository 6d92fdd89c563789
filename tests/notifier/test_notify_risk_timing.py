"""High-risk loans get their first pre-due reminder earlier; nothing else about them changes.

The planner is given what ``kopa`` gives it (:func:`api.risk.service.high_risk_loans`): it
refreshes the day's scores with the latest scorecard and answers the loans in the high band.
The scorecard below puts fifth-cycle loans in the high band and first-cycle ones in the low
one, so the loans' real histories are scored, not a stand-in.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.core.migrate import upgrade
from api.loans.models import Loan
from api.risk.features import FEATURES
from api.risk.models import RiskScore, RiskScorecard
from api.risk.scorecard import EDGES, Scorecard, band
from api.risk.service import high_risk_loans
from notifier.candidates import Candidate
from notifier.config import load_campaigns
from notifier.planner import Planner
from tests.notifier import notify_factory as f
from tests.notifier.test_notify_cli import _kopa

# Tuesday 1 December 2026, 09:30 in Nairobi (UTC+3).
AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
TODAY = date(2026, 12, 1)
# Every bin 0 points but loan cycle 5+: 100 points lift the odds from 5 % to 61 %.
CYCLE_CARD = Scorecard(
    base_log_odds=-3.0,
    points={name: [0] * (len(EDGES[name]) + 1) for name in FEATURES}
    | {"loan_cycle": [0, 0, 0, 100]},
)


def _scorecard(session: Session) -> None:
    session.add(
        RiskScorecard(
            fitted_from=date(2026, 1, 31),
            fitted_through=date(2026, 10, 31),
            snapshots=100,
            events=10,
            card=CYCLE_CARD.to_json(),
        )
    )
    session.flush()


def _loan(session: Session, *, cycle: int, first_due: date, every_days: int = 30) -> Loan:
    item = f.loan(
        session, f.borrower(session, f.branch(session)), first_due=first_due, every_days=every_days
    )
    item.cycle = cycle
    session.flush()
    return item


def _plan(session: Session, loans: list[Loan], at: datetime = AT) -> list[Candidate]:
    planner = Planner(high_risk=high_risk_loans)
    return planner.plan(session, at, write=True, loan_ids=[x.id for x in loans]).candidates


def _steps(candidates: list[Candidate], loan: Loan) -> list[tuple[str, str, str]]:
    return [(c.step, c.status, c.reason) for c in candidates if c.loan_id == loan.id]


def test_a_high_risk_loan_hears_first_five_days_before_instead_of_three(
    session: Session,
) -> None:
    _scorecard(session)
    risky = _loan(session, cycle=5, first_due=TODAY + timedelta(days=5))
    safe = _loan(session, cycle=1, first_due=TODAY + timedelta(days=5))
    risky_later = _loan(session, cycle=5, first_due=TODAY + timedelta(days=3))
    safe_later = _loan(session, cycle=1, first_due=TODAY + timedelta(days=3))
    assert load_campaigns().defaults.high_risk_first_reminder_days_before == 5

    found = _plan(session, [risky, safe, risky_later, safe_later])

    [early] = [c for c in found if c.loan_id == risky.id]
    assert (early.step, early.status) == ("installment-5", "planned")
    # The same message as any first reminder: the score changes when, never what.
    assert early.message_key == "notify.reminder.upcoming"
    assert early.as_json()["send_at"] == "2026-12-01T09:30:00+03:00"
    assert _steps(found, safe) == []
    # The first reminder moved rather than added: a risky loan no longer hears three days out.
    assert _steps(found, risky_later) == []
    assert _steps(found, safe_later) == [("installment-3", "planned", "campaign")]


def test_the_earlier_reminder_keeps_to_quiet_hours_and_the_daily_cap(session: Session) -> None:
    _scorecard(session)
    # Installments due in 1 and in 5 days: today is the -1 step of one and the -5 of the other.
    capped = _loan(session, cycle=5, first_due=TODAY + timedelta(days=1), every_days=4)
    late_evening = _loan(session, cycle=5, first_due=TODAY + timedelta(days=5))

    found = _plan(session, [capped], at=AT)
    # 20:00 in Nairobi: after the quiet hours begin.
    evening = _plan(session, [late_evening], at=datetime(2026, 12, 1, 17, 0, tzinfo=UTC))

    assert sorted(_steps(found, capped)) == [
        ("installment-1", "planned", "campaign"),
        ("installment-5", "suppressed", "cap_day"),
    ]
    [moved] = evening
    assert (moved.step, moved.status, moved.reason) == ("installment-5", "planned", "quiet_hours")
    assert moved.as_json()["send_at"] == "2026-12-02T08:02:00+03:00"


def test_without_a_score_every_loan_keeps_the_normal_schedule(session: Session) -> None:
    # No scorecard fitted: nothing to score with, so no loan is high risk.
    item = _loan(session, cycle=5, first_due=TODAY + timedelta(days=3))
    early = _loan(session, cycle=5, first_due=TODAY + timedelta(days=5))

    found = _plan(session, [item, early])
    plain = Planner().plan(session, AT, write=False, loan_ids=[item.id, early.id]).candidates

    assert _steps(found, item) == [("installment-3", "planned", "campaign")]
    assert _steps(found, early) == []
    assert [(c.loan_id, c.step) for c in plain] == [(item.id, "installment-3")]
    assert session.scalar(select(func.count()).select_from(RiskScore)) == 0


def test_the_planner_scores_once_a_day(session: Session) -> None:
    _scorecard(session)
    risky = _loan(session, cycle=5, first_due=TODAY + timedelta(days=20))
    safe = _loan(session, cycle=1, first_due=TODAY + timedelta(days=20))
    # A score from yesterday is older than the planner's day: it scores again.
    session.add(
        RiskScore(
            loan_id=safe.id,
            scorecard_id=session.scalar(select(func.max(RiskScorecard.id))),
            as_of=TODAY - timedelta(days=1),
            points=0,
            probability=0.9,
            reasons=[],
            features={},
        )
    )
    session.flush()

    def todays() -> dict[int, tuple[int, str]]:
        rows = session.scalars(select(RiskScore).where(RiskScore.as_of == TODAY))
        return {s.loan_id: (s.id, band(s.probability)) for s in rows}

    _plan(session, [risky, safe])
    first = todays()
    _plan(session, [risky, safe], at=AT + timedelta(hours=6))

    assert {loan: b for loan, (_, b) in first.items()} == {risky.id: "high", safe.id: "low"}
    # Planning again the same day reads the day's scores; it does not score again.
    assert todays() == first
    _plan(session, [risky, safe], at=AT + timedelta(days=1))
    assert session.scalar(
        select(func.count()).select_from(RiskScore).where(RiskScore.as_of == TODAY + timedelta(1))
    ) == len(first)


def test_kopa_notify_plan_hands_the_planner_the_risk_band(tmp_path: Path) -> None:
    """The wiring an operator runs: ``kopa notify plan`` plans with the officers' scores."""
    url = f"sqlite:///{tmp_path / 'kopa.db'}"
    upgrade(url)
    engine = build_engine(url)
    with Session(engine) as session:
        _scorecard(session)
        risky = _loan(session, cycle=5, first_due=TODAY + timedelta(days=5))
        safe = _loan(session, cycle=1, first_due=TODAY + timedelta(days=3))
        ids = risky.id, safe.id
        session.commit()

    lines = _kopa(url, "plan", "--at", "2026-12-01T09:30:00+03:00", "--json").splitlines()

    steps = {row["loan_id"]: row["step"] for row in map(json.loads, lines)}
    assert steps == {ids[0]: "installment-5", ids[1]: "installment-3"}
    with Session(engine) as session:
        # A dry run: the day's scores it computed are rolled back with the rest.
        assert session.scalar(select(func.count()).select_from(RiskScore)) == 0
    engine.dispose()
