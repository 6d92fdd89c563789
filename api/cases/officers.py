"""What officers do to cases: find them, act on them (acknowledge, called, resolve) from a
chat button or the console, record their calls and notes, escalate the ones nobody took in
time, list them. A call about a loan outside any case (a broken promise's follow-up) is
recorded here too, audited as a call on a case is.

Opening cases, and what a case tells its officer and borrower, is :mod:`api.cases.service`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Officer, StaffRole
from api.branches.service import in_scope
from api.cases import service
from api.cases.exceptions import (
    CaseClosed,
    CaseIdempotencyKeyReused,
    CaseNotFound,
    NotCaseOfficer,
    OfficerNotFound,
    OutcomeRequired,
)
from api.cases.models import (
    CallOutcome,
    Case,
    CaseKind,
    CaseNote,
    CaseOutcome,
    CaseStatus,
    LoanCall,
)
from api.ledger import service as ledger
from api.loans import service as loan_service
from api.loans.models import Loan
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


def _authorize(session: Session, case: Case, borrower: Borrower, officer: Officer) -> None:
    """The assigned officer, the one it was escalated to, a manager of the borrower's branch or
    an admin may act on a case."""
    if officer.id in (case.assigned_officer_id, case.escalated_to_id):
        return
    if officer.role != StaffRole.officer and in_scope(session, officer, borrower.branch_id):
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
    """Acknowledge, mark called or resolve a case as the officer behind a chat.

    Raises:
        CaseNotFound, OfficerNotFound, and what :func:`act_as` raises.
    """
    case = find_case(session, reference)
    officer = officer_by_chat(session, chat_id=officer_chat_id, channel=officer_channel)
    return act_as(
        session=session, case=case, action=action, officer=officer, now=now, outcome=outcome
    )


def act_as(
    *,
    session: Session,
    case: Case,
    action: str,
    officer: Officer,
    now: datetime,
    outcome: CaseOutcome | None = None,
    via: str | None = None,
) -> Case:
    """Acknowledge, mark called or resolve ``case`` as ``officer`` (chat buttons and console).

    Repeating an action (a button pressed twice) changes nothing and tells nobody twice.
    ``via`` names where the officer acted (``console``) in the ledger's audit detail.

    Raises:
        NotCaseOfficer, CaseClosed, OutcomeRequired.
    """
    borrower = session.get_one(Borrower, case.borrower_id)
    _authorize(session, case, borrower, officer)
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
        detail={
            "officer_id": officer.id,
            **({"outcome": outcome.value} if outcome else {}),
            **({"via": via} if via else {}),
        },
    )
    service.tell_borrower(session, case=case, borrower=borrower, key=key, args=args, now=now)
    session.flush()
    return case


# Calls that reached the borrower: the case becomes "called" and the borrower is told so.
# A call that reached nobody only claims the case (if nobody had), and tells the borrower that.
REACHED = frozenset(
    {
        CallOutcome.answered,
        CallOutcome.promise_to_pay,
        CallOutcome.dispute,
        CallOutcome.paid,
        CallOutcome.refused,
    }
)


def record_call(
    *,
    session: Session,
    case: Case,
    officer: Officer,
    outcome: CallOutcome,
    now: datetime,
    words: str | None = None,
    via: str | None = None,
    idempotency_key: str | None = None,
) -> CaseNote:
    """Record a call to the borrower and what came of it, as a note on ``case``.

    The case moves as the chat's buttons move it (:func:`act_as`: "called" when the call
    reached the borrower, else "acknowledge"). The same ``idempotency_key`` (a form sent twice)
    records nothing more.

    Raises:
        NotCaseOfficer, CaseClosed, CaseIdempotencyKeyReused.
    """
    earlier = _earlier_note(session, case, idempotency_key)
    if earlier is not None:
        return earlier
    action = "called" if outcome in REACHED else "acknowledge"
    act_as(session=session, case=case, action=action, officer=officer, now=now, via=via)
    note = _officer_note(session, case, officer, now, words, outcome, idempotency_key)
    _audit_note(session, case, officer, note, now, via)
    return note


def add_note(
    *,
    session: Session,
    case: Case,
    officer: Officer,
    words: str,
    now: datetime,
    via: str | None = None,
    idempotency_key: str | None = None,
) -> CaseNote:
    """Keep an officer's note on an unresolved case; the borrower is not told.

    Raises:
        NotCaseOfficer, CaseClosed, CaseIdempotencyKeyReused.
    """
    earlier = _earlier_note(session, case, idempotency_key)
    if earlier is not None:
        return earlier
    _authorize(session, case, session.get_one(Borrower, case.borrower_id), officer)
    if case.status == CaseStatus.resolved:
        raise CaseClosed()
    note = _officer_note(session, case, officer, now, words, None, idempotency_key)
    _audit_note(session, case, officer, note, now, via)
    return note


def _earlier_note(session: Session, case: Case, idempotency_key: str | None) -> CaseNote | None:
    if idempotency_key is None:
        return None
    note = session.scalar(select(CaseNote).where(CaseNote.idempotency_key == idempotency_key))
    if note is not None and note.case_id != case.id:
        raise CaseIdempotencyKeyReused()
    return note


def _officer_note(
    session: Session,
    case: Case,
    officer: Officer,
    now: datetime,
    words: str | None,
    outcome: CallOutcome | None,
    idempotency_key: str | None,
) -> CaseNote:
    note = CaseNote(
        case_id=case.id,
        kind=case.kind,
        officer_id=officer.id,
        officer_words=(words or "").strip() or None,
        call_outcome=outcome,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    session.add(note)
    session.flush()
    return note


def _audit_note(
    session: Session, case: Case, officer: Officer, note: CaseNote, now: datetime, via: str | None
) -> None:
    """The ledger keeps who wrote or called and when; the note's words stay on the note."""
    _audit(
        session,
        officer=officer,
        now=now,
        via=via,
        outcome=note.call_outcome,
        borrower_id=case.borrower_id,
        loan_id=case.loan_id,
        case_id=case.id,
        record={"note_id": note.id},
    )


