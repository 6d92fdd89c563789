"""Loan histories from the database, fitting the scorecard on them, scoring the open loans.

Every day is the borrower's branch calendar day, as in the KPIs (:mod:`api.kpis.book`).
The scorecard is fitted on month-end snapshots of the portfolio's own history: each loan open
at a month-end, its features then and what became of it (:func:`api.risk.features.outcome`).

The score is for officers: it orders their work and is never shown to the borrower, nor read by
any conduct rule (caps, quiet hours, wording). Service functions take the session keyword-only
and never commit.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Subquery, and_, delete, func, select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Branch
from api.cases.models import Case, CaseKind
from api.ledger.models import ContactEvent
from api.loans.models import Installment, Loan, LoanStatus
from api.payments.models import Payment, PaymentAllocation
from api.promises.models import PromiseStatus, PromiseToPay
from api.risk.features import LoanHistory, Paid, ScheduledInstallment, features_at, outcome
from api.risk.fit import fit_scorecard
from api.risk.models import RiskScore, RiskScorecard
from api.risk.scorecard import BANDS, Scorecard

BROKEN = (PromiseStatus.broken, PromiseStatus.partially_kept)
HIGH_BAND_FLOOR = dict(BANDS)["high"]


class NoScorecard(LookupError):
    """``kopa risk score`` before any ``kopa risk fit``."""


@dataclass(frozen=True)
class Snapshot:
    day: date
    loan_id: int
    features: dict[str, int]
    went_wrong: bool


def _local(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def load_histories(
    session: Session, *, statuses: Iterable[LoanStatus] | None = None
) -> list[LoanHistory]:
    """Every loan's history (written-off loans are off the books), or those of ``statuses``."""
    wanted = Loan.status.in_(
        tuple(statuses or (s for s in LoanStatus if s is not LoanStatus.written_off))
    )
    rows = session.execute(
        select(Loan.id, Loan.borrower_id, Loan.disbursed_on, Loan.cycle, Branch.timezone)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .join(Branch, Branch.id == Borrower.branch_id)
        .where(wanted)
        .order_by(Loan.id)
    ).all()
    histories = {r.id: LoanHistory(r.id, r.disbursed_on, r.cycle, []) for r in rows}
    zones = {r.id: ZoneInfo(r.timezone) for r in rows}
    by_borrower: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        by_borrower[r.borrower_id].append(r.id)
    _load_schedules(session, histories, zones, wanted)
    _load_borrower_facts(session, histories, zones, by_borrower)
    for history in histories.values():
        for days in (
            history.payment_days,
            history.broken_promise_days,
            history.hardship_case_days,
            history.reminder_days,
            history.inbound_days,
        ):
            days.sort()
    return list(histories.values())


def _load_schedules(
    session: Session,
    histories: dict[int, LoanHistory],
    zones: dict[int, ZoneInfo],
    wanted: ColumnElement[bool],
) -> None:
    installments: dict[int, ScheduledInstallment] = {}
    for i in session.execute(
        select(Installment)
        .join(Loan, Loan.id == Installment.loan_id)
        .where(wanted)
        .order_by(Installment.loan_id, Installment.seq)
    ).scalars():
        installments[i.id] = ScheduledInstallment(
            i.due_date, i.principal_due, i.interest_due, i.fees_due
        )
        histories[i.loan_id].schedule.append(installments[i.id])
    for a, loan_id, received_at in session.execute(
        select(PaymentAllocation, Payment.loan_id, Payment.received_at)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .join(Loan, Loan.id == Payment.loan_id)
        .where(wanted)
        .order_by(Payment.received_at, Payment.id)
    ):
        if loan_id in histories:
            day = _local(received_at, zones[loan_id])
            installments[a.installment_id].paid.append(Paid(day, a.principal, a.interest, a.fees))
            histories[loan_id].payment_days.append(day)


def _load_borrower_facts(
    session: Session,
    histories: dict[int, LoanHistory],
    zones: dict[int, ZoneInfo],
    by_borrower: dict[int, list[int]],
) -> None:
    for loan_id, evaluated_at in session.execute(
        select(PromiseToPay.loan_id, PromiseToPay.evaluated_at).where(
            PromiseToPay.status.in_(BROKEN), PromiseToPay.evaluated_at.is_not(None)
        )
    ):
        if loan_id in histories and evaluated_at is not None:
            histories[loan_id].broken_promise_days.append(_local(evaluated_at, zones[loan_id]))
    for borrower_id, created_at in session.execute(
        select(Case.borrower_id, Case.created_at).where(Case.kind == CaseKind.hardship)
    ):
        for loan_id in by_borrower.get(borrower_id, ()):
            histories[loan_id].hardship_case_days.append(_local(created_at, zones[loan_id]))
    for contacted, at, direction in session.execute(
        select(ContactEvent.borrower_id, ContactEvent.at, ContactEvent.direction).where(
            ContactEvent.borrower_id.is_not(None),
            ((ContactEvent.direction == "inbound") & (ContactEvent.kind == "chat"))
            | (
                (ContactEvent.direction == "outbound")
                & (ContactEvent.kind == "reminder")
                & (ContactEvent.decision == "sent")
            ),
        )
    ):
        for loan_id in by_borrower.get(contacted or 0, ()):
            day = _local(at, zones[loan_id])
            history = histories[loan_id]
            (history.inbound_days if direction == "inbound" else history.reminder_days).append(day)


