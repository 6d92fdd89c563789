"""A borrower's page: their loans where they stand, and one timeline of what happened to them.

The timeline gathers the schedule, payments, promises (with how they were kept), cases and
their notes, officers' calls about a loan outside any case, the messages queued for the
borrower (outbox), the contact ledger (messages received, decisions not to send, officers'
actions) and consents. Every query is of this borrower's own rows; of their group it shows the
other members' names and nothing else.
Entries carry a message key and tagged arguments (:mod:`i18n`), so the page renders them in the
officer's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers import service as borrower_service
from api.borrowers.models import Borrower, Consent
from api.branches.models import Branch, Officer
from api.branches.service import in_scope
from api.cases.models import Case, CaseNote, CaseStatus, LoanCall
from api.ledger.models import ContactEvent
from api.loans import service as loan_service
from api.loans.models import Loan
from api.loans.rules import LoanPosition
from api.outbox.models import OutboxMessage
from api.payments.models import Payment
from api.promises.models import PromiseStatus, PromiseToPay
from i18n import day, message_keys, money, nested, render

# Of each source, the newest rows shown: a page, not an export.
SOURCE_LIMIT = 200
_LEDGER_KINDS = frozenset(
    {
        "call",
        "case",
        "chat",
        "consent",
        "incentive",
        "language",
        "reminder",
        "status",
        "verification",
    }
)
_DIRECTIONS = ("inbound", "outbound", "internal")


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: what (``key`` with ``args``), when, and how it ended."""

    at: datetime
    kind: str  # schedule | payment | promise | case | note | message | contact | consent
    key: str
    args: dict[str, Any]
    status_key: str | None = None
    on: date | None = None  # a calendar day (an installment's due date) rather than a moment
    code: str | None = None  # the ledger's own decision and rule codes, shown as they are
    quote: str | None = None  # an officer's own words, shown as written


@dataclass(frozen=True)
class LoanLine:
    loan: Loan
    position: LoanPosition


@dataclass(frozen=True)
class BorrowerView:
    borrower: Borrower
    phone_masked: str
    branch: Branch
    officer_name: str | None
    loans: list[LoanLine]
    group_members: list[str]  # names only: never another borrower's debt
    entries: list[Entry]


def scoped_borrower(session: Session, *, officer: Officer, borrower_id: int) -> Borrower | None:
    """The borrower if the officer's branch scope reaches them; else None, as if missing."""
    found = session.get(Borrower, borrower_id)
    if found is None or not in_scope(session, officer, found.branch_id):
        return None
    return found


