"""Risk features, outcomes and scores on the KPI portfolio (``tests/api/kpi_portfolio.py``),
every value worked out by hand from its docstring; days are Nairobi's (UTC+3) or Kampala's."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.ledger import service as ledger
from api.risk import service
from api.risk.features import LoanHistory, features_at, outcome
from api.risk.models import RiskScore, RiskScorecard
from tests.api.factories import aware
from tests.api.kpi_portfolio import AS_OF, Portfolio, build
from tests.api.test_risk_scorecard import CARD

OCT_31 = date(2026, 10, 31)


def _histories(session: Session, p: Portfolio) -> dict[str, LoanHistory]:
    by_id = {h.loan_id: h for h in service.load_histories(session)}
    return {name: by_id[loan.id] for name, loan in p.loans.items() if loan.id in by_id}


def _features(history: LoanHistory, day: date) -> tuple[int, ...]:
    return tuple(features_at(history, day).values())


def test_features_at_the_end_of_a_day(session: Session) -> None:
    p = build(session)
    # L10 answers its Nov 5 reminder in chat the next day.
    ledger.record(
        session=session,
        at=aware(2026, 11, 6),
        direction="inbound",
        kind="chat",
        decision="received",
        borrower_id=p.loans["L10"].borrower_id,
        channel="telegram",
    )
    h = _histories(session, p)
    assert "L8" not in h  # written off: off the books

    # (days past due, late installments, partial payments, broken promises, unanswered
    # reminders, hardship cases, loan cycle)
    # L1: both due installments paid by their day; a hardship case opened Nov 2.
    assert _features(h["L1"], AS_OF) == (0, 0, 0, 0, 0, 1, 1)
    # L2: Oct 10 and Nov 10 paid on Nov 12, late both; its Nov 10 reminder paid 2 days later.
    assert _features(h["L2"], AS_OF) == (0, 2, 0, 0, 0, 0, 1)
    # L3: nothing by Nov 30 (its payment lands Dec 1 01:00 local), Sep 20 -> 71 days; the
    # promise it broke was judged by that same payment, in December; the Nov 15 reminder
    # had no answer.
    assert _features(h["L3"], AS_OF) == (71, 3, 0, 0, 1, 0, 1)
    # L4: Jul 15 -> 138 days; the 300 of Jul 10 left its first installment owing 250.
    assert _features(h["L4"], AS_OF) == (138, 2, 1, 0, 0, 0, 1)
    # L6: Nov 25 owes 500 after the 600 of Nov 27 (partial); its Nov 24 reminder was
    # followed by that payment 3 days later. On Nov 26 neither had happened.
    assert _features(h["L6"], AS_OF) == (5, 1, 1, 0, 0, 0, 1)
    assert _features(h["L6"], date(2026, 11, 26)) == (1, 1, 0, 0, 1, 0, 1)
    # L7 (repaid): Nov 5 paid Nov 6 local; its Nov 1 reminder had no answer within 3 days.
    assert _features(h["L7"], AS_OF) == (0, 1, 0, 0, 1, 0, 1)
    # L9: Nov 29 unpaid -> 1 day; the reminder of Nov 29 still unanswered.
    assert _features(h["L9"], AS_OF) == (1, 1, 0, 0, 1, 0, 1)
    # L10 (Kampala): Oct 10 -> 51 days; its reminder answered in chat.
    assert _features(h["L10"], AS_OF) == (51, 2, 0, 0, 0, 0, 1)


def test_what_became_of_each_loan_open_at_the_october_month_end(session: Session) -> None:
    h = _histories(session, build(session))

    def went_wrong(name: str) -> bool | None:
        return outcome(h[name], OCT_31, observed_through=AS_OF)

    assert went_wrong("L1") is False  # Nov 1 paid that day
    assert went_wrong("L2") is False  # Nov 10 paid Nov 12, within 3 days; 21 days late -> 0
    assert went_wrong("L3") is True  # Nov 20 unpaid
    assert went_wrong("L6") is True  # Nov 25 only 600 of 1100 by Nov 28
    # No installment left to fall due: 108 -> 138 days late, 90+ both times.
    assert went_wrong("L4") is False
    # Disbursed Nov 5, first due Dec 5: too early to tell, at Nov 30 as at Oct 31.
    assert went_wrong("L5") is None
    assert outcome(h["L1"], AS_OF, observed_through=AS_OF) is None


def test_scoring_writes_one_score_per_open_loan_and_replaces_the_day(session: Session) -> None:
    p = build(session)
    card = RiskScorecard(
        fitted_from=OCT_31,
        fitted_through=AS_OF,
        snapshots=0,
        events=0,
        card=CARD.to_json(),
    )
    session.add(card)
    session.flush()

    service.score_open_loans(session=session, at=AS_OF)
    scores = service.score_open_loans(session=session, at=AS_OF)

    stored = session.scalars(select(RiskScore).where(RiskScore.as_of == AS_OF)).all()
    open_loans = {p.loans[n].id for n in ("L1", "L2", "L3", "L4", "L5", "L6", "L9", "L10")}
    assert sorted(s.loan_id for s in stored) == sorted(open_loans)  # L7 repaid, L8 off
    assert len(scores) == len(stored)
    l3 = next(s for s in stored if s.loan_id == p.loans["L3"].id)
    # 61-90 days: 70, 3+ late: 20, one unanswered reminder: 3, first cycle: 6 -> 99.
    assert (l3.points, l3.probability, l3.scorecard_id) == (99, Decimal("0.8071"), card.id)
    assert l3.reasons == [
        {"feature": "days_past_due", "bin": "61-90", "points": 70},
        {"feature": "late_installments", "bin": "3+", "points": 20},
        {"feature": "loan_cycle", "bin": "1", "points": 6},
    ]
