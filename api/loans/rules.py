"""The money rules of a loan, written once: allocation, installment status, outstanding, arrears.

Every place that decides how a payment is spread or where a loan stands calls these functions:
``record_payment`` for live confirmations (:mod:`api.payments.service`), the CSV import's bulk
payments and schedule changes (:mod:`portfolio.importer.load`), the seed and demo histories
(:mod:`portfolio.history`), the borrower's loan position (:mod:`api.loans.service`) and the
reminder planner (:mod:`notifier.candidates`). ``tests/data/test_money_paths.py`` checks that the
bulk paths and ``record_payment`` write the same rows.

The functions are pure: no session, no clock, no currency conversion. Every amount of one call is
a :class:`~decimal.Decimal` in the currency of one loan (callers refuse a payment in another
currency before allocating it), and every day is a calendar day in the borrower's branch time
zone, chosen by the caller.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import NamedTuple, Protocol

ZERO = Decimal("0.00")


class InstallmentStatus(enum.StrEnum):
    pending = "pending"
    partial = "partial"
    paid = "paid"


class Amounts(Protocol):
    """What an installment owes and has paid: an ORM row, a query row or an :class:`Owed`."""

    @property
    def principal_due(self) -> Decimal: ...
    @property
    def interest_due(self) -> Decimal: ...
    @property
    def fees_due(self) -> Decimal: ...
    @property
    def principal_paid(self) -> Decimal: ...
    @property
    def interest_paid(self) -> Decimal: ...
    @property
    def fees_paid(self) -> Decimal: ...


class Standing(Amounts, Protocol):
    """An installment's amounts with the state a payment changes: status and the day settled."""

    @property
    def status(self) -> InstallmentStatus: ...
    @property
    def paid_on(self) -> date | None: ...


class Dated(Amounts, Protocol):
    @property
    def due_date(self) -> date: ...


def total_due(installment: Amounts) -> Decimal:
    return installment.principal_due + installment.interest_due + installment.fees_due


def total_paid(installment: Amounts) -> Decimal:
    return installment.principal_paid + installment.interest_paid + installment.fees_paid


def outstanding(installment: Amounts) -> Decimal:
    """What the installment still owes (fees, interest and principal together)."""
    return total_due(installment) - total_paid(installment)


def principal_outstanding(installment: Amounts) -> Decimal:
    """The principal the installment still owes (portfolio at risk counts principal only)."""
    return installment.principal_due - installment.principal_paid


def installment_status(installment: Amounts) -> InstallmentStatus:
    """Paid when nothing is outstanding, partial when something is paid, pending otherwise."""
    return _status(total_due(installment), total_paid(installment))


def _status(due: Decimal, paid: Decimal) -> InstallmentStatus:
    if due - paid <= ZERO:
        return InstallmentStatus.paid
    if paid > ZERO:
        return InstallmentStatus.partial
    return InstallmentStatus.pending


def repaid(schedule: Sequence[Amounts]) -> bool:
    """The loan has a schedule and none of it is outstanding (the loan closes)."""
    return bool(schedule) and all(outstanding(i) <= ZERO for i in schedule)


class Owed(NamedTuple):
    """An installment's amounts and state as values: what :func:`allocate` reads and returns.

    A named tuple rather than a dataclass: the seed builds millions of them.
    """

    principal_due: Decimal
    interest_due: Decimal
    fees_due: Decimal
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fees_paid: Decimal = ZERO
    status: InstallmentStatus = InstallmentStatus.pending
    paid_on: date | None = None


class Split(NamedTuple):
    """The part of one payment that one installment takes, and that installment afterwards."""

    installment: int  # its index in the schedule given to :func:`allocate`
    fees: Decimal
    interest: Decimal
    principal: Decimal
    after: Owed


class Allocation(NamedTuple):
    """How a payment is spread: one split per installment it reaches, oldest first."""

    splits: list[Split]
    unallocated: Decimal  # beyond everything outstanding: a credit the MFI refunds or applies
    resume_at: int  # every installment before this index owes nothing after the payment


