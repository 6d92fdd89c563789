"""The small, fixed demo portfolio: four known borrowers to try Kopa with.

Their phone numbers, dates of birth and national-ID last digits are documented here and printed
by ``kopa demo``, so anyone can verify as one of them. Dates are relative to the day the demo is
first seeded: each borrower has an installment due in the next few days, and two are in arrears.
Seeding is idempotent: a database that already has the demo borrowers is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.security import hash_secret_factor
from api.loans import rules
from api.models import (
    Borrower,
    BorrowerGroup,
    Branch,
    Channel,
    Consent,
    Frequency,
    Installment,
    Loan,
    LoanStatus,
    Officer,
    Payment,
    PaymentAllocation,
    StaffRole,
)
from portfolio import history


@dataclass(frozen=True)
class DemoBranch:
    code: str
    name: str
    country: str
    timezone: str
    currency: str
    locale: str
    officer: tuple[str, str]  # name, Telegram chat id
    manager: tuple[str, str]
    payment_instructions: dict[str, object]


@dataclass(frozen=True)
class DemoBorrower:
    external_id: str
    name: str
    phone: str
    language: str
    dob: date
    national_id_last4: str
    branch: str
    monthly: bool
    installments: int
    principal: int  # whole currency units
    interest: int
    paid_on_time: int  # installments paid in full, on time
    missed: int  # installments past due and unpaid (the first one may be partly paid)
    part_paid: int  # paid towards the first missed installment
    next_due_in_days: int  # the first installment not yet due falls this many days ahead
    group: str | None = None


DEMO_BRANCHES = (
    DemoBranch(
        "DEMO-NBO",
        "Kopa Demo Nairobi",
        "KE",
        "Africa/Nairobi",
        "KES",
        "sw",
        ("Grace Muthoni", "100000001"),
        ("Peter Kariuki", "100000002"),
        {
            "mobile_money": [{"provider": "M-Pesa", "type": "paybill", "number": "600100"}],
            "bank": None,
            "agents": [{"name": "Kopa Agent Gikomba", "location": "Gikomba market"}],
        },
    ),
    DemoBranch(
        "DEMO-DKR",
        "Kopa Demo Dakar",
        "SN",
        "Africa/Dakar",
        "XOF",
        "fr",
        ("Moussa Sarr", "100000003"),
        ("Aminata Ba", "100000004"),
        {
            "mobile_money": [
                {"provider": "Wave", "type": "merchant", "number": "KOPA-DEMO"},
                {"provider": "Orange Money", "type": "merchant", "number": "221900"},
            ],
            "bank": None,
            "agents": [{"name": "Agence Kopa Médina", "location": "Rue 6 x 11"}],
        },
    ),
    DemoBranch(
        "DEMO-MEX",
        "Kopa Demo Ciudad de México",
        "MX",
        "America/Mexico_City",
        "MXN",
        "es",
        ("Lucía Torres", "100000005"),
        ("Jorge Ramírez", "100000006"),
        {
            "mobile_money": [],
            "bank": {"name": "BBVA México", "method": "SPEI", "account": "012180009876543210"},
            "agents": [{"name": "OXXO", "location": "OXXO"}],
        },
    ),
)

DEMO_BORROWERS = (
    DemoBorrower(
        "DEMO-B001",
        "Amina Wanjiru",
        "+254700000001",
        "sw",
        date(1990, 3, 15),
        "4821",
        "DEMO-NBO",
        monthly=False,
        installments=12,
        principal=12000,
        interest=1320,
        paid_on_time=4,
        missed=0,
        part_paid=0,
        next_due_in_days=2,
    ),
    DemoBorrower(
        "DEMO-B002",
        "Brian Otieno",
        "+254700000002",
        "en",
        date(1985, 7, 2),
        "3307",
        "DEMO-NBO",
        monthly=False,
        installments=16,
        principal=20000,
        interest=2400,
        paid_on_time=3,
        missed=2,
        part_paid=0,
        next_due_in_days=3,
    ),
    DemoBorrower(
        "DEMO-B003",
        "Awa Diop",
        "+221770000001",
        "fr",
        date(1979, 11, 23),
        "6150",
        "DEMO-DKR",
        monthly=False,
        installments=16,
        principal=150000,
        interest=18000,
        paid_on_time=5,
        missed=0,
        part_paid=0,
        next_due_in_days=1,
        group="Groupe Espoir",
    ),
    DemoBorrower(
        "DEMO-B004",
        "María López",
        "+525500000001",
        "es",
        date(1992, 5, 9),
        "2794",
        "DEMO-MEX",
        monthly=True,
        installments=6,
        principal=15000,
        interest=1800,
        paid_on_time=2,
        missed=1,
        part_paid=1200,
        next_due_in_days=5,
    ),
)


@dataclass(frozen=True)
class DemoLoanView:
    """What the demo table shows for one borrower (read back from the database)."""

    borrower: DemoBorrower
    account_reference: str
    currency: str
    next_due: date | None
    next_amount: Decimal | None
    arrears: Decimal
    officer: str
    officer_chat_id: str


def _branch_rows(session: Session) -> dict[str, tuple[Branch, Officer]]:
    out: dict[str, tuple[Branch, Officer]] = {}
    for spec in DEMO_BRANCHES:
        branch = session.scalar(select(Branch).where(Branch.code == spec.code))
        if branch is None:
            branch = Branch(
                code=spec.code,
                name=spec.name,
                country=spec.country,
                timezone=spec.timezone,
                currency=spec.currency,
                payment_instructions=spec.payment_instructions,
                extra_holidays=[],
            )
            session.add(branch)
            session.flush()
            for (name, chat_id), role in (
                (spec.officer, StaffRole.officer),
                (spec.manager, StaffRole.manager),
            ):
                session.add(
                    Officer(
                        branch_id=branch.id,
                        name=name,
                        role=role,
                        channel="telegram",
                        chat_id=chat_id,
                        locale=spec.locale,
                    )
                )
            session.flush()
        officer = session.scalars(
            select(Officer).where(Officer.branch_id == branch.id, Officer.role == StaffRole.officer)
        ).first()
        assert officer is not None
        out[spec.code] = (branch, officer)
    return out


def _first_disbursement(spec: DemoBorrower, today: date) -> tuple[date, list[date]]:
    """The disbursement day that puts the first installment not yet due on the wanted day."""
    upcoming = spec.paid_on_time + spec.missed  # index of the first installment not yet due
    target = today + timedelta(days=spec.next_due_in_days)
    if spec.monthly:
        disbursed = history.add_months(target, -(upcoming + 1))
    else:
        disbursed = target - timedelta(weeks=upcoming + 1)
    return disbursed, history.due_dates(disbursed, monthly=spec.monthly, count=spec.installments)


def ensure_demo_portfolio(session: Session, *, today: date, pepper: str) -> list[DemoLoanView]:
    """Create the demo portfolio unless it is there; answer what to show for each borrower.

    The caller commits.
    """
    branches = _branch_rows(session)
    for spec in DEMO_BORROWERS:
        if session.scalar(select(Borrower.id).where(Borrower.external_id == spec.external_id)):
            continue
        branch, officer = branches[spec.branch]
        _create_borrower(session, spec, branch, officer, today=today, pepper=pepper)
    session.flush()
    return demo_views(session, today=today)


def _create_borrower(
    session: Session,
    spec: DemoBorrower,
    branch: Branch,
    officer: Officer,
    *,
    today: date,
    pepper: str,
) -> None:
    disbursed, dues = _first_disbursement(spec, today)
    group_id = None
    if spec.group:
        group = BorrowerGroup(
            branch_id=branch.id,
            name=spec.group,
            meeting_weekday=dues[0].weekday(),
            meeting_time=time(9, 0),
            meeting_place="",
        )
        session.add(group)
        session.flush()
        group_id = group.id
    zone = ZoneInfo(branch.timezone)
    borrower = Borrower(
        external_id=spec.external_id,
        branch_id=branch.id,
        officer_id=officer.id,
        group_id=group_id,
        full_name=spec.name,
        phone_e164=spec.phone,
        preferred_language=spec.language,
        dob_hash=hash_secret_factor(pepper, spec.dob.isoformat()),
        national_id_last4_hash=hash_secret_factor(pepper, spec.national_id_last4),
    )
    session.add(borrower)
    session.flush()
    for channel in (Channel.telegram, Channel.whatsapp):
        session.add(
            Consent(
                borrower_id=borrower.id,
                channel=channel,
                opted_in=True,
                opted_in_at=datetime.combine(disbursed, time(10), zone),
                source="demo",
            )
        )
    schedule = history.split_schedule(
        dues, principal=spec.principal, interest=spec.interest, upfront_fee=spec.principal // 100
    )
    payments = [
        history.Payment(dues[i] - timedelta(days=1), schedule[i].total)
        for i in range(spec.paid_on_time)
    ]
    if spec.part_paid:
        payments.append(
            history.Payment(dues[spec.paid_on_time] + timedelta(days=2), spec.part_paid)
        )
    history.allocate(schedule, payments)
    suffix = spec.external_id.removeprefix("DEMO-B")
    loan = Loan(
        external_id=f"DEMO-L{suffix}",
        account_reference=f"DEMO{suffix}",
        borrower_id=borrower.id,
        group_id=group_id,
        product="group_weekly"
        if spec.group
        else ("individual_monthly" if spec.monthly else "individual_weekly"),
        principal=Decimal(spec.principal),
        currency=branch.currency,
        annual_interest_rate=Decimal("30.00"),
        frequency=Frequency.monthly if spec.monthly else Frequency.weekly,
        disbursed_on=disbursed,
        status=LoanStatus.active,
        cycle=1,
    )
    session.add(loan)
    session.flush()
    rows = []
    for seq, inst in enumerate(schedule, start=1):
        owed = inst.state
        row = Installment(
            loan_id=loan.id,
            seq=seq,
            due_date=inst.due_date,
            principal_due=owed.principal_due,
            interest_due=owed.interest_due,
            fees_due=owed.fees_due,
            principal_paid=owed.principal_paid,
            interest_paid=owed.interest_paid,
            fees_paid=owed.fees_paid,
            status=owed.status,
            paid_on=owed.paid_on,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    for number, payment in enumerate(payments, start=1):
        record = Payment(
            loan_id=loan.id,
            amount=Decimal(payment.amount),
            currency=branch.currency,
            method="mobile_money" if branch.currency != "MXN" else "bank",
            external_reference=f"DEMO-{suffix}-{number:03d}",
            received_at=datetime.combine(payment.day, time(11, 30), zone).astimezone(UTC),
            source="seed",
        )
        session.add(record)
        session.flush()
        for split in payment.allocations:
            session.add(
                PaymentAllocation(
                    payment_id=record.id,
                    installment_id=rows[split.installment].id,
                    fees=split.fees,
                    interest=split.interest,
                    principal=split.principal,
                )
            )


def demo_views(session: Session, *, today: date) -> list[DemoLoanView]:
    views = []
    for spec in DEMO_BORROWERS:
        borrower = session.scalar(select(Borrower).where(Borrower.external_id == spec.external_id))
        if borrower is None:
            continue
        loan = session.scalars(
            select(Loan).where(Loan.borrower_id == borrower.id).order_by(Loan.id)
        ).first()
        officer = session.get(Officer, borrower.officer_id) if borrower.officer_id else None
        if loan is None or officer is None:
            continue
        installments = session.scalars(
            select(Installment).where(Installment.loan_id == loan.id).order_by(Installment.seq)
        ).all()
        pos = rules.position(installments, today)
        upcoming = pos.next_installment
        views.append(
            DemoLoanView(
                borrower=spec,
                account_reference=loan.account_reference,
                currency=loan.currency,
                next_due=upcoming.due_date if upcoming else None,
                next_amount=rules.outstanding(upcoming) if upcoming else None,
                arrears=pos.arrears,
                officer=officer.name,
                officer_chat_id=officer.chat_id or "",
            )
        )
    return views


def demo_table(views: list[DemoLoanView]) -> Table:
    """The demo borrowers as a rich table (operator-facing, English).

    What a tester types (phone, date of birth, ID digits) never shrinks; the rest wraps, so the
    table stays usable in an 80-column terminal.
    """
    table = Table(title="Demo borrowers", show_lines=True)
    table.add_column("phone, name", min_width=13, max_width=18)
    table.add_column("born", no_wrap=True, min_width=10)
    table.add_column("ID", no_wrap=True, min_width=4)
    table.add_column("loan, next due, arrears", min_width=20)
    table.add_column("officer, Telegram chat")
    for view in views:
        spec = view.borrower
        lines = [view.account_reference]
        if view.next_due and view.next_amount is not None:
            lines.append(f"{view.next_due.isoformat()}: {view.next_amount:,.2f} {view.currency}")
        if view.arrears:
            lines.append(f"arrears {view.arrears:,.2f} {view.currency}")
        table.add_row(
            f"{spec.phone}\n{spec.name} ({spec.language})",
            spec.dob.isoformat(),
            spec.national_id_last4,
            "\n".join(lines),
            f"{view.officer}\n{view.officer_chat_id}",
        )
    return table


def print_demo_portfolio(views: list[DemoLoanView], console: Console | None = None) -> None:
    (console or Console()).print(demo_table(views))
