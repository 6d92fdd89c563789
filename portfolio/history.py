"""Schedules and repayment histories in whole currency units, shared by the seed and the demo.

Generated data must look like the API produced it, so payments are spread over installments by
the API's own rule, :func:`api.loans.rules.allocate` (oldest installment first, and within one
installment fees, then interest, then principal), in ``Decimal``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from api.loans import rules
from api.models import Base
from portfolio.bulk import Row, Shape


def add_months(day: date, months: int, *, day_of_month: int | None = None) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    wanted = day_of_month or day.day
    return date(year, month, min(wanted, calendar.monthrange(year, month)[1]))


def next_business_day(day: date) -> date:
    """Saturday and Sunday dues move to Monday, as branches do."""
    return day + timedelta(days=(7 - day.weekday()) % 7) if day.weekday() >= 5 else day


def due_dates(
    disbursed: date, *, monthly: bool, count: int, weekday: int | None = None
) -> list[date]:
    """Due dates of a loan: weekly from a week after disbursement, or monthly on the same day.

    ``weekday`` pins weekly dues to a group's meeting day.
    """
    if monthly:
        day_of_month = min(disbursed.day, 28)
        return [
            next_business_day(add_months(disbursed, i + 1, day_of_month=day_of_month))
            for i in range(count)
        ]
    first = disbursed + timedelta(days=7)
    if weekday is not None:
        first += timedelta(days=(weekday - first.weekday()) % 7)
    else:
        first = next_business_day(first)
    return [first + timedelta(weeks=i) for i in range(count)]


@dataclass
class Installment:
    """An installment drawn in whole currency units."""

    due_date: date
    fees: int
    interest: int
    principal: int
    owed: rules.Owed | None = None  # set by allocate()

    @property
    def total(self) -> int:
        return self.fees + self.interest + self.principal

    @property
    def state(self) -> rules.Owed:
        """Owed and paid in ``Decimal``, as the API holds it (nothing paid until allocated)."""
        if self.owed is not None:
            return self.owed
        return rules.Owed(
            principal_due=_money(self.principal),
            interest_due=_money(self.interest),
            fees_due=_money(self.fees),
        )


@dataclass
class Payment:
    day: date
    amount: int
    allocations: list[rules.Split] = field(default_factory=list)


def _money(units: int) -> Decimal:
    return Decimal(units) + rules.ZERO  # exact, with two places: "1234.00"


def split_schedule(
    dues: list[date], *, principal: int, interest: int, fee_each: int = 0, upfront_fee: int = 0
) -> list[Installment]:
    """Equal principal and flat interest per installment; the last one takes the remainders."""
    n = len(dues)
    p_each, i_each = principal // n, interest // n
    schedule = [
        Installment(due_date=d, fees=fee_each, interest=i_each, principal=p_each) for d in dues
    ]
    schedule[-1].principal += principal - p_each * n
    schedule[-1].interest += interest - i_each * n
    schedule[0].fees += upfront_fee
    return schedule


def allocate(schedule: list[Installment], payments: list[Payment]) -> None:
    """Spread ``payments`` (in date order) over ``schedule`` with the API's rule; fills both.

    Raises:
        ValueError: a payment is larger than what the loan still owes (a generator bug).
    """
    owed = [installment.state for installment in schedule]
    start = 0
    for payment in payments:
        allocation = rules.allocate(_money(payment.amount), owed, paid_on=payment.day, start=start)
        if allocation.unallocated > rules.ZERO:
            raise ValueError("a generated payment is larger than what the loan still owes")
        for split in allocation.splits:
            owed[split.installment] = split.after
        payment.allocations.extend(allocation.splits)
        start = allocation.resume_at
    for installment, state in zip(schedule, owed, strict=True):
        installment.owed = state


# The rows both bulk paths (seed and import) write for a schedule's money state.
INSTALLMENT = Shape(Base.metadata.tables["loan_installment"])
ALLOCATION = Shape(Base.metadata.tables["payment_allocation"])


def installment_row(
    installment_id: int, *, loan_id: int, seq: int, due_date: date, owed: rules.Owed
) -> Row:
    return INSTALLMENT.row(
        id=installment_id,
        loan_id=loan_id,
        seq=seq,
        due_date=due_date.isoformat(),
        principal_due=str(owed.principal_due),
        interest_due=str(owed.interest_due),
        fees_due=str(owed.fees_due),
        principal_paid=str(owed.principal_paid),
        interest_paid=str(owed.interest_paid),
        fees_paid=str(owed.fees_paid),
        status=owed.status.value,
        paid_on=owed.paid_on.isoformat() if owed.paid_on else None,
    )


def allocation_row(
    allocation_id: int, *, payment_id: int, installment_id: int, split: rules.Split
) -> Row:
    return ALLOCATION.row(
        id=allocation_id,
        payment_id=payment_id,
        installment_id=installment_id,
        fees=str(split.fees),
        interest=str(split.interest),
        principal=str(split.principal),
    )
