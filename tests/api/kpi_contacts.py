"""Messages, replies and cases added to the KPI portfolio (``tests/api/kpi_portfolio.py``) for
the right-party-contact rate and the SLA breaches (``tests/api/test_kpis_contacts.py``).

Times are UTC; Nairobi is UTC+3, so the as-of day Nov 30 ends at Nov 30 21:00 UTC and the
right-party-contact count takes messages sent before Nov 29 21:00 UTC (the end of Nov 29).

Messages (``outbox_message`` rows), branch A unless said:

- M1 L1 telegram chat 101, sent Nov 3 09:00; the borrower writes in that chat at 15:00.
- M2 L2 telegram chat 102, sent Nov 10 09:00; the borrower writes 25 hours later: too late.
- M3 L3 whatsapp, sent Nov 15 09:00, read at 12:00 (the portfolio's opt-out of L3 in chat,
  Nov 16 09:00, is exactly 24 hours later: a reply too).
- M4 L6 whatsapp, sent Nov 24 09:00, read 25 hours later (too late), but the borrower asked
  for a case at 20:00 (an inbound ledger event).
- M5 L7 whatsapp, sent Nov 5 09:00, read at 09:30 and answered at 10:00 (reached once).
- Not counted: L9's telegram message of Nov 29 22:00 (Nov 30 in Nairobi: too young); L4's
  failed one; an officer's alert about L3; L1's message of Oct 30; a reply from chat 999.
- Branch B: M10 L10 telegram chat 110, sent Nov 5 09:00, unanswered.

Officers' calls (ledger ``kind = call``): L2 no answer Nov 11, answered Nov 12; L3 answered
Nov 30 (after Nov 29: not counted).

Cases (deadline, taken = acknowledged), besides the portfolio's own (unassigned, deadline at
creation, never taken: L1 hardship Nov 2 and L3 complaint Nov 16 in November, L2's October
complaint):

- Amina: L2 hardship due Nov 5, taken Nov 4 (in time); L3 hardship due Nov 12, taken Nov 13
  (breached); L6 officer request due Nov 28, never taken (breached, still open).
- Baraka: L7 payment claim due Nov 20, resolved Nov 25 (breached); L4 hardship due Nov 30
  10:00 (13:00 in Nairobi), taken Dec 1 (breached, still open at the end of Nov 30); L9
  hardship due Nov 30 22:00 (Dec 1 in Nairobi: not in November); L1 complaint due Oct 30.
- Branch B, Chausiku: L10 hardship due Nov 10, taken Nov 9 (in time).
"""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy.orm import Session

from api.branches.models import Officer
from api.cases.models import Case, CaseKind, CaseStatus
from api.inbox.models import InboxMessage, InboxStatus
from api.ledger import service as ledger
from api.outbox.models import OutboxMessage, OutboxStatus
from tests.api.factories import aware, make_officer
from tests.api.kpi_portfolio import Portfolio

_keys = itertools.count(1)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}+00:00")


def _message(
    session: Session,
    p: Portfolio,
    name: str,
    channel: str,
    recipient: str,
    sent_at: datetime,
    *,
    status: OutboxStatus = OutboxStatus.sent,
    officer: Officer | None = None,
) -> str:
    """An outbox row as the notifier leaves it; returns its provider message id."""
    loan = p.loans[name]
    provider_id = f"msg-{next(_keys)}"
    session.add(
        OutboxMessage(
            business_key=f"kpi:{provider_id}",
            purpose="officer_alert" if officer else "reminder",
            borrower_id=loan.borrower_id,
            officer_id=officer.id if officer else None,
            loan_id=loan.id,
            channel=channel,
            recipient=recipient,
            locale="en",
            message_key="notify.reminder.upcoming",
            status=status,
            send_at=sent_at,
            sent_at=sent_at if status is OutboxStatus.sent else None,
            provider_message_id=provider_id,
        )
    )
    return provider_id


def _read(session: Session, provider_id: str, at: datetime) -> None:
    ledger.record(
        session=session,
        at=at,
        direction="outbound",
        kind="status",
        decision="read",
        channel="whatsapp",
        external_message_id=provider_id,
    )


def _inbound(session: Session, channel: str, chat: str, at: datetime) -> None:
    session.add(
        InboxMessage(
            key=f"in-{next(_keys)}",
            channel=channel,
            chat_key=chat,
            status=InboxStatus.done.value,
            received_at=at,
        )
    )


def _case(
    session: Session,
    p: Portfolio,
    name: str,
    kind: CaseKind,
    officer: Officer,
    due: datetime,
    taken: datetime | None,
    status: CaseStatus,
) -> None:
    loan = p.loans[name]
    session.add(
        Case(
            reference=f"K-{next(_keys)}",
            kind=kind,
            borrower_id=loan.borrower_id,
            loan_id=loan.id,
            channel="telegram",
            status=status,
            assigned_officer_id=officer.id,
            sla_due_at=due,
            created_at=due.replace(day=1),
            acknowledged_at=taken,
            resolved_at=taken if status is CaseStatus.resolved else None,
        )
    )


