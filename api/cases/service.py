"""Cases: a borrower asks for help, an officer is told at once and must act before the SLA.

Everything a case triggers (the officer alert, the borrower's updates, the manager's
escalation) is an outbox row written in the same transaction, so no alert is lost or sent for a
case that was rolled back.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.borrowers import service as borrower_service
from api.borrowers.models import Borrower
from api.branches.models import Officer, StaffRole
from api.cases.exceptions import (
    CaseIdempotencyKeyReused,
    NoOfficer,
)
from api.cases.models import Case, CaseKind, CaseNote, CaseOutcome, CaseStatus
from api.core.config import CasePolicy, get_settings
from api.ledger import service as ledger
from api.loans import service as loan_service
from api.loans.exceptions import NoActiveLoan
from api.loans.models import Loan
from api.outbox import service as outbox
from api.payments import service as payment_service
from api.payments.models import Payment
from i18n import moment, money, nested
from i18n.messages.cases import MESSAGES

# No 0/O, 1/I/L or U/V look-alikes: references are read aloud and typed on phones.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
REFERENCE_LENGTH = 5
PREFIXES = {
    CaseKind.hardship: "HD",
    CaseKind.officer_request: "OR",
    CaseKind.complaint: "CP",
    CaseKind.payment_claim: "PC",
}
UNRESOLVED = (CaseStatus.open, CaseStatus.acknowledged, CaseStatus.called)
RELIEFS = ("more_time", "smaller_installments", "pause")
CATEGORY_PATTERN = re.compile(r"^[a-z_]{1,32}$")
# Chats the notifier can deliver to (the terminal chat is interactive only).
CLAIM_LOOKBACK = timedelta(days=30)
CAP_WINDOW = timedelta(hours=24)


class Disposition(enum.StrEnum):
    """What became of a borrower's request for a case."""

    opened = "opened"  # a new case; its officer is alerted
    added = "added"  # added to the borrower's unresolved case of the same kind
    capped = "capped"  # over the daily cap: added to their latest case, nobody alerted


@dataclass(frozen=True)
class OpenedCase:
    case: Case
    officer: Officer
    created: bool  # True only when this request opened (and alerted) a new case
    disposition: Disposition = Disposition.opened


@dataclass(frozen=True)
class CaseRequest:
    """What the borrower asked for, kept on the case or on a note added to it."""

    kind: CaseKind
    channel: str | None = None
    category: str | None = None
    borrower_words: str | None = None
    requested_relief: str | None = None
    details: dict[str, Any] | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ClaimAnswer:
    payment: Payment | None
    case: Case | None
    expected_within_hours: int
    disposition: Disposition | None = None


def new_reference(session: Session, kind: CaseKind) -> str:
    while True:
        suffix = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
        reference = f"{PREFIXES[kind]}-{suffix}"
        if session.scalar(select(Case.id).where(Case.reference == reference)) is None:
            return reference


def sla_hours(policy: CasePolicy, kind: CaseKind) -> int:
    return {
        CaseKind.hardship: policy.hardship_sla_hours,
        CaseKind.officer_request: policy.officer_request_sla_hours,
        CaseKind.complaint: policy.complaint_sla_hours,
        CaseKind.payment_claim: policy.payment_claim_sla_hours,
    }[kind]


def branch_manager(session: Session, branch_id: int) -> Officer | None:
    return session.scalar(
        select(Officer)
        .where(Officer.branch_id == branch_id, Officer.role == StaffRole.manager)
        .order_by(Officer.id)
    )


def _assignee(session: Session, borrower: Borrower) -> Officer:
    if borrower.officer_id is not None:
        return session.get_one(Officer, borrower.officer_id)
    manager = branch_manager(session, borrower.branch_id)
    if manager is None:
        raise NoOfficer()
    return manager


