"""The loan book of a branch as it stood at several instants of an as-of day, for the KPIs.

Where a loan stood on a past day is rebuilt from the payment allocations of the payments received
before that day ended (in the branch's time zone), over the loan's schedule; the standing itself
comes from :func:`api.loans.rules.position`. Written-off loans are off the books.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Branch
from api.core.types import MONEY
from api.loans import rules
from api.loans.models import Installment, Loan, LoanStatus
from api.payments.models import Payment, PaymentAllocation

ZERO = rules.ZERO


# -- dates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Periods:
    """The days the KPIs of one as-of day look at.

    ``period_start..as_of``: the as-of day's month so far. ``roll_to``: the last month-end on or
    before ``as_of``; ``roll_from``: the month-end before it.
    """

    as_of: date
    period_start: date
    roll_from: date
    roll_to: date

    @classmethod
    def of(cls, as_of: date) -> Periods:
        month_end = as_of.day == calendar.monthrange(as_of.year, as_of.month)[1]
        roll_to = as_of if month_end else as_of.replace(day=1) - timedelta(days=1)
        return cls(
            as_of=as_of,
            period_start=as_of.replace(day=1),
            roll_from=roll_to.replace(day=1) - timedelta(days=1),
            roll_to=roll_to,
        )


def midnight(day: date, timezone: str) -> datetime:
    """The instant ``day`` starts in ``timezone``."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone))


class Cut(NamedTuple):
    """A standing on the day ``today``, counting the payments received before ``until``."""

    name: str
    until: datetime
    today: date


def cuts_of(periods: Periods, timezone: str) -> tuple[Cut, ...]:
    def end_of(day: date) -> datetime:
        return midnight(day + timedelta(days=1), timezone)

    return (
        Cut("as_of", end_of(periods.as_of), periods.as_of),
        # At the period's first moment an installment due the day before is already late.
        Cut(
            "period_start",
            midnight(periods.period_start, timezone),
            periods.period_start,
        ),
        Cut("roll_from", end_of(periods.roll_from), periods.roll_from),
        Cut("roll_to", end_of(periods.roll_to), periods.roll_to),
    )


# -- the loan book at several instants -----------------------------------------------------


class Standing(NamedTuple):
    """An installment's amounts as they stood at one cut (an :class:`api.loans.rules.Dated`)."""

    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fees_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fees_paid: Decimal


@dataclass
class BookLoan:
    id: int
    borrower_id: int
    currency: str
    disbursed_on: date
    # Per cut name, the schedule in installment order as it stood then.
    at: dict[str, list[Standing]] = field(default_factory=dict)
    installment_ids: list[int] = field(default_factory=list)


@dataclass
class Book:
    branch: Branch
    cuts: dict[str, Cut]
    loans: list[BookLoan]

    def position(self, loan: BookLoan, cut: str) -> rules.LoanPosition:
        return rules.position(loan.at[cut], self.cuts[cut].today)


def branch_loans(branch: Branch) -> Any:
    """The loans on the books of ``branch`` (written-off ones are not)."""
    return and_(
        Loan.borrower_id == Borrower.id,
        Borrower.branch_id == branch.id,
        Loan.status != LoanStatus.written_off,
    )


def load_book(session: Session, branch: Branch, periods: Periods) -> Book:
    """The branch's loans disbursed by the as-of day, each schedule at every cut.

    The paid amounts at each cut are SQL sums of the allocations of the payments received
    before it. The bulk reads go through the session's connection (Core rows): the ORM's row
    handling cost a third of the time on a seeded portfolio of 2,000 borrowers.
    """
    cuts = cuts_of(periods, branch.timezone)
    loans: dict[int, BookLoan] = {}
    for row in session.execute(
        select(Loan.id, Loan.borrower_id, Loan.currency, Loan.disbursed_on)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .where(branch_loans(branch), Loan.disbursed_on <= periods.as_of)
        .order_by(Loan.id)
    ):
        loans[row.id] = BookLoan(row.id, row.borrower_id, row.currency, row.disbursed_on)

    # Per installment, (principal, interest, fees) paid before each cut, in the order of cuts.
    paid_columns = [
        func.sum(
            case((Payment.received_at < cut.until, getattr(PaymentAllocation, part)), else_=ZERO),
            type_=MONEY,
        )
        for cut in cuts
        for part in ("principal", "interest", "fees")
    ]
    unpaid = (ZERO,) * len(paid_columns)
    paid: dict[int, tuple[Decimal, ...]] = {
        row[0]: tuple(map(money, row[1:]))
        for row in session.connection().execute(
            select(PaymentAllocation.installment_id, *paid_columns)
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .join(Loan, Loan.id == Payment.loan_id)
            .join(Borrower, Borrower.id == Loan.borrower_id)
            .where(
                branch_loans(branch),
                Loan.disbursed_on <= periods.as_of,
                Payment.received_at < max(c.until for c in cuts),
            )
            .group_by(PaymentAllocation.installment_id)
        )
    }

    for (
        installment_id,
        loan_id,
        due_date,
        principal,
        interest,
        fees,
    ) in session.connection().execute(
        select(
            Installment.id,
            Installment.loan_id,
            Installment.due_date,
            Installment.principal_due,
            Installment.interest_due,
            Installment.fees_due,
        )
        .join(Loan, Loan.id == Installment.loan_id)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .where(branch_loans(branch), Loan.disbursed_on <= periods.as_of)
        .order_by(Installment.loan_id, Installment.seq)
    ):
        loan = loans[loan_id]
        loan.installment_ids.append(installment_id)
        sums = paid.get(installment_id, unpaid)
        for index, cut in enumerate(cuts):
            loan.at.setdefault(cut.name, []).append(
                Standing(due_date, principal, interest, fees, *sums[3 * index : 3 * index + 3])
            )
    return Book(branch, {c.name: c for c in cuts}, [loan for loan in loans.values() if loan.at])


def allocations(
    session: Session, installments: Mapping[int, object]
) -> Iterable[tuple[int, datetime, Decimal]]:
    """Each allocation to ``installments``: the installment, when its payment came, how much."""
    ids = list(installments)
    for start in range(0, len(ids), 1000):
        yield from session.connection().execute(
            select(
                PaymentAllocation.installment_id,
                Payment.received_at,
                PaymentAllocation.fees + PaymentAllocation.interest + PaymentAllocation.principal,
            )
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(PaymentAllocation.installment_id.in_(ids[start : start + 1000]))
        )


def money(value: Decimal | float | None) -> Decimal:
    """A summed amount as cents (the MONEY type already answers decimals on both databases)."""
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(ZERO)