def _audit(
    session: Session,
    *,
    officer: Officer,
    now: datetime,
    via: str | None,
    outcome: CallOutcome | None,
    borrower_id: int,
    loan_id: int | None,
    case_id: int | None,
    record: dict[str, int],
) -> None:
    """One ledger event for an officer's call (``kind=call``, by phone) or note, naming the
    officer and the ``record`` that keeps the words."""
    ledger.record(
        session=session,
        at=now,
        direction="outbound" if outcome else "internal",
        kind="call" if outcome else "case",
        decision=outcome.value if outcome else "noted",
        rule=f"officer:{officer.role.value}",
        borrower_id=borrower_id,
        loan_id=loan_id,
        case_id=case_id,
        channel="phone" if outcome else None,
        detail={"officer_id": officer.id, **record, **({"via": via} if via else {})},
    )


def record_loan_call(
    *,
    session: Session,
    loan: Loan,
    officer: Officer,
    outcome: CallOutcome,
    now: datetime,
    words: str | None = None,
    via: str | None = None,
    idempotency_key: str | None = None,
) -> LoanCall:
    """Record a call to a loan's borrower outside any case, and what came of it.

    No case moves and the borrower is not told (nothing of theirs changed); the ledger keeps
    the call as it keeps a call on a case. The caller checks that ``officer`` may act for the
    borrower (their branch scope). The same ``idempotency_key`` (a form sent twice) records
    nothing more.

    Raises:
        CaseIdempotencyKeyReused: the key was used for a call about another loan.
    """
    if idempotency_key is not None:
        earlier = session.scalar(
            select(LoanCall).where(LoanCall.idempotency_key == idempotency_key)
        )
        if earlier is not None:
            if earlier.loan_id != loan.id:
                raise CaseIdempotencyKeyReused()
            return earlier
    call = LoanCall(
        borrower_id=loan.borrower_id,
        loan_id=loan.id,
        officer_id=officer.id,
        call_outcome=outcome,
        officer_words=(words or "").strip() or None,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    session.add(call)
    session.flush()
    _audit(
        session,
        officer=officer,
        now=now,
        via=via,
        outcome=outcome,
        borrower_id=loan.borrower_id,
        loan_id=loan.id,
        case_id=None,
        record={"call_id": call.id},
    )
    session.flush()
    return call


def _unpause_if_last(session: Session, case: Case) -> None:
    """Collection resumes only when none of the borrower's hardship cases is still open."""
    if case.kind is not CaseKind.hardship:
        return
    still_open = session.scalar(
        select(Case.id).where(
            Case.borrower_id == case.borrower_id,
            Case.kind == CaseKind.hardship,
            Case.status.in_(service.UNRESOLVED),
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
        manager = service.branch_manager(session, borrower.branch_id)
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
        service.alert_officer(
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
        query = query.where(Case.status.in_(service.UNRESOLVED))
    elif status is not None:
        query = query.where(Case.status == CaseStatus(status))
    return list(session.scalars(query))