def open_case(
    *,
    session: Session,
    borrower: Borrower,
    kind: CaseKind,
    now: datetime,
    channel: str | None = None,
    loan: Loan | None = None,
    category: str | None = None,
    borrower_words: str | None = None,
    requested_relief: str | None = None,
    details: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    policy: CasePolicy | None = None,
) -> OpenedCase:
    """Open a case, assign it, pause collection for hardship and alert the officer.

    A borrower has at most one unresolved case of each kind: a later request is added to it as
    a note and alerts nobody. Past the daily caps of :class:`CasePolicy` a request is added to
    the borrower's latest case instead of opening one. A retry with the same Idempotency-Key
    answers what the first request did.

    Raises:
        CaseIdempotencyKeyReused: the key was used by a request of another kind or borrower.
        NoOfficer: the borrower has no officer and the branch no manager.
    """
    policy = policy or get_settings().cases
    request = CaseRequest(
        kind=kind,
        channel=channel,
        category=category,
        borrower_words=borrower_words,
        requested_relief=requested_relief,
        details=details,
        idempotency_key=idempotency_key,
    )
    earlier = _earlier_request(session, request, borrower)
    if earlier is not None:
        return earlier
    unresolved = _unresolved_case(session, borrower.id, kind)
    if unresolved is not None:
        return _add_note(session, unresolved, request, borrower, now, policy, capped=False)
    if _over_daily_cap(session, borrower.id, kind, now, policy):
        latest = _latest_case(session, borrower.id)
        if latest is not None:
            return _add_note(session, latest, request, borrower, now, policy, capped=True)

    officer = _assignee(session, borrower)
    case = Case(
        reference=new_reference(session, kind),
        kind=kind,
        borrower_id=borrower.id,
        loan_id=loan.id if loan else None,
        category=category,
        borrower_words=borrower_words,
        requested_relief=requested_relief,
        channel=channel,
        details=details,
        status=CaseStatus.open,
        assigned_officer_id=officer.id,
        sla_due_at=now + timedelta(hours=sla_hours(policy, kind)),
        idempotency_key=idempotency_key,
        created_at=now,
    )
    try:
        # Two deliveries of one request (same key) or two requests of one kind can race: the
        # unique key and the one-unresolved-case index let one win; the other answers the
        # winner's case and alerts nobody twice.
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError:
        raced = _earlier_request(session, request, borrower)
        if raced is not None:
            return raced
        winner = _unresolved_case(session, borrower.id, kind)
        if winner is None:
            raise
        return _add_note(session, winner, request, borrower, now, policy, capped=False)
    if kind is CaseKind.hardship:
        # Hardship is the person's, not one loan's: no reminder about any of their loans.
        for open_loan in loan_service.loans_of(session, borrower.id):
            if open_loan.status in loan_service.OPEN_STATUSES:
                open_loan.collection_paused = True
    session.flush()
    ledger.record(
        session=session,
        at=now,
        direction="inbound",
        kind="case",
        decision="opened",
        rule=kind.value,
        borrower_id=borrower.id,
        loan_id=case.loan_id,
        case_id=case.id,
        channel=channel,
    )
    alert_officer(
        session,
        case=case,
        borrower=borrower,
        officer=officer,
        key="cases.officer_alert",
        business_key=f"case:{case.reference}:officer_alert",
        now=now,
    )
    return OpenedCase(case, officer, created=True)


def _earlier_request(
    session: Session, request: CaseRequest, borrower: Borrower
) -> OpenedCase | None:
    """What a request with the same Idempotency-Key did: opened a case or added a note."""
    key = request.idempotency_key
    if key is None:
        return None
    case = session.scalar(select(Case).where(Case.idempotency_key == key))
    disposition = Disposition.opened
    if case is None:
        note = session.scalar(select(CaseNote).where(CaseNote.idempotency_key == key))
        if note is None:
            return None
        if note.kind != request.kind:
            raise CaseIdempotencyKeyReused()
        case = session.get_one(Case, note.case_id)
        disposition = Disposition.capped if note.capped else Disposition.added
    elif case.kind != request.kind:
        raise CaseIdempotencyKeyReused()
    if case.borrower_id != borrower.id:
        raise CaseIdempotencyKeyReused()
    officer = session.get_one(Officer, case.assigned_officer_id)
    return OpenedCase(case, officer, created=False, disposition=disposition)


def _unresolved_case(session: Session, borrower_id: int, kind: CaseKind) -> Case | None:
    return session.scalar(
        select(Case).where(
            Case.borrower_id == borrower_id, Case.kind == kind, Case.status.in_(UNRESOLVED)
        )
    )