def add_messages(session: Session, p: Portfolio) -> None:
    """The messages, receipts and replies of the module docstring."""
    wa = {name: f"25470000{n:04d}" for n, name in enumerate(("L3", "L6", "L7"))}
    _message(session, p, "L1", "telegram", "101", aware(2026, 11, 3))
    _inbound(session, "telegram", "tg:101", aware(2026, 11, 3, 15))
    _message(session, p, "L2", "telegram", "102", aware(2026, 11, 10))
    _inbound(session, "telegram", "tg:102", aware(2026, 11, 11, 10))
    m3 = _message(session, p, "L3", "whatsapp", wa["L3"], aware(2026, 11, 15))
    _read(session, m3, aware(2026, 11, 15, 12))
    m4 = _message(session, p, "L6", "whatsapp", wa["L6"], aware(2026, 11, 24))
    _read(session, m4, aware(2026, 11, 25, 10))
    ledger.record(
        session=session,
        at=aware(2026, 11, 24, 20),
        direction="inbound",
        kind="case",
        decision="opened",
        borrower_id=p.loans["L6"].borrower_id,
        channel="whatsapp",
    )
    m5 = _message(session, p, "L7", "whatsapp", wa["L7"], aware(2026, 11, 5))
    _read(session, m5, aware(2026, 11, 5, 9, 30))
    _inbound(session, "whatsapp", f"wa:{wa['L7']}", aware(2026, 11, 5, 10))
    _message(session, p, "L9", "telegram", "109", _utc("2026-11-29T22:00:00"))
    _inbound(session, "telegram", "tg:109", _utc("2026-11-29T23:00:00"))
    _message(session, p, "L4", "telegram", "104", aware(2026, 11, 20), status=OutboxStatus.failed)
    alerted = make_officer(session, p.a, name="Alert Reader")
    _message(session, p, "L3", "telegram", "900", aware(2026, 11, 16), officer=alerted)
    _inbound(session, "telegram", "tg:900", aware(2026, 11, 16, 10))
    _message(session, p, "L1", "telegram", "101", aware(2026, 10, 30))
    _inbound(session, "telegram", "tg:999", aware(2026, 11, 10, 10))
    _message(session, p, "L10", "telegram", "110", aware(2026, 11, 5))
    for name, outcome, at in (
        ("L2", "no_answer", aware(2026, 11, 11)),
        ("L2", "answered", aware(2026, 11, 12)),
        ("L3", "answered", aware(2026, 11, 30)),
    ):
        ledger.record(
            session=session,
            at=at,
            direction="outbound",
            kind="call",
            decision=outcome,
            borrower_id=p.loans[name].borrower_id,
            channel="phone",
        )
    session.flush()


def add_cases(session: Session, p: Portfolio) -> dict[str, Officer]:
    """The officers and cases of the module docstring; the officers by first name."""
    officers = {
        "Amina": make_officer(session, p.a, name="Amina Njeri"),
        "Baraka": make_officer(session, p.a, name="Baraka Otieno"),
        "Chausiku": make_officer(session, p.b, name="Chausiku Achieng"),
    }
    amina, baraka = officers["Amina"], officers["Baraka"]
    hardship, acknowledged = CaseKind.hardship, CaseStatus.acknowledged
    for name, kind, officer, due, taken, status in (
        ("L2", hardship, amina, aware(2026, 11, 5), aware(2026, 11, 4), acknowledged),
        ("L3", hardship, amina, aware(2026, 11, 12), aware(2026, 11, 13), acknowledged),
        ("L6", CaseKind.officer_request, amina, aware(2026, 11, 28), None, CaseStatus.open),
        (
            "L7",
            CaseKind.payment_claim,
            baraka,
            aware(2026, 11, 20),
            aware(2026, 11, 25),
            CaseStatus.resolved,
        ),
        ("L4", hardship, baraka, aware(2026, 11, 30, 10), aware(2026, 12, 1, 8), acknowledged),
        ("L9", hardship, baraka, _utc("2026-11-30T22:00:00"), None, CaseStatus.open),
        (
            "L1",
            CaseKind.complaint,
            baraka,
            aware(2026, 10, 30),
            aware(2026, 10, 29),
            CaseStatus.resolved,
        ),
        (
            "L10",
            hardship,
            officers["Chausiku"],
            aware(2026, 11, 10),
            aware(2026, 11, 9),
            acknowledged,
        ),
    ):
        _case(session, p, name, kind, officer, due, taken, status)
    session.flush()
    return officers
