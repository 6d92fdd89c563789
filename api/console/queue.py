"""The officer's queue: open cases in their scope, missed deadlines first, then the oldest.

Acting on a case goes through :func:`api.cases.officers.act_as`, the function the chat buttons
use, so the console has no rules of its own; it only narrows what an officer can reach to
their branch scope (:func:`api.branches.service.branch_scope`), answering "not found" outside it.
"""

from __future__ import annotations

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
from api.cases.models import Case, CaseNote, CaseStatus
from api.loans import service as loan_service
from api.loans.models import Loan

QUEUE_LIMIT = 200


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


def sla_missed(case_row: Case, now: datetime) -> bool:
    """Nobody took the case before its deadline (the rule the escalation applies)."""
    return case_row.status == CaseStatus.open and case_row.sla_due_at < now


def _scoped(scope: frozenset[int] | None) -> Select[Case]:
    query = select(Case).join(Borrower, Borrower.id == Case.borrower_id)
    if scope is not None:
        query = query.where(Borrower.branch_id.in_(sorted(scope)))
    return query


def open_cases(session: Session, *, officer: Officer, now: datetime) -> list[QueueRow]:
    """Unresolved cases of the officer's branches: missed deadlines first, then by age."""
    missed = and_(Case.status == CaseStatus.open, Case.sla_due_at < now)
    query = (
        _scoped(branch_scope(session, officer))
        .where(Case.status.in_(case_service.UNRESOLVED))
        .order_by(case((missed, 0), else_=1), Case.created_at, Case.id)
        .limit(QUEUE_LIMIT)
    )
    return [queue_row(session, c, now) for c in session.scalars(query)]


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
    if found.loan_id is not None:
        loan = session.get_one(Loan, found.loan_id)
        arrears = loan_service.loan_position(session, loan=loan, now=now).arrears
        currency = loan.currency
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
