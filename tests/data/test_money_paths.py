"""One money rule, three ways in: the bulk paths write what ``record_payment`` writes.

Money enters Kopa three ways: a payment confirmation goes through
:func:`api.payments.service.record_payment`; the CSV import writes the payments of the loans it
creates in bulk (:func:`portfolio.importer.load._fresh_loans`); the seed and the demo draw histories
and spread them with :func:`portfolio.history.allocate`. For random small portfolios (a
few loans of a few installments, payments of any size on any day, in branch time zones on either
side of UTC) each bulk path must give the installments, allocations and loan status that
``record_payment`` gives when the same payments arrive one by one.

Every example runs in one transaction that is rolled back, so one migrated database serves them
all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.loans import rules
from api.loans.models import Installment, Loan
from api.payments import service as payment_service
from api.payments.models import Payment, PaymentAllocation
from portfolio import history
from portfolio.importer.load import import_export
from portfolio.importer.validate import (
    BorrowerRow,
    BranchRow,
    ExportSet,
    InstallmentRow,
    LoanRow,
    PaymentRow,
)
from tests.data.helpers_data import PEPPER

# East and west of UTC, and on it: a paid day is the branch's local day.
ZONES = ("Africa/Nairobi", "America/Mexico_City", "Africa/Abidjan")
DISBURSED = date(2026, 3, 2)
EXAMPLES = 100
PAID = ("fees_paid", "interest_paid", "principal_paid")


@dataclass(frozen=True)
class LoanSpec:
    dues: list[tuple[Decimal, Decimal, Decimal]]  # principal, interest, fees of each installment
    payments: list[tuple[datetime, Decimal]]  # received at, amount; in time order


@dataclass(frozen=True)
class Portfolio:
    zone: str
    loans: list[LoanSpec]


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _portfolios(*, whole_units: bool, within_owed: bool) -> st.SearchStrategy[Portfolio]:
    """Small portfolios; the seed draws whole units and never pays more than is owed."""
    step = 100 if whole_units else 1
    amount = st.integers(min_value=0, max_value=40).map(lambda n: _money(n * 25 * step))
    # An installment owes something (the import refuses one that owes nothing).
    due = st.tuples(amount, amount, amount).map(
        lambda d: d if sum(d) else (_money(25 * step), *d[1:])
    )
    paid = st.integers(min_value=1, max_value=80).map(lambda n: _money(n * 25 * step))
    # Minutes after the first due date's midnight UTC: before, on and after the due dates,
    # sometimes at the turn of a local day.
    gap = st.integers(min_value=1, max_value=60 * 24 * 12)

    @st.composite
    def loan(draw: st.DrawFn) -> LoanSpec:
        dues = draw(st.lists(due, min_size=1, max_size=4))
        at = datetime.combine(DISBURSED + timedelta(days=7), datetime.min.time(), UTC)
        payments = []
        left = sum((sum(d) for d in dues), Decimal(0))
        for _ in range(draw(st.integers(min_value=0, max_value=5))):
            at += timedelta(minutes=draw(gap))
            value = draw(paid)
            if within_owed:
                value = min(value, left)
                if value <= 0:
                    break
                left -= value
            payments.append((at, value))
        return LoanSpec(dues, payments)

    return st.builds(
        Portfolio, zone=st.sampled_from(ZONES), loans=st.lists(loan(), min_size=1, max_size=3)
    )


def _export(portfolio: Portfolio, prefix: str, *, with_payments: bool) -> ExportSet:
    """The portfolio as parsed import files; ``prefix`` keeps two copies apart."""
    export = ExportSet(
        branches=[
            BranchRow(1, "TST", "Test branch", "KE", portfolio.zone, "KES", {"mobile_money": []})
        ]
    )
    for n, spec in enumerate(portfolio.loans):
        borrower = f"{prefix}-B{n}"
        export.borrowers.append(
            BorrowerRow(
                n + 1,
                borrower,
                "TST",
                "Test Borrower",
                f"+2547{ord(prefix) % 10}{n:07d}",
                "en",
                date(1980, 1, 1),
                "1234",
                None,
                None,
                None,
            )
        )
        loan = f"{prefix}-L{n}"
        total = sum((sum(d) for d in spec.dues), Decimal(0))
        export.loans.append(
            LoanRow(
                n + 1,
                loan,
                borrower,
                f"{prefix}ACC{n}",
                "test",
                total,
                "KES",
                Decimal("30.00"),
                "weekly",
                DISBURSED,
                "active",
                1,
            )
        )
        for seq, (principal, interest, fees) in enumerate(spec.dues, start=1):
            due_on = DISBURSED + timedelta(weeks=seq)
            export.installments.append(
                InstallmentRow(seq, loan, seq, due_on, principal, interest, fees)
            )
        if with_payments:
            for k, (at, amount) in enumerate(spec.payments):
                export.payments.append(
                    PaymentRow(k + 1, f"{loan}-P{k}", loan, amount, "KES", at, "mobile_money")
                )
    return export


Rows = dict[str, object]


def _rows(session: Session, prefix: str, count: int) -> Rows:
    """Installments, allocations and loan status of ``prefix``'s loans, by position."""
    out: Rows = {}
    for n in range(count):
        loan = session.scalars(select(Loan).where(Loan.external_id == f"{prefix}-L{n}")).one()
        installments = session.scalars(
            select(Installment).where(Installment.loan_id == loan.id).order_by(Installment.seq)
        ).all()
        seq = {i.id: i.seq for i in installments}
        payments = session.scalars(select(Payment).where(Payment.loan_id == loan.id)).all()
        allocations = session.execute(
            select(Payment.external_reference, PaymentAllocation)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(Payment.loan_id == loan.id)
        ).all()
        out[f"loan {n}"] = {
            "status": str(loan.status),
            "installments": [
                (
                    i.seq,
                    i.fees_paid,
                    i.interest_paid,
                    i.principal_paid,
                    str(i.status),
                    i.paid_on,
                )
                for i in installments
            ],
            "allocations": sorted(
                (
                    reference.rsplit("-", 1)[1],
                    seq[a.installment_id],
                    a.fees,
                    a.interest,
                    a.principal,
                )
                for reference, a in allocations
            ),
            "payments": sorted(
                (p.external_reference.rsplit("-", 1)[1], p.amount, p.currency, p.received_at)
                for p in payments
            ),
        }
    return out


