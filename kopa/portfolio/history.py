"""Schedules and repayment histories in whole currency units, shared by the seed and the demo.

Generated data must look like the API produced it, so payments are spread over installments the
way ``api.payments`` does it for real money: oldest installment first, and within one
installment fees, then interest, then principal.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta


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
    due_date: date
    fees: int
    interest: int
    principal: int
    fees_paid: int = 0
    interest_paid: int = 0
    principal_paid: int = 0
    paid_on: date | None = None

    @property
    def total(self) -> int:
        return self.fees + self.interest + self.principal

    @property
    def paid(self) -> int:
        return self.fees_paid + self.interest_paid + self.principal_paid

    @property
    def status(self) -> str:
        if self.paid >= self.total:
            return "paid"
        return "partial" if self.paid else "pending"


@dataclass
class Allocation:
    installment: int  # index in the schedule
    fees: int
    interest: int
    principal: int


@dataclass
class Payment:
    day: date
    amount: int
    allocations: list[Allocation] = field(default_factory=list)


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
    """Spread ``payments`` (in date order) over ``schedule``; fills both sides in place."""
    cursor = 0
    for payment in payments:
        left = payment.amount
        while left > 0 and cursor < len(schedule):
            inst = schedule[cursor]
            fees = min(left, inst.fees - inst.fees_paid)
            left -= fees
            interest = min(left, inst.interest - inst.interest_paid)
            left -= interest
            principal = min(left, inst.principal - inst.principal_paid)
            left -= principal
            if fees or interest or principal:
                inst.fees_paid += fees
                inst.interest_paid += interest
                inst.principal_paid += principal
                payment.allocations.append(Allocation(cursor, fees, interest, principal))
            if inst.paid >= inst.total:
                inst.paid_on = payment.day
                cursor += 1
        if left > 0:
            raise ValueError("a generated payment is larger than what the loan still owes")
