"""What a case tells people: the officer's alert (and the manager's escalation) and the
borrower's updates, each an outbox row written in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from api.borrowers import service as borrower_service
from api.borrowers.models import Borrower, Channel
from api.branches.models import Officer
from api.cases.models import Case, CaseOutcome
from api.ledger import service as ledger
from api.loans import service as loan_service
from api.loans.models import Loan
from api.outbox import service as outbox
from i18n import moment, money, nested
from i18n.messages.cases import MESSAGES

# Chats the notifier can deliver to (the terminal chat is interactive only).
DELIVERABLE = (Channel.telegram, Channel.whatsapp)


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


def _record_suppressed(session: Session, *, case: Case, key: str, rule: str, now: datetime) -> None:
    """Keep in the ledger that ``key`` about ``case`` was not sent, and why."""
    ledger.record(
        session=session,
        at=now,
        direction="outbound",
        kind="case",
        decision="suppressed",
        rule=rule,
        borrower_id=case.borrower_id,
        case_id=case.id,
        message_key=key,
    )


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
    """Queue ``key`` to the officer's chat; an officer with no chat is recorded as unreachable."""
    if not officer.channel or not officer.chat_id:
        _record_suppressed(session, case=case, key=key, rule="officer_unreachable", now=now)
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
    identities = [
        i
        for i in borrower_service.borrower_identities(session, borrower.id)
        if i.channel in DELIVERABLE
    ]
    preferred = [i for i in identities if i.channel.value == case.channel]
    candidates = preferred or identities
    if not candidates:
        _record_suppressed(session, case=case, key=key, rule="no_verified_chat", now=now)
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