def borrower_view(session: Session, *, borrower: Borrower, now: datetime) -> BorrowerView:
    branch = loan_service.branch_of(session, borrower)
    loans = loan_service.loans_of(session, borrower.id)
    officer = session.get(Officer, borrower.officer_id) if borrower.officer_id else None
    entries = [
        *_schedule(session, loans, branch.timezone),
        *_payments(session, loans),
        *_promises(session, borrower.id),
        *_cases(session, borrower.id),
        *_loan_calls(session, loans),
        *_messages(session, borrower.id),
        *_contacts(session, borrower.id),
        *_consents(session, borrower.id),
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return BorrowerView(
        borrower=borrower,
        phone_masked=borrower_service.mask_phone(borrower.phone_e164),
        branch=branch,
        officer_name=officer.name if officer else None,
        loans=[
            LoanLine(loan, loan_service.loan_position(session, loan=loan, now=now))
            for loan in loans
        ],
        group_members=_group_members(session, borrower),
        entries=entries,
    )


def _group_members(session: Session, borrower: Borrower) -> list[str]:
    if borrower.group_id is None:
        return []
    query = (
        select(Borrower.full_name)
        .where(Borrower.group_id == borrower.group_id, Borrower.id != borrower.id)
        .order_by(Borrower.full_name)
    )
    return list(session.scalars(query))


def _schedule(session: Session, loans: list[Loan], timezone: str) -> list[Entry]:
    entries = []
    for loan in loans:
        for item in loan_service.installments_of(session, loan.id):
            start_of_day = datetime.combine(item.due_date, time(), tzinfo=ZoneInfo(timezone))
            entries.append(
                Entry(
                    at=start_of_day,
                    kind="schedule",
                    key="console.timeline.installment",
                    args={
                        "seq": item.seq,
                        "account": loan.account_reference,
                        "due": money(item.total_due, loan.currency),
                        "paid": money(item.total_paid, loan.currency),
                    },
                    status_key=f"console.installment.{item.status.value}",
                    on=item.due_date,
                )
            )
    return entries


def _payments(session: Session, loans: list[Loan]) -> list[Entry]:
    accounts = {loan.id: loan.account_reference for loan in loans}
    query = (
        select(Payment)
        .where(Payment.loan_id.in_(sorted(accounts)))
        .order_by(Payment.received_at.desc())
        .limit(SOURCE_LIMIT)
    )
    return [
        Entry(
            at=p.received_at,
            kind="payment",
            key="console.timeline.payment",
            args={"amount": money(p.amount, p.currency), "account": accounts[p.loan_id]},
        )
        for p in session.scalars(query)
    ]


def _promises(session: Session, borrower_id: int) -> list[Entry]:
    query = (
        select(PromiseToPay)
        .where(PromiseToPay.borrower_id == borrower_id)
        .order_by(PromiseToPay.created_at.desc())
        .limit(SOURCE_LIMIT)
    )
    return [
        Entry(
            at=p.created_at,
            kind="promise",
            key="console.timeline.promise",
            args={
                "amount": money(p.amount, p.currency),
                "date": day(p.promised_date),
                "paid": money(p.amount_paid, p.currency),
            },
            status_key=f"console.promise.{PromiseStatus(p.status).value}",
        )
        for p in session.scalars(query)
    ]


def _cases(session: Session, borrower_id: int) -> list[Entry]:
    cases = list(
        session.scalars(
            select(Case)
            .where(Case.borrower_id == borrower_id)
            .order_by(Case.created_at.desc())
            .limit(SOURCE_LIMIT)
        )
    )
    entries = []
    for found in cases:
        args = {"reference": found.reference, "kind": nested(f"cases.kind.{found.kind.value}")}
        entries.append(
            Entry(
                at=found.created_at,
                kind="case",
                key="console.timeline.case_opened",
                args=args,
                status_key=f"console.status.{found.status.value}",
            )
        )
        if found.status == CaseStatus.resolved and found.resolved_at and found.outcome:
            outcome = nested(f"officer.outcome.{found.outcome.value}")
            entries.append(
                Entry(
                    at=found.resolved_at,
                    kind="case",
                    key="console.timeline.case_resolved",
                    args={"reference": found.reference, "outcome": outcome},
                )
            )
    return entries + _case_notes(session, {c.id: c.reference for c in cases})


def _case_notes(session: Session, references: dict[int, str]) -> list[Entry]:
    query = (
        select(CaseNote, Officer.name)
        .outerjoin(Officer, Officer.id == CaseNote.officer_id)
        .where(CaseNote.case_id.in_(sorted(references)))
        .order_by(CaseNote.created_at.desc())
        .limit(SOURCE_LIMIT)
    )
    entries = []
    for note, officer_name in session.execute(query):
        args: dict[str, Any] = {"reference": references[note.case_id], "officer": officer_name}
        if note.call_outcome is not None:
            key = "console.timeline.call"
            args["outcome"] = nested(f"console.call.{note.call_outcome.value}")
        elif note.officer_id is not None:
            key = "console.timeline.note"
        else:
            key = "console.timeline.request_added"
            args["kind"] = nested(f"cases.kind.{note.kind.value}")
        entries.append(
            Entry(at=note.created_at, kind="note", key=key, args=args, quote=note.officer_words)
        )
    return entries


def _loan_calls(session: Session, loans: list[Loan]) -> list[Entry]:
    accounts = {loan.id: loan.account_reference for loan in loans}
    query = (
        select(LoanCall, Officer.name)
        .join(Officer, Officer.id == LoanCall.officer_id)
        .where(LoanCall.loan_id.in_(sorted(accounts)))
        .order_by(LoanCall.created_at.desc())
        .limit(SOURCE_LIMIT)
    )
    return [
        Entry(
            at=call.created_at,
            kind="note",
            key="console.followup.timeline_call",
            args={
                "account": accounts[call.loan_id],
                "officer": officer_name,
                "outcome": nested(f"console.call.{call.call_outcome.value}"),
            },
            quote=call.officer_words,
        )
        for call, officer_name in session.execute(query)
    ]


def _messages(session: Session, borrower_id: int) -> list[Entry]:
    """What was queued for the borrower to read (not the alerts officers got about them), in
    the words they read: the message's own language, whatever the officer's."""
    known = frozenset(message_keys())
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.borrower_id == borrower_id, OutboxMessage.officer_id.is_(None))
        .order_by(OutboxMessage.created_at.desc())
        .limit(SOURCE_LIMIT)
    )
    entries = []
    for message in session.scalars(query):
        text = (
            render(message.message_key, message.locale, **message.args)
            if message.message_key in known
            else message.message_key
        )
        entries.append(
            Entry(
                at=message.sent_at or message.send_at,
                kind="message",
                key="console.timeline.message",
                args={"channel": message.channel, "text": text},
                status_key=f"console.delivery.{message.status.value}",
            )
        )
    return entries


def _contacts(session: Session, borrower_id: int) -> list[Entry]:
    """The contact ledger: every decision about contacting the borrower, and officers' acts."""
    query = (
        select(ContactEvent)
        .where(ContactEvent.borrower_id == borrower_id)
        .order_by(ContactEvent.at.desc(), ContactEvent.id.desc())
        .limit(SOURCE_LIMIT)
    )
    entries = []
    for event in session.scalars(query):
        kind = event.kind if event.kind in _LEDGER_KINDS else "other"
        direction = event.direction if event.direction in _DIRECTIONS else "internal"
        entries.append(
            Entry(
                at=event.at,
                kind="contact",
                key=f"console.timeline.contact.{direction}",
                args={"kind": nested(f"console.ledger.{kind}")},
                code=" · ".join(filter(None, (event.channel, event.decision, event.rule))),
            )
        )
    return entries


def _consents(session: Session, borrower_id: int) -> list[Entry]:
    entries = []
    for consent in session.scalars(select(Consent).where(Consent.borrower_id == borrower_id)):
        changes = (
            (consent.opted_in_at, "console.timeline.opted_in"),
            (consent.opted_out_at, "console.timeline.opted_out"),
        )
        entries += [
            Entry(at, "consent", key, {"channel": consent.channel.value})
            for at, key in changes
            if at is not None
        ]
    return entries