def _latest_case(session: Session, borrower_id: int) -> Case | None:
    """The case a capped request is added to: the newest unresolved one, else the newest."""
    return session.scalar(
        select(Case)
        .where(Case.borrower_id == borrower_id)
        .order_by(Case.status.in_(UNRESOLVED).desc(), Case.created_at.desc(), Case.id.desc())
    )


def _over_daily_cap(
    session: Session, borrower_id: int, kind: CaseKind, now: datetime, policy: CasePolicy
) -> bool:
    """Whether opening one more case of ``kind`` would pass a cap of the last 24 hours.

    Hardship is neither capped nor counted: it pauses collection, and its officer must resolve
    the previous one before another can open, so it cannot flood anyone.
    """
    if kind is CaseKind.hardship:
        return False
    rows = session.execute(
        select(Case.kind, func.count())
        .where(
            Case.borrower_id == borrower_id,
            Case.kind != CaseKind.hardship,
            Case.created_at > now - CAP_WINDOW,
        )
        .group_by(Case.kind)
    )
    opened = {CaseKind(k): int(n) for k, n in rows}
    kind_caps = {
        CaseKind.payment_claim: policy.max_payment_claims_per_day,
        CaseKind.officer_request: policy.max_officer_requests_per_day,
    }
    if sum(opened.values()) >= policy.max_cases_per_day:
        return True
    return kind in kind_caps and opened.get(kind, 0) >= kind_caps[kind]


