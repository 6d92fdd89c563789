"""The officer's queue: whom to call first today and why.

Open cases in the officer's scope: missed deadlines first, then by the latest risk score of the
case's loan (:func:`api.risk.service.latest_scores`; unscored cases after scored ones), then the
oldest. Each row shows the score's band and reasons; filters narrow the queue to a branch, an
officer, an arrears bucket (days past due from :func:`api.loans.service.loan_position`) or a kind.

Acting on a case goes through :func:`api.cases.officers.act_as`, the function the chat buttons
use, so the console has no rules of its own; it only narrows what an officer can reach to
their branch scope (:func:`api.branches.service.branch_scope`), answering "not found" outside it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, and_, case, select
from sqlalchemy.orm import Session

from api.borrowers import service as borrower_service
from api.borrowers.models import Borrower
from api.branches.models import Branch, Officer
from api.branches.service import branch_scope
from api.cases import officers
from api.cases import service as case_service
from api.cases.exceptions import CaseNotFound
from api.cases.models import Case, CaseKind, CaseNote, CaseStatus
from api.console.exceptions import OutsideScope
from api.kpis.schemas import BUCKETS
from api.loans import service as loan_service
from api.loans.models import Loan
from api.risk import features as risk_features
from api.risk import scorecard
from api.risk import service as risk_service
from api.risk.models import RiskScore

QUEUE_LIMIT = 200


@dataclass(frozen=True)
class RiskView:
    """A loan's latest score as officers read it: a band and the features behind it."""

    band: str
    points: int
    reasons: list[tuple[str, str]]  # (feature, bin), most points first


class FollowUpKind(enum.StrEnum):
    """What is due beside open cases (:mod:`api.console.followups`)."""

    broken_promise = "broken_promise"
    call_back = "call_back"
    record_promise = "record_promise"


@dataclass(frozen=True)
class QueueFilters:
    """What the queue is narrowed to; None is everything in the officer's scope. ``kind`` keeps
    cases of that kind only, ``follow_up`` follow-ups of that kind only."""

    branch_id: int | None = None
    officer_id: int | None = None
    bucket: str | None = None
    kind: CaseKind | None = None
    follow_up: FollowUpKind | None = None


@dataclass(frozen=True)
class QueueRow:
    """One case as the queue shows it: never the borrower's full name, phone or documents."""

    case: Case
    borrower_first_name: str
    borrower_phone_masked: str
    branch_code: str
    branch_timezone: str
    assigned_officer_name: str | None
    arrears: Decimal | None
    currency: str | None
    sla_missed: bool
    bucket: str | None = None
    risk: RiskView | None = None


def sla_missed(case_row: Case, now: datetime) -> bool:
    """Nobody took the case before its deadline (the rule the escalation applies)."""
    return case_row.status == CaseStatus.open and case_row.sla_due_at < now


def _scoped(scope: frozenset[int] | None) -> Select[Case]:
    query = select(Case).join(Borrower, Borrower.id == Case.borrower_id)
    if scope is not None:
        query = query.where(Borrower.branch_id.in_(sorted(scope)))
    return query


def open_cases(
    session: Session, *, officer: Officer, now: datetime, filters: QueueFilters | None = None
) -> list[QueueRow]:
    """Unresolved cases of the officer's branches: missed deadlines first, then the riskiest
    loans (unscored last), then by age; narrowed by ``filters`` (already within scope)."""
    wanted = filters or QueueFilters()
    if wanted.follow_up is not None:
        return []
    missed = and_(Case.status == CaseStatus.open, Case.sla_due_at < now)
    latest = risk_service.latest_scores()
    query = (
        _scoped(branch_scope(session, officer))
        .outerjoin(latest, latest.c.loan_id == Case.loan_id)
        .where(Case.status.in_(case_service.UNRESOLVED))
        .order_by(
            case((missed, 0), else_=1),
            case((latest.c.probability.is_(None), 1), else_=0),
            latest.c.probability.desc(),
            Case.created_at,
            Case.id,
        )
    )
    if wanted.branch_id is not None:
        query = query.where(Borrower.branch_id == wanted.branch_id)
    if wanted.officer_id is not None:
        query = query.where(Case.assigned_officer_id == wanted.officer_id)
    if wanted.kind is not None:
        query = query.where(Case.kind == wanted.kind)
    if wanted.bucket is None:
        query = query.limit(QUEUE_LIMIT)
    rows = []
    # Days past due come from the loan rules, not SQL, so the bucket is filtered row by row.
    for found in session.scalars(query):
        row = queue_row(session, found, now)
        if wanted.bucket is None or row.bucket == wanted.bucket:
            rows.append(row)
        if len(rows) == QUEUE_LIMIT:
            break
    return rows


