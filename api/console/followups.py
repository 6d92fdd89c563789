"""Follow-ups due: what an officer must act on today beside open cases.

Two sources, both read from what is already recorded (nothing is stored for a follow-up):

* **Broken promises.** A borrower's latest promise on a loan whose chance is over (its date
  plus the grace days, in the branch's time zone: :func:`api.promises.service.window_end`)
  without payments covering it, and no case of the borrower open or opened since. It goes
  away once payments since the promise cover it, a new promise is recorded, or a case is
  opened.
* **Calls to follow up.** The latest call recorded on an unresolved case, when it reached
  nobody (``no_answer``, ``unreachable``: call again ``call_back_hours`` later) or the borrower
  promised to pay on the phone (``promise_to_pay``: record the promise on their behalf, due at
  once). It goes away with a later call, a promise recorded since, or the case resolved.
* **Calls about a broken promise.** An officer may call from a broken promise's follow-up
  without opening a case (:func:`api.cases.officers.record_loan_call`). The latest such call
  on the loan since the promise was over replaces the broken promise as calls on a case are
  followed: a call that reached nobody is due again ``call_back_hours`` later, a promise made
  on the phone is due until a promise is recorded, any other outcome ends the follow-up.

Only loans still collected (active or defaulted) count. Each source reads at most 200 items,
the oldest first, as the queue shows at most 200 cases. Rows follow the queue's order: those
due before today (the officer's missed deadlines) first, then the riskiest loans (unscored
last), then the oldest; the queue's filters and branch scope apply
(:class:`api.console.queue.QueueFilters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from api.borrowers import service as borrower_service
from api.borrowers.models import Borrower
from api.branches.models import Branch, Officer
from api.branches.service import branch_scope
from api.cases import service as case_service
from api.cases.models import CallOutcome, Case, CaseNote, LoanCall
from api.console.queue import (
    QUEUE_LIMIT,
    FollowUpKind,
    QueueFilters,
    RiskView,
    arrears_bucket,
    score_view,
)
from api.core.config import CasePolicy, PromisePolicy
from api.loans import service as loan_service
from api.loans.models import Loan, LoanStatus
from api.payments.models import Payment
from api.promises import service as promise_service
from api.promises.models import PromiseStatus, PromiseToPay
from api.risk import service as risk_service

# Statuses of a promise that may have been broken (pending ones not yet judged included).
_UNKEPT = (PromiseStatus.pending, PromiseStatus.broken, PromiseStatus.partially_kept)
# Loans still collected: a repaid or written-off loan's old promise is nobody's follow-up.
_COLLECTED = (LoanStatus.active, LoanStatus.defaulted)
_CALL_AGAIN = (CallOutcome.no_answer, CallOutcome.unreachable)
_FOLLOWED_CALLS = (*_CALL_AGAIN, CallOutcome.promise_to_pay)


@dataclass(frozen=True)
class FollowUpRow:
    """One follow-up as the queue shows it (first name and masked phone only, as cases)."""

    kind: FollowUpKind
    item_id: int  # the promise's id, the call note's, or the call's about the loan (loan_call)
    due_at: datetime
    late: bool  # due before today: a deadline already missed
    borrower_id: int
    borrower_first_name: str
    borrower_phone_masked: str
    branch_code: str
    branch_timezone: str
    officer_name: str | None
    currency: str | None
    arrears: Decimal | None
    bucket: str | None
    risk: RiskView | None
    probability: float | None
    promise: PromiseToPay | None = None
    case: Case | None = None
    call_outcome: CallOutcome | None = None
    loan_call: LoanCall | None = None  # the call about a broken promise this row follows


def due_follow_ups(
    session: Session,
    *,
    officer: Officer,
    now: datetime,
    promises: PromisePolicy,
    cases: CasePolicy,
    filters: QueueFilters | None = None,
) -> list[FollowUpRow]:
    """The follow-ups due at ``now`` in the officer's scope, in the queue's order."""
    wanted = filters or QueueFilters()
    if wanted.kind is not None:  # a case kind: cases only
        return []
    scope = branch_scope(session, officer)
    rows = _broken_promises(session, scope, now, promises, cases, wanted)
    if wanted.follow_up in (None, FollowUpKind.call_back, FollowUpKind.record_promise):
        rows += _calls(session, scope, now, cases, wanted)
    rows.sort(
        key=lambda r: (
            not r.late,
            r.probability is None,
            -(r.probability or 0.0),
            r.due_at,
            r.item_id,
        )
    )
    return rows[:QUEUE_LIMIT]


def _broken_promises(
    session: Session,
    scope: frozenset[int] | None,
    now: datetime,
    policy: PromisePolicy,
    cases: CasePolicy,
    wanted: QueueFilters,
) -> list[FollowUpRow]:
    later = aliased(PromiseToPay)
    # Local days run at most a day ahead of UTC: promises due since are not over anywhere yet.
    last_possible = now.date() - timedelta(days=policy.grace_days)
    query = (
        select(PromiseToPay, Borrower, Loan)
        .join(Borrower, Borrower.id == PromiseToPay.borrower_id)
        .join(Loan, Loan.id == PromiseToPay.loan_id)
        .where(
            Loan.status.in_(_COLLECTED),
            PromiseToPay.status.in_(_UNKEPT),
            PromiseToPay.promised_date <= last_possible,
            ~exists().where(
                later.loan_id == PromiseToPay.loan_id, later.created_at > PromiseToPay.created_at
            ),
            ~exists().where(
                Case.borrower_id == PromiseToPay.borrower_id,
                Case.status.in_(case_service.UNRESOLVED),
            ),
        )
        .order_by(PromiseToPay.promised_date, PromiseToPay.id)
    )
    query = query.where(*_narrowed(scope, wanted, Borrower.officer_id))
    rows = []
    for promise, borrower, loan in session.execute(query):
        branch = session.get_one(Branch, borrower.branch_id)
        end = promise_service.window_end(promise.promised_date, branch.timezone, policy.grace_days)
        if end > now or _covered(session, promise, now) or _case_since(session, borrower, end):
            continue
        call = _latest_loan_call(session, loan, end)
        kind, item_id, due = FollowUpKind.broken_promise, promise.id, end
        if call is not None:
            followed = _follow_up(call.call_outcome, call.created_at, cases)
            if followed is None:  # the officer dealt with it on the phone
                continue
            (kind, due), item_id = followed, call.id
        if due > now or wanted.follow_up not in (None, kind):
            continue
        row = _row(
            session,
            kind,
            item_id,
            due,
            now,
            borrower,
            branch,
            loan,
            borrower.officer_id,
            promise=promise,
            call_outcome=call.call_outcome if call else None,
            loan_call=call,
        )
        if wanted.bucket is None or row.bucket == wanted.bucket:
            rows.append(row)
        if len(rows) == QUEUE_LIMIT:
            break
    return rows


def _covered(session: Session, promise: PromiseToPay, now: datetime) -> bool:
    """Payments on the loan since the promise was made reach its amount (late ones too)."""
    payments = session.scalars(
        select(Payment).where(
            Payment.loan_id == promise.loan_id,
            Payment.received_at >= promise.created_at,
            Payment.received_at <= now,
        )
    )
    paid = promise_service.paid_towards(promise, payments, now + timedelta(microseconds=1))
    return paid >= promise.amount


def _latest_loan_call(session: Session, loan: Loan, moment: datetime) -> LoanCall | None:
    query = (
        select(LoanCall)
        .where(LoanCall.loan_id == loan.id, LoanCall.created_at >= moment)
        .order_by(LoanCall.created_at.desc(), LoanCall.id.desc())
    )
    return session.scalars(query.limit(1)).first()


def _follow_up(
    outcome: CallOutcome, called_at: datetime, policy: CasePolicy
) -> tuple[FollowUpKind, datetime] | None:
    """What a call leaves to do, and from when: call again after ``call_back_hours`` when it
    reached nobody, record the promise made on the phone at once; nothing after another outcome.
    """
    if outcome in _CALL_AGAIN:
        return FollowUpKind.call_back, called_at + timedelta(hours=policy.call_back_hours)
    if outcome is CallOutcome.promise_to_pay:
        return FollowUpKind.record_promise, called_at
    return None


def _case_since(session: Session, borrower: Borrower, moment: datetime) -> bool:
    query = select(Case.id).where(Case.borrower_id == borrower.id, Case.created_at >= moment)
    return session.scalar(query.limit(1)) is not None


def _calls(
    session: Session,
    scope: frozenset[int] | None,
    now: datetime,
    policy: CasePolicy,
    wanted: QueueFilters,
) -> list[FollowUpRow]:
    later = aliased(CaseNote)
    query = (
        select(CaseNote, Case, Borrower)
        .join(Case, Case.id == CaseNote.case_id)
        .join(Borrower, Borrower.id == Case.borrower_id)
        .where(
            Case.status.in_(case_service.UNRESOLVED),
            CaseNote.call_outcome.in_(_FOLLOWED_CALLS),
            ~exists().where(
                later.case_id == CaseNote.case_id,
                later.call_outcome.is_not(None),
                (later.created_at > CaseNote.created_at)
                | and_(later.created_at == CaseNote.created_at, later.id > CaseNote.id),
            ),
        )
        .order_by(CaseNote.created_at, CaseNote.id)
    )
    query = query.where(*_narrowed(scope, wanted, Case.assigned_officer_id))
    rows = []
    for note, found, borrower in session.execute(query):
        outcome = note.call_outcome
        followed = _follow_up(outcome, note.created_at, policy) if outcome else None
        assert followed is not None  # the query reads followed calls only
        kind, due = followed
        if kind is FollowUpKind.record_promise and _promise_since(
            session, borrower, note.created_at
        ):
            continue
        if due > now or (wanted.follow_up is not None and wanted.follow_up != kind):
            continue
        loan = session.get(Loan, found.loan_id) if found.loan_id is not None else None
        row = _row(
            session,
            kind,
            note.id,
            due,
            now,
            borrower,
            session.get_one(Branch, borrower.branch_id),
            loan,
            found.assigned_officer_id,
            case=found,
            call_outcome=outcome,
        )
        if wanted.bucket is None or row.bucket == wanted.bucket:
            rows.append(row)
        if len(rows) == QUEUE_LIMIT:
            break
    return rows


def _promise_since(session: Session, borrower: Borrower, moment: datetime) -> bool:
    query = select(PromiseToPay.id).where(
        PromiseToPay.borrower_id == borrower.id, PromiseToPay.created_at >= moment
    )
    return session.scalar(query.limit(1)) is not None


def _narrowed(
    scope: frozenset[int] | None, wanted: QueueFilters, officer: InstrumentedAttribute[int | None]
) -> list[ColumnElement[bool]]:
    """The conditions of the branch scope and of the branch and officer filters."""
    conditions: list[ColumnElement[bool]] = []
    if scope is not None:
        conditions.append(Borrower.branch_id.in_(sorted(scope)))
    if wanted.branch_id is not None:
        conditions.append(Borrower.branch_id == wanted.branch_id)
    if wanted.officer_id is not None:
        conditions.append(officer == wanted.officer_id)
    return conditions


def _row(
    session: Session,
    kind: FollowUpKind,
    item_id: int,
    due: datetime,
    now: datetime,
    borrower: Borrower,
    branch: Branch,
    loan: Loan | None,
    officer_id: int | None,
    *,
    promise: PromiseToPay | None = None,
    case: Case | None = None,
    call_outcome: CallOutcome | None = None,
    loan_call: LoanCall | None = None,
) -> FollowUpRow:
    today = loan_service.local_today(branch.timezone, now)
    officer = session.get(Officer, officer_id) if officer_id is not None else None
    arrears = bucket = currency = None
    risk = None
    probability = None
    if loan is not None:
        position = loan_service.loan_position(session, loan=loan, now=now)
        arrears, currency = position.arrears, loan.currency
        bucket = arrears_bucket(position.days_past_due)
        score = risk_service.latest_score(session, loan_id=loan.id)
        if score is not None:
            risk, probability = score_view(score), float(score.probability)
    return FollowUpRow(
        kind=kind,
        item_id=item_id,
        due_at=due,
        late=loan_service.local_today(branch.timezone, due) < today,
        borrower_id=borrower.id,
        borrower_first_name=borrower_service.first_name(borrower),
        borrower_phone_masked=borrower_service.mask_phone(borrower.phone_e164),
        branch_code=branch.code,
        branch_timezone=branch.timezone,
        officer_name=officer.name if officer else None,
        currency=currency,
        arrears=arrears,
        bucket=bucket,
        risk=risk,
        probability=probability,
        promise=promise,
        case=case,
        call_outcome=call_outcome,
        loan_call=loan_call,
    )
