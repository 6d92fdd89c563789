"""Officers work cases from their chat: acknowledge, mark called, resolve; a case nobody
acknowledged before its SLA goes to the branch manager."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Officer, StaffRole
from api.cases import messaging
from api.cases.exceptions import (
    CaseClosed,
    CaseNotFound,
    NotCaseOfficer,
    OfficerNotFound,
    OutcomeRequired,
)
from api.cases.models import Case, CaseKind, CaseOutcome, CaseStatus
from api.cases.service import UNRESOLVED, branch_manager
from api.ledger import service as ledger
from api.loans import service as loan_service
from i18n import nested


def find_case(session: Session, reference: str) -> Case:
    case = session.scalar(select(Case).where(Case.reference == reference.strip().upper()))
    if case is None:
        raise CaseNotFound()
    return case


def officer_by_chat(session: Session, *, chat_id: str, channel: str | None = None) -> Officer:
    query = select(Officer).where(Officer.chat_id == chat_id)
    if channel is not None:
        query = query.where(Officer.channel == channel)
    officer = session.scalar(query.order_by(Officer.id))
    if officer is None:
        raise OfficerNotFound()
    return officer


def _authorize(case: Case, borrower: Borrower, officer: Officer) -> None:
    if officer.id in (case.assigned_officer_id, case.escalated_to_id):
        return
    if officer.role == StaffRole.manager and officer.branch_id == borrower.branch_id:
        return
    raise NotCaseOfficer()


def act(
    *,
    session: Session,
    reference: str,
    action: str,
    officer_chat_id: str,
    now: datetime,
    officer_channel: str | None = None,
    outcome: CaseOutcome | None = None,
) -> Case:
    """Acknowledge, mark called or resolve a case as its officer (or the branch manager).

    Repeating an action (a button pressed twice) changes nothing and tells nobody twice.

    Raises:
        CaseNotFound, OfficerNotFound, NotCaseOfficer, CaseClosed, OutcomeRequired.
    """
    case = find_case(session, reference)
    officer = officer_by_chat(session, chat_id=officer_chat_id, channel=officer_channel)
    borrower = session.get_one(Borrower, case.borrower_id)
    _authorize(case, borrower, officer)
    if case.status == CaseStatus.resolved:
        if action == "resolve" and outcome == case.outcome:
            return case
        raise CaseClosed()

    if action == "acknowledge":
        if case.status != CaseStatus.open:
            return case
        case.status = CaseStatus.acknowledged
        case.acknowledged_at = now
        args: dict[str, Any] = {"reference": case.reference, "officer_name": officer.name}
        key = "cases.update.acknowledged"
    elif action == "called":
        if case.status == CaseStatus.called:
            return case
        case.status = CaseStatus.called
        case.acknowledged_at = case.acknowledged_at or now
        case.called_at = now
        args = {"reference": case.reference, "officer_name": officer.name}
        key = "cases.update.called"
    elif action == "resolve":
        if outcome is None:
            raise OutcomeRequired()
        case.status = CaseStatus.resolved
        case.outcome = outcome
        case.acknowledged_at = case.acknowledged_at or now
        case.resolved_at = now
        args = {"reference": case.reference, "outcome": nested(f"cases.outcome.{outcome.value}")}
        key = "cases.update.resolved"
        session.flush()
        _unpause_if_last(session, case)
    else:  # pragma: no cover - the router only routes the three actions
        raise ValueError(action)

    ledger.record(
        session=session,
        at=now,
        direction="internal",
        kind="case",
        decision=case.status.value,
        rule=f"officer:{officer.role.value}",
        borrower_id=borrower.id,
        loan_id=case.loan_id,
        case_id=case.id,
        detail={"officer_id": officer.id, **({"outcome": outcome.value} if outcome else {})},
    )
    messaging.tell_borrower(session, case=case, borrower=borrower, key=key, args=args, now=now)
    session.flush()
    return case


def _unpause_if_last(session: Session, case: Case) -> None:
    """Collection resumes only when none of the borrower's hardship cases is still open."""
    if case.kind is not CaseKind.hardship:
        return
    still_open = session.scalar(
        select(Case.id).where(
            Case.borrower_id == case.borrower_id,
            Case.kind == CaseKind.hardship,
            Case.status.in_(UNRESOLVED),
        )
    )
    if still_open is None:
        for loan in loan_service.loans_of(session, case.borrower_id):
            loan.collection_paused = False


def escalate_overdue(*, session: Session, now: datetime) -> list[Case]:
    """Hand every case nobody acknowledged before its SLA to the branch manager."""
    overdue = list(
        session.scalars(
            select(Case)
            .where(
                Case.status == CaseStatus.open,
                Case.escalated_at.is_(None),
                Case.sla_due_at < now,
            )
            .order_by(Case.sla_due_at, Case.id)
        )
    )
    for case in overdue:
        borrower = session.get_one(Borrower, case.borrower_id)
        manager = branch_manager(session, borrower.branch_id)
        case.escalated_at = now
        case.escalated_to_id = manager.id if manager else None
        ledger.record(
            session=session,
            at=now,
            direction="internal",
            kind="case",
            decision="escalated" if manager else "escalation_failed",
            rule="sla_missed" if manager else "no_manager",
            borrower_id=borrower.id,
            loan_id=case.loan_id,
            case_id=case.id,
        )
        if manager is None:
            continue
        assigned = session.get(Officer, case.assigned_officer_id)
        messaging.alert_officer(
            session,
            case=case,
            borrower=borrower,
            officer=manager,
            key="cases.escalation_alert",
            business_key=f"case:{case.reference}:escalation",
            now=now,
            extra={"officer_name": assigned.name if assigned else ""},
        )
    session.flush()
    return overdue


def list_cases(session: Session, *, status: str | None, limit: int = 200) -> list[Case]:
    """Cases by SLA deadline; ``status=open`` means every case not yet resolved."""
    query = select(Case).order_by(Case.sla_due_at, Case.id).limit(limit)
    if status == "open":
        query = query.where(Case.status.in_(UNRESOLVED))
    elif status is not None:
        query = query.where(Case.status == CaseStatus(status))
    return list(session.scalars(query))