def queue_filters(
    session: Session,
    officer: Officer,
    *,
    branch: str | None = None,
    officer_id: str | None = None,
    bucket: str | None = None,
    kind: str | None = None,
) -> QueueFilters:
    """The filters of the queue's form; an empty field is no filter.

    Raises:
        OutsideScope: a branch or officer outside ``officer``'s scope, or an unknown value.
    """
    branch_ids = {b.code: b.id for b in scope_branches(session, officer)}
    officer_ids = {str(o.id): o.id for o in scope_officers(session, officer)}
    kinds: dict[str, CaseKind | FollowUpKind] = {k.value: k for k in (*CaseKind, *FollowUpKind)}
    buckets = {b: b for b in BUCKETS}
    try:
        chosen = kinds[kind] if kind else None
        return QueueFilters(
            branch_id=branch_ids[branch.strip()] if branch else None,
            officer_id=officer_ids[officer_id.strip()] if officer_id else None,
            bucket=buckets[bucket] if bucket else None,
            kind=chosen if isinstance(chosen, CaseKind) else None,
            follow_up=chosen if isinstance(chosen, FollowUpKind) else None,
        )
    except KeyError:
        raise OutsideScope() from None


def scope_branches(session: Session, officer: Officer) -> list[Branch]:
    """The branches the officer may narrow the queue to."""
    scope = branch_scope(session, officer)
    query = select(Branch).order_by(Branch.code)
    if scope is not None:
        query = query.where(Branch.id.in_(sorted(scope)))
    return list(session.scalars(query))


def scope_officers(session: Session, officer: Officer) -> list[Officer]:
    """The officers of those branches, whose cases the queue can be narrowed to."""
    scope = branch_scope(session, officer)
    query = select(Officer).order_by(Officer.name, Officer.id)
    if scope is not None:
        query = query.where(Officer.branch_id.in_(sorted(scope)))
    return list(session.scalars(query))


def arrears_bucket(days_past_due: int) -> str:
    """The roll-rate bucket of the KPIs (0, 1-30, 31-60, 61-90, 90+)."""
    return BUCKETS[risk_features.bucket(days_past_due)]


def risk_view(session: Session, loan_id: int) -> RiskView | None:
    score = risk_service.latest_score(session, loan_id=loan_id)
    return score_view(score) if score is not None else None


def score_view(score: RiskScore) -> RiskView:
    reasons = [(reason["feature"], reason["bin"]) for reason in score.reasons]
    return RiskView(scorecard.band(score.probability), score.points, reasons)


def scoped_case(session: Session, *, officer: Officer, reference: str) -> Case:
    """The case with ``reference`` if the officer's scope reaches it.

    Raises:
        CaseNotFound: no such case, or it belongs to a branch outside the officer's scope (the
            two answers are the same, so references of other branches cannot be probed).
    """
    query = _scoped(branch_scope(session, officer)).where(
        Case.reference == reference.strip().upper()
    )
    found = session.scalar(query)
    if found is None:
        raise CaseNotFound()
    return found


def claim(session: Session, *, officer: Officer, reference: str, now: datetime) -> Case:
    """Take a case from the queue: the chat's "acknowledge", the borrower is told.

    Raises:
        CaseNotFound, and what :func:`api.cases.officers.act_as` raises (NotCaseOfficer, ...).
    """
    found = scoped_case(session, officer=officer, reference=reference)
    return officers.act_as(
        session=session, case=found, action="acknowledge", officer=officer, now=now, via="console"
    )


def queue_row(session: Session, found: Case, now: datetime) -> QueueRow:
    borrower = session.get_one(Borrower, found.borrower_id)
    branch = session.get_one(Branch, borrower.branch_id)
    assigned = (
        session.get(Officer, found.assigned_officer_id) if found.assigned_officer_id else None
    )
    arrears: Decimal | None = None
    currency: str | None = None
    bucket: str | None = None
    if found.loan_id is not None:
        loan = session.get_one(Loan, found.loan_id)
        position = loan_service.loan_position(session, loan=loan, now=now)
        arrears, currency = position.arrears, loan.currency
        bucket = arrears_bucket(position.days_past_due)
    return QueueRow(
        case=found,
        borrower_first_name=borrower_service.first_name(borrower),
        borrower_phone_masked=borrower_service.mask_phone(borrower.phone_e164),
        branch_code=branch.code,
        branch_timezone=branch.timezone,
        assigned_officer_name=assigned.name if assigned else None,
        arrears=arrears,
        currency=currency,
        sla_missed=sla_missed(found, now),
        bucket=bucket,
        risk=risk_view(session, found.loan_id) if found.loan_id is not None else None,
    )


@dataclass(frozen=True)
class NoteView:
    """A note on a case: a later request of the borrower's, or an officer's note or call."""

    note: CaseNote
    officer_name: str | None


def case_notes(session: Session, found: Case) -> list[NoteView]:
    query = (
        select(CaseNote, Officer.name)
        .outerjoin(Officer, Officer.id == CaseNote.officer_id)
        .where(CaseNote.case_id == found.id)
        .order_by(CaseNote.created_at.desc(), CaseNote.id.desc())
    )
    return [NoteView(note, name) for note, name in session.execute(query)]
