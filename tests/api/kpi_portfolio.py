"""A small portfolio for the KPI tests (``tests/api/test_kpis.py``, ``tests/cli/test_kpis_cli.py``).

As of 2026-11-30 (a month-end): the period is November 1-30, the roll rates go from the
October month-end to the November one. Branch A is in Nairobi (UTC+3, KES), branch B in
Kampala (UTC+3, UGX). Monthly installments as (due, principal, interest, fees); payments are
recorded through ``record_payment`` so that they are allocated as the API allocates them.

Branch A (KES):

- L1 on time: Oct 1, Nov 1, Dec 1 (1000 + 100 each); pays 1100 on Oct 1 and 1100 at
  Oct 31 21:30 UTC = Nov 1 00:30 in Nairobi (on time, and in November).
- L2 cured: Oct 10, Nov 10, Dec 10 (1000 + 100); pays 2200 on Nov 12 (both late).
- L3 deep arrears: Sep 20, Oct 20, Nov 20 (2000 + 200); nothing by the end of Nov 30 in
  Nairobi (2200 at Nov 30 22:00 UTC = Dec 1 01:00 there: after the as-of day).
- L4 90+: Jul 15, Aug 15 (500 + 50); 300 on Jul 10 (interest 50, principal 250).
- L5 new: disbursed Nov 5, Dec 5 (3000 + 300); nothing paid.
- L6 turned late: Oct 25, Nov 25, Dec 25 (1000 + 100); 1100 on Oct 24, 600 on Nov 27.
- L7 repaid: Oct 5, Nov 5 (1000 + 100); 1100 on Oct 5, 1100 at Nov 5 22:00 UTC = Nov 6
  01:00 in Nairobi (one day late there).
- L8 written off: Oct 1 (5000 + 500): off the books, in no figure.
- L9 one day late: disbursed Nov 1, Nov 29 (400 + 40); nothing paid.

Branch B (UGX): L10 Oct 10, Nov 10 (100000 + 10000), nothing paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, Channel, Consent
from api.branches.models import Branch
from api.cases.models import Case, CaseKind, CaseNote, CaseStatus
from api.ledger import service as ledger
from api.loans.models import Loan, LoanStatus
from api.payments.service import record_payment
from api.promises.models import PromiseStatus, PromiseToPay
from tests.api.factories import aware, make_borrower, make_branch, make_loan

AS_OF = date(2026, 11, 30)
D = Decimal


@dataclass
class Portfolio:
    a: Branch
    b: Branch
    loans: dict[str, Loan]

    def borrower(self, session: Session, name: str) -> Borrower:
        return session.get_one(Borrower, self.loans[name].borrower_id)


def _loan(
    session: Session,
    branch: Branch,
    schedule: list[tuple[date, str, str]],
    *,
    disbursed_on: date,
    currency: str,
) -> Loan:
    borrower = make_borrower(session, branch)
    return make_loan(
        session,
        borrower,
        schedule=[(due, p, i, "0.00") for due, p, i in schedule],
        currency=currency,
        disbursed_on=disbursed_on,
    )


def _pay(session: Session, loan: Loan, amount: str, at: datetime) -> None:
    record_payment(
        session=session,
        loan=loan,
        amount=D(amount),
        currency=loan.currency,
        external_reference=f"PAY-{loan.id}-{at.isoformat()}",
        received_at=at,
        method="mobile_money",
    )


def _event(
    session: Session,
    p: Portfolio,
    name: str,
    at: datetime,
    *,
    kind: str = "reminder",
    decision: str = "sent",
    channel: str = "telegram",
    direction: str = "outbound",
) -> None:
    loan = p.loans[name]
    ledger.record(
        session=session,
        at=at,
        direction=direction,
        kind=kind,
        decision=decision,
        rule="test",
        borrower_id=loan.borrower_id,
        loan_id=loan.id,
        channel=channel,
    )


def _promise(
    session: Session, loan: Loan, amount: str, promised: date, created: datetime
) -> PromiseToPay:
    promise = PromiseToPay(
        loan_id=loan.id,
        borrower_id=loan.borrower_id,
        amount=D(amount),
        currency=loan.currency,
        promised_date=promised,
        channel="telegram",
        status=PromiseStatus.pending,
        amount_paid=D("0.00"),
        created_at=created,
    )
    session.add(promise)
    session.flush()
    return promise


def _opt_out(session: Session, loan: Loan, channel: Channel, at: datetime, source: str) -> None:
    session.add(
        Consent(
            borrower_id=loan.borrower_id,
            channel=channel,
            opted_in=False,
            opted_out_at=at,
            source=source,
        )
    )


def _case(session: Session, borrower_id: int, kind: CaseKind, created: datetime) -> Case:
    case = Case(
        reference=f"C-{borrower_id}-{kind.value[:4]}-{created:%m%d}",
        kind=kind,
        borrower_id=borrower_id,
        channel="telegram",
        status=CaseStatus.open,
        sla_due_at=created,
        created_at=created,
    )
    session.add(case)
    session.flush()
    return case


# name: (branch, currency, disbursed on, first due date, installments, principal, interest)
LOANS = {
    "L1": ("a", "KES", date(2026, 9, 1), date(2026, 10, 1), 3, "1000", "100"),
    "L2": ("a", "KES", date(2026, 9, 1), date(2026, 10, 10), 3, "1000", "100"),
    "L3": ("a", "KES", date(2026, 8, 1), date(2026, 9, 20), 3, "2000", "200"),
    "L4": ("a", "KES", date(2026, 6, 1), date(2026, 7, 15), 2, "500", "50"),
    "L5": ("a", "KES", date(2026, 11, 5), date(2026, 12, 5), 1, "3000", "300"),
    "L6": ("a", "KES", date(2026, 9, 1), date(2026, 10, 25), 3, "1000", "100"),
    "L7": ("a", "KES", date(2026, 9, 1), date(2026, 10, 5), 2, "1000", "100"),
    "L8": ("a", "KES", date(2026, 9, 1), date(2026, 10, 1), 1, "5000", "500"),
    "L9": ("a", "KES", date(2026, 11, 1), date(2026, 11, 29), 1, "400", "40"),
    "L10": ("b", "UGX", date(2026, 9, 1), date(2026, 10, 10), 2, "100000", "10000"),
}


def _monthly(first: date, count: int) -> list[date]:
    months = [first.month - 1 + n for n in range(count)]
    return [first.replace(year=first.year + m // 12, month=m % 12 + 1) for m in months]


def build(session: Session) -> Portfolio:
    a = make_branch(session, timezone="Africa/Nairobi", currency="KES")
    b = make_branch(session, timezone="Africa/Kampala", currency="UGX", country="UG")
    loans = {
        name: _loan(
            session,
            a if branch == "a" else b,
            [(due, principal, interest) for due in _monthly(first_due, count)],
            disbursed_on=disbursed_on,
            currency=currency,
        )
        for name, (branch, currency, disbursed_on, first_due, count, principal, interest) in (
            LOANS.items()
        )
    }
    loans["L8"].status = LoanStatus.written_off
    p = Portfolio(a, b, loans)

    # Promises (grace 2 days): counted when promised date + 2 falls in November.
    _promise(session, loans["L2"], "2200", date(2026, 11, 12), aware(2026, 11, 8))  # kept
    _promise(session, loans["L6"], "1100", date(2026, 11, 26), aware(2026, 11, 24))  # partial
    _promise(session, loans["L3"], "1000", date(2026, 11, 15), aware(2026, 11, 10))  # broken
    # Kept only thanks to the grace: paid Nov 6 01:00 local for Nov 4; the window ends Nov 7.
    _promise(session, loans["L7"], "1100", date(2026, 11, 4), aware(2026, 11, 3))
    # Its window ends Dec 1: not in November's figures.
    _promise(session, loans["L3"], "500", date(2026, 11, 29), aware(2026, 11, 25))

    # Payments, in time order (each one judges the promises of its loan as of its time).
    _pay(session, loans["L4"], "300", aware(2026, 7, 10))
    _pay(session, loans["L1"], "1100", aware(2026, 10, 1))
    _pay(session, loans["L7"], "1100", aware(2026, 10, 5))
    _pay(session, loans["L6"], "1100", aware(2026, 10, 24))
    _pay(session, loans["L1"], "1100", datetime.fromisoformat("2026-10-31T21:30:00+00:00"))
    _pay(session, loans["L7"], "1100", datetime.fromisoformat("2026-11-05T22:00:00+00:00"))
    _pay(session, loans["L2"], "2200", aware(2026, 11, 12))
    _pay(session, loans["L6"], "600", aware(2026, 11, 27))
    _pay(session, loans["L3"], "2200", datetime.fromisoformat("2026-11-30T22:00:00+00:00"))

    # The ledger: reminders and their outcomes, receipts, opt-outs.
    _event(session, p, "L1", aware(2026, 10, 30))  # October: not counted
    _event(session, p, "L1", aware(2026, 11, 3), kind="incentive")
    _event(session, p, "L7", aware(2026, 11, 1))  # its payment came 4 days 13 h later
    _event(session, p, "L2", aware(2026, 11, 10))  # paid 48 h later: converted
    _event(session, p, "L3", aware(2026, 11, 15))  # nothing paid
    _event(session, p, "L6", aware(2026, 11, 24))  # paid exactly 72 h later: converted
    _event(session, p, "L10", aware(2026, 11, 5))  # branch B, nothing paid
    _event(session, p, "L9", aware(2026, 11, 29), channel="whatsapp")  # too young to count
    for hour, receipt in ((10, "delivered"), (11, "read")):
        _event(
            session,
            p,
            "L9",
            aware(2026, 11, 29, hour),
            kind="status",
            decision=receipt,
            channel="whatsapp",
        )
    _event(session, p, "L4", aware(2026, 11, 20), decision="suppressed")
    _event(session, p, "L4", aware(2026, 11, 21), decision="rescheduled")  # not an outcome
    _event(session, p, "L5", aware(2026, 11, 21), decision="failed")  # the bot was blocked
    _event(
        session,
        p,
        "L5",
        aware(2026, 11, 21),
        kind="status",
        decision="opted_out",
        direction="internal",
    )
    _opt_out(session, loans["L5"], Channel.telegram, aware(2026, 11, 21), "provider_blocked")
    # Said in chat: L3 in November, L2 in October (not counted).
    for name, at in (("L3", aware(2026, 11, 16)), ("L2", aware(2026, 10, 15))):
        _event(session, p, name, at, kind="consent", decision="opted_out", direction="inbound")
    # An opt-out known only from the consent (said before the chat was verified).
    _opt_out(session, loans["L6"], Channel.whatsapp, aware(2026, 11, 20), "chat")

    # Complaints: a case opened in November, a complaint noted in November on an October case,
    # a hardship case (not a complaint).
    _case(session, loans["L3"].borrower_id, CaseKind.complaint, aware(2026, 11, 16))
    october = _case(session, loans["L2"].borrower_id, CaseKind.complaint, aware(2026, 10, 20))
    session.add(
        CaseNote(case_id=october.id, kind=CaseKind.complaint, created_at=aware(2026, 11, 14))
    )
    _case(session, loans["L1"].borrower_id, CaseKind.hardship, aware(2026, 11, 2))
    session.flush()
    return p