def _through_record_payment(session: Session, portfolio: Portfolio) -> Rows:
    """The loans imported without payments, then every payment confirmed one by one."""
    import_export(session, _export(portfolio, "R", with_payments=False), pepper=PEPPER)
    for n, spec in enumerate(portfolio.loans):
        loan = session.scalars(select(Loan).where(Loan.external_id == f"R-L{n}")).one()
        for k, (at, amount) in enumerate(spec.payments):
            payment_service.record_payment(
                session=session,
                loan=loan,
                amount=amount,
                currency="KES",
                external_reference=f"R-L{n}-P{k}",
                received_at=at,
                method="mobile_money",
            )
    session.flush()
    return _rows(session, "R", len(portfolio.loans))


def _through_import(session: Session, portfolio: Portfolio) -> Rows:
    """The loans and their payments in one import: the payments of new loans go in bulk."""
    report = import_export(session, _export(portfolio, "I", with_payments=True), pepper=PEPPER)
    assert report.created.get("payments", 0) == sum(len(s.payments) for s in portfolio.loans)
    return _rows(session, "I", len(portfolio.loans))


def _through_seed_history(portfolio: Portfolio) -> Rows:
    """What the seed writes for the same loans: ``history.allocate`` on whole units, then the
    seed's own row builders (amounts as the strings it hands the driver)."""
    zone = ZoneInfo(portfolio.zone)
    out: Rows = {}
    for n, spec in enumerate(portfolio.loans):
        schedule = [
            history.Installment(
                due_date=DISBURSED + timedelta(weeks=seq),
                fees=int(fees),
                interest=int(interest),
                principal=int(principal),
            )
            for seq, (principal, interest, fees) in enumerate(spec.dues, start=1)
        ]
        payments = [
            history.Payment(at.astimezone(zone).date(), int(amount)) for at, amount in spec.payments
        ]
        history.allocate(schedule, payments)
        # The rows exactly as the seed builds them (portfolio.synthetic), read back by name.
        i, a = history.INSTALLMENT.index, history.ALLOCATION.index
        installments = [
            history.installment_row(
                seq, loan_id=n, seq=seq, due_date=inst.due_date, owed=inst.state
            )
            for seq, inst in enumerate(schedule, start=1)
        ]
        allocations = [
            (
                f"P{k}",
                history.allocation_row(0, payment_id=k, installment_id=s.installment + 1, split=s),
            )
            for k, payment in enumerate(payments)
            for s in payment.allocations
        ]
        out[f"loan {n}"] = {
            "status": "closed" if rules.repaid([inst.state for inst in schedule]) else "active",
            "installments": [
                tuple(r[i[c]] for c in ("seq", *PAID, "status", "paid_on")) for r in installments
            ],
            "allocations": sorted(
                (payment, *(r[a[c]] for c in ("installment_id", "fees", "interest", "principal")))
                for payment, r in allocations
            ),
        }
    return out


def _as_the_seed_writes(rows: Rows) -> Rows:
    """Database values as the seed hands them to the driver: "12.00", "2026-03-09", "paid"."""

    def text(value: object) -> object:
        if isinstance(value, Decimal):
            return str(value)
        return value.isoformat() if isinstance(value, date) else value

    out: Rows = {}
    for name, loan in rows.items():
        assert isinstance(loan, dict)
        out[name] = {
            "status": loan["status"],
            "installments": [tuple(map(text, r)) for r in loan["installments"]],
            "allocations": [tuple(map(text, r)) for r in loan["allocations"]],
        }
    return out


@pytest.fixture
def in_rolled_back_session(fresh_db_url: str) -> Iterator[Callable[[], Session]]:
    """Sessions on one migrated database whose work is rolled back after each example."""
    engine = build_engine(fresh_db_url)
    opened: list[Session] = []

    def session() -> Session:
        s = Session(engine)
        opened.append(s)
        return s

    yield session
    for s in opened:
        s.close()
    engine.dispose()


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a database round trip per row; CI machines are shared
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_SETTINGS
@given(portfolio=_portfolios(whole_units=False, within_owed=False))
def test_the_import_writes_new_loans_payments_as_record_payment_does(
    in_rolled_back_session: Callable[[], Session], portfolio: Portfolio
) -> None:
    session = in_rolled_back_session()
    try:
        assert _through_import(session, portfolio) == _through_record_payment(session, portfolio)
    finally:
        session.rollback()


@_SETTINGS
@given(portfolio=_portfolios(whole_units=True, within_owed=True))
def test_the_seed_spreads_payments_as_record_payment_does(
    in_rolled_back_session: Callable[[], Session], portfolio: Portfolio
) -> None:
    session = in_rolled_back_session()
    try:
        recorded = _through_record_payment(session, portfolio)
        assert _through_seed_history(portfolio) == _as_the_seed_writes(recorded)
    finally:
        session.rollback()