def month_ends(first: date, last: date) -> list[date]:
    """The month-ends from ``first``'s month to ``last`` (inclusive)."""
    ends = []
    day = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    while day <= last:
        ends.append(day)
        following = day + timedelta(days=1)
        day = following.replace(day=calendar.monthrange(following.year, following.month)[1])
    return ends


def snapshots(
    histories: Sequence[LoanHistory], days: Iterable[date], *, observed_through: date
) -> list[Snapshot]:
    """Each loan open at the end of each day whose outcome ``observed_through`` can tell."""
    taken = []
    for day in days:
        for history in histories:
            if not history.is_open(day):
                continue
            went_wrong = outcome(history, day, observed_through=observed_through)
            if went_wrong is not None:
                taken.append(Snapshot(day, history.loan_id, features_at(history, day), went_wrong))
    return taken


def time_split(taken: Sequence[Snapshot]) -> tuple[list[Snapshot], list[Snapshot]]:
    """The snapshots of the first two thirds of the month-ends (to fit on), then the rest (to
    test on): a model is judged on months it has not seen, as it will be used."""
    months = sorted({s.day for s in taken})
    last_fit = months[max(0, len(months) * 2 // 3 - 1)] if months else date.min
    return [s for s in taken if s.day <= last_fit], [s for s in taken if s.day > last_fit]


def fit(session: Session, *, through: date) -> RiskScorecard:
    """Fit a scorecard on the month-end snapshots the data to ``through`` can tell, and add it.

    Raises:
        api.risk.fit.NotEnoughHistory: no snapshot went wrong, or none went right.
    """
    histories = load_histories(session)
    first = min((h.disbursed_on for h in histories), default=through)
    taken = snapshots(histories, month_ends(first, through), observed_through=through)
    card = fit_scorecard([s.features for s in taken], [s.went_wrong for s in taken])
    row = RiskScorecard(
        fitted_from=min(s.day for s in taken),
        fitted_through=through,
        snapshots=len(taken),
        events=sum(s.went_wrong for s in taken),
        card=card.to_json(),
    )
    session.add(row)
    session.flush()
    return row


def latest_scorecard(session: Session) -> RiskScorecard | None:
    return session.scalars(select(RiskScorecard).order_by(RiskScorecard.id.desc())).first()


def score_open_loans(session: Session, *, at: date) -> list[RiskScore]:
    """Score every active loan still owing at the end of ``at`` with the latest scorecard,
    replacing the scores of that day.

    Raises:
        NoScorecard: no scorecard was fitted yet.
    """
    stored = latest_scorecard(session)
    if stored is None:
        raise NoScorecard("fit a scorecard first (kopa risk fit)")
    card = Scorecard.from_json(stored.card)
    session.execute(delete(RiskScore).where(RiskScore.as_of == at))
    scores = []
    for history in load_histories(session, statuses=(LoanStatus.active,)):
        if not history.is_open(at):
            continue
        features = features_at(history, at)
        score = card.score(features)
        scores.append(
            RiskScore(
                loan_id=history.loan_id,
                scorecard_id=stored.id,
                as_of=at,
                points=score.points,
                probability=score.probability,
                reasons=[asdict(reason) for reason in score.reasons],
                features=features,
            )
        )
    session.add_all(scores)
    session.flush()
    return scores


def refresh_scores(session: Session, *, at: date) -> bool:
    """Score the open loans as of ``at`` (:func:`score_open_loans`) unless scores of that day
    or later exist; answers whether it scored. Nothing to do before any scorecard is fitted."""
    newest = session.scalar(select(func.max(RiskScore.as_of)))
    if (newest is not None and newest >= at) or latest_scorecard(session) is None:
        return False
    score_open_loans(session, at=at)
    return True


def high_risk_loans(*, session: Session, at: date) -> frozenset[int]:
    """The loans whose latest score is in the high band, scores refreshed to ``at`` first.

    What the notifier's planner reads (:class:`notifier.planner.HighRiskLoans`, handed to it by
    ``kopa``): loan ids only, never a score, so nothing a borrower reads can carry one.
    """
    refresh_scores(session, at=at)
    latest = latest_scores()
    return frozenset(
        session.scalars(select(latest.c.loan_id).where(latest.c.probability >= HIGH_BAND_FLOOR))
    )


def latest_scores() -> Subquery:
    """Each scored loan's latest score row (``id``, ``loan_id``, ``probability``), to join on.

    Ordering by ``probability`` compares loans scored by different scorecards on one scale.
    """
    newest = (
        select(RiskScore.loan_id, func.max(RiskScore.as_of).label("as_of"))
        .group_by(RiskScore.loan_id)
        .subquery()
    )
    return (
        select(RiskScore.id, RiskScore.loan_id, RiskScore.probability)
        .join(
            newest, and_(newest.c.loan_id == RiskScore.loan_id, newest.c.as_of == RiskScore.as_of)
        )
        .subquery("latest_score")
    )


def latest_score(session: Session, *, loan_id: int) -> RiskScore | None:
    """The loan's latest score, or None when it was never scored."""
    latest = latest_scores()
    return session.scalar(
        select(RiskScore)
        .join(latest, latest.c.id == RiskScore.id)
        .where(latest.c.loan_id == loan_id)
    )