def _add_note(
    session: Session,
    case: Case,
    request: CaseRequest,
    borrower: Borrower,
    now: datetime,
    policy: CasePolicy,
    *,
    capped: bool,
) -> OpenedCase:
    """Keep a later request on ``case`` for its officer, without alerting anyone."""
    notes_today = session.scalar(
        select(func.count())
        .select_from(CaseNote)
        .join(Case, Case.id == CaseNote.case_id)
        .where(
            Case.borrower_id == borrower.id,
            CaseNote.officer_id.is_(None),
            CaseNote.created_at > now - CAP_WINDOW,
        )
    )
    disposition = Disposition.capped if capped else Disposition.added
    if int(notes_today or 0) < policy.max_notes_per_day:
        note = CaseNote(
            case_id=case.id,
            kind=request.kind,
            capped=capped,
            borrower_words=request.borrower_words,
            requested_relief=request.requested_relief,
            details=request.details,
            channel=request.channel,
            idempotency_key=request.idempotency_key,
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(note)
                session.flush()
        except IntegrityError:
            raced = _earlier_request(session, request, borrower)
            if raced is None:
                raise
            return raced
    ledger.record(
        session=session,
        at=now,
        direction="inbound",
        kind="case",
        decision=disposition.value,
        rule=request.kind.value,
        borrower_id=borrower.id,
        loan_id=case.loan_id,
        case_id=case.id,
        channel=request.channel,
    )
    officer = session.get_one(Officer, case.assigned_officer_id)
    return OpenedCase(case, officer, created=False, disposition=disposition)


def _label(prefix: str, value: str | None, unknown: str) -> dict[str, Any]:
    """A translatable label: ``none`` when not given, ``unknown`` when we have no words for it."""
    if not value:
        return nested(f"{prefix}.none")
    key = f"{prefix}.{value}"
    return nested(key if key in MESSAGES else f"{prefix}.{unknown}")


def officer_alert_args(
    session: Session, *, case: Case, borrower: Borrower, now: datetime
) -> dict[str, Any]:
    """Only what an officer needs to act: never the national ID, the full phone or the DOB."""
    branch = loan_service.branch_of(session, borrower)
    days_past_due, arrears, currency = 0, Decimal("0.00"), branch.currency
    if case.loan_id is not None:
        loan = session.get_one(Loan, case.loan_id)
        pos = loan_service.loan_position(session, loan=loan, now=now)
        days_past_due, arrears, currency = pos.days_past_due, pos.arrears, loan.currency
    return {
        "reference": case.reference,
        "kind": nested(f"cases.kind.{case.kind.value}"),
        "category": _label("cases.category", case.category, unknown="other"),
        "relief": _label("cases.relief", case.requested_relief, unknown="none"),
        "first_name": borrower_service.first_name(borrower),
        "phone": borrower_service.mask_phone(borrower.phone_e164),
        "count": days_past_due,
        "arrears": money(arrears, currency),
        "due": moment(case.sla_due_at, tz=branch.timezone),
    }


def officer_buttons(reference: str) -> list[dict[str, str]]:
    buttons = [
        {"key": "cases.button.acknowledge", "payload": f"case:ack:{reference}"},
        {"key": "cases.button.called", "payload": f"case:called:{reference}"},
    ]
    buttons += [
        {"key": f"cases.button.resolve.{o.value}", "payload": f"case:resolve:{reference}:{o.value}"}
        for o in CaseOutcome
    ]
    return buttons


def alert_officer(
    session: Session,
    *,
    case: Case,
    borrower: Borrower,
    officer: Officer,
    key: str,
    business_key: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    if not officer.channel or not officer.chat_id:
        ledger.record(
            session=session,
            at=now,
            direction="outbound",
            kind="case",
            decision="suppressed",
            rule="officer_unreachable",
            borrower_id=borrower.id,
            case_id=case.id,
            message_key=key,
        )
        return
    args = officer_alert_args(session, case=case, borrower=borrower, now=now)
    outbox.enqueue(
        session=session,
        business_key=business_key,
        purpose="officer_alert",
        channel=officer.channel,
        recipient=officer.chat_id,
        locale=officer.locale,
        message_key=key,
        args={**args, **(extra or {})},
        buttons=officer_buttons(case.reference),
        borrower_id=borrower.id,
        officer_id=officer.id,
        loan_id=case.loan_id,
        case_id=case.id,
        send_at=now,
    )


def tell_borrower(
    session: Session,
    *,
    case: Case,
    borrower: Borrower,
    key: str,
    args: dict[str, Any],
    now: datetime,
) -> None:
    """Queue a case update to the borrower's verified chat, in their language."""
    identities = borrower_service.messageable_identities(session, borrower.id)
    preferred = [i for i in identities if i.channel.value == case.channel]
    candidates = preferred or identities
    if not candidates:
        ledger.record(
            session=session,
            at=now,
            direction="outbound",
            kind="case",
            decision="suppressed",
            rule="no_verified_chat",
            borrower_id=borrower.id,
            case_id=case.id,
            message_key=key,
        )
        return
    target = candidates[0]
    outbox.enqueue(
        session=session,
        business_key=f"case:{case.reference}:update:{case.status.value}",
        purpose="case_update",
        channel=target.channel.value,
        recipient=target.external_user_id,
        locale=borrower.preferred_language,
        message_key=key,
        args=args,
        borrower_id=borrower.id,
        loan_id=case.loan_id,
        case_id=case.id,
        send_at=now,
    )


def claim_payment(
    *,
    session: Session,
    borrower: Borrower,
    now: datetime,
    channel: str | None,
    amount: Decimal | None,
    paid_on: date | None,
    reference: str | None,
    idempotency_key: str | None = None,
    policy: CasePolicy | None = None,
) -> ClaimAnswer:
    """Find the payment a borrower says they made; if it has not arrived, open a claim case."""
    policy = policy or get_settings().cases
    branch = loan_service.branch_of(session, borrower)
    loans = loan_service.loans_of(session, borrower.id)
    found = payment_service.find_claimed_payment(
        session,
        loan_ids=[loan.id for loan in loans],
        since=now - CLAIM_LOOKBACK,
        reference=reference,
        amount=amount,
        paid_on=paid_on,
        timezone=branch.timezone,
    )
    if found is not None:
        return ClaimAnswer(found, None, policy.payments_visible_within_hours)
    try:
        loan: Loan | None = loan_service.primary_loan(session, borrower=borrower, now=now)
    except NoActiveLoan:
        loan = None
    details = {
        "amount": str(amount) if amount is not None else None,
        "paid_on": paid_on.isoformat() if paid_on else None,
        "reference": reference,
    }
    opened = open_case(
        session=session,
        borrower=borrower,
        kind=CaseKind.payment_claim,
        now=now,
        channel=channel,
        loan=loan,
        details=details,
        idempotency_key=idempotency_key,
        policy=policy,
    )
    return ClaimAnswer(None, opened.case, policy.payments_visible_within_hours, opened.disposition)