def allocate(
    amount: Decimal, schedule: Sequence[Standing], *, paid_on: date, start: int = 0
) -> Allocation:
    """Spread ``amount`` over ``schedule`` (in installment order) without changing it.

    The oldest installment that still owes comes first and, within one, fees → interest →
    principal. An installment the payment settles gets status ``paid`` and ``paid_on`` (unless it
    already had that status); one left owing is ``partial``. Money beyond everything outstanding
    is :attr:`Allocation.unallocated`.

    Args:
        amount: the payment, positive, in the loan's currency.
        schedule: the loan's installments ordered by sequence number.
        paid_on: the payment's day in the branch's time zone.
        start: installments before this index are known to owe nothing (a caller replaying
            many payments passes the previous :attr:`Allocation.resume_at`); the result is the
            same as from 0, only sooner.

    Returns:
        The splits, the unallocated rest and where the next payment can start looking.
    """
    left = amount
    splits: list[Split] = []
    resume_at = start
    for index in range(start, len(schedule)):
        if left <= ZERO:
            break
        installment = schedule[index]
        fees_due, fees_paid = installment.fees_due, installment.fees_paid
        interest_due, interest_paid = installment.interest_due, installment.interest_paid
        principal_due, principal_paid = installment.principal_due, installment.principal_paid
        due = principal_due + interest_due + fees_due
        if due - (principal_paid + interest_paid + fees_paid) <= ZERO:
            resume_at = index + 1 if resume_at == index else resume_at
            continue
        fees = min(left, fees_due - fees_paid)
        left -= fees
        interest = min(left, interest_due - interest_paid)
        left -= interest
        principal = min(left, principal_due - principal_paid)
        left -= principal
        fees_paid += fees
        interest_paid += interest
        principal_paid += principal
        status = _status(due, principal_paid + interest_paid + fees_paid)
        settled_now = status is InstallmentStatus.paid and installment.status != status
        # Positional, in Owed's field order: this runs for every payment the seed draws.
        after = Owed(
            principal_due,
            interest_due,
            fees_due,
            principal_paid,
            interest_paid,
            fees_paid,
            status,
            paid_on if settled_now else installment.paid_on,
        )
        splits.append(Split(index, fees, interest, principal, after))
        resume_at = index + 1 if status is InstallmentStatus.paid else index
    return Allocation(splits, left, resume_at)


@dataclass(frozen=True)
class LoanPosition:
    """Where a loan stands on one day of the borrower's calendar."""

    outstanding: Decimal
    arrears: Decimal  # owed by installments due before the day
    days_past_due: int
    # The earliest installment still owing that is not yet late. Typed by the protocol, not a
    # type variable: mypy rejects an ORM class for a protocol-bound type variable written in a
    # signature (LoanPosition[Installment]), as it checks it before the mapped columns are known.
    next_installment: Dated | None
    oldest_unpaid_due: date | None


def days_past_due(installments: Iterable[Dated], today: date) -> int:
    """Days since the oldest installment still owing fell due; 0 when none is late."""
    oldest = min(
        (i.due_date for i in installments if outstanding(i) > ZERO and i.due_date < today),
        default=None,
    )
    return (today - oldest).days if oldest else 0


def position(installments: Sequence[Dated], today: date) -> LoanPosition:
    """Outstanding, arrears (owing and due before ``today``) and days past due of a loan."""
    unpaid = [i for i in installments if outstanding(i) > ZERO]
    overdue = [i for i in unpaid if i.due_date < today]
    upcoming = [i for i in unpaid if i.due_date >= today]
    return LoanPosition(
        outstanding=sum((outstanding(i) for i in unpaid), ZERO),
        arrears=sum((outstanding(i) for i in overdue), ZERO),
        days_past_due=days_past_due(overdue, today),
        next_installment=min(upcoming, key=lambda i: i.due_date, default=None),
        oldest_unpaid_due=min((i.due_date for i in unpaid), default=None),
    )
