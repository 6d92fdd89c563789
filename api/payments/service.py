"""Record money received and spread it over the schedule.

:func:`record_payment` records one payment through the ORM: payment confirmations (the webhook)
and the CSV import's payments of loans that already exist. Two bulk paths write payment rows
without it, for speed: the import's payments of the loans it creates
(:func:`portfolio.importer.load._fresh_loans`) and the seed and demo histories
(:mod:`portfolio`). All of them spread money with :func:`api.loans.rules.allocate`, and
``tests/data/test_money_paths.py`` checks that they write the same rows. The external reference
is unique, so a replayed confirmation records nothing twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.core.types import money
from api.loans import rules
from api.loans import service as loan_service
from api.loans.models import Installment, Loan, LoanStatus
from api.payments.exceptions import CurrencyMismatch, PaymentAmountNotPositive
from api.payments.models import Payment, PaymentAllocation
from api.promises import service as promise_service

ZERO = Decimal("0.00")


class RecordStatus(enum.StrEnum):
    recorded = "recorded"
    duplicate = "duplicate"


@dataclass(frozen=True)
class RecordedPayment:
    status: RecordStatus
    payment: Payment


def record_payment(
    *,
    session: Session,
    loan: Loan,
    amount: Decimal,
    currency: str,
    external_reference: str,
    received_at: datetime,
    method: str,
    source: str = "webhook",
) -> RecordedPayment:
    """Record a payment once, allocate it, close the loan when repaid and evaluate promises.

    Allocation follows :func:`api.loans.rules.allocate`: the oldest installment first and,
    within one, fees → interest → principal. Money beyond everything outstanding stays on the
    payment unallocated (a credit the MFI refunds or applies by hand).

    Raises:
        PaymentAmountNotPositive: ``amount`` is zero or negative.
        CurrencyMismatch: ``currency`` is not the loan's.
    """
    amount = money(amount)
    if amount <= ZERO:
        raise PaymentAmountNotPositive()
    if currency.upper() != loan.currency:
        raise CurrencyMismatch(expected=loan.currency)
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")

    existing = _by_reference(session, external_reference)
    if existing is not None:
        return RecordedPayment(RecordStatus.duplicate, existing)

    payment = Payment(
        loan_id=loan.id,
        amount=amount,
        currency=loan.currency,
        method=method,
        external_reference=external_reference,
        received_at=received_at,
        source=source,
    )
    try:
        # A concurrent delivery of the same confirmation may win the race to the unique index.
        with session.begin_nested():
            session.add(payment)
            session.flush()
    except IntegrityError:
        raced = _by_reference(session, external_reference)
        if raced is None:
            raise
        return RecordedPayment(RecordStatus.duplicate, raced)

    branch = loan_service.branch_of_loan(session, loan)
    paid_on = loan_service.local_today(branch.timezone, received_at)
    _allocate(session, loan=loan, payment=payment, paid_on=paid_on)
    promise_service.evaluate_promises(session=session, now=received_at, loan_ids=[loan.id])
    return RecordedPayment(RecordStatus.recorded, payment)


def _by_reference(session: Session, external_reference: str) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.external_reference == external_reference))


def _allocate(session: Session, *, loan: Loan, payment: Payment, paid_on: date) -> None:
    installments = list(
        session.scalars(
            select(Installment)
            .where(Installment.loan_id == loan.id)
            .order_by(Installment.seq)
            .with_for_update()
        )
    )
    allocation = rules.allocate(payment.amount, installments, paid_on=paid_on)
    for split in allocation.splits:
        installment, after = installments[split.installment], split.after
        installment.fees_paid = after.fees_paid
        installment.interest_paid = after.interest_paid
        installment.principal_paid = after.principal_paid
        installment.status = after.status
        installment.paid_on = after.paid_on
        session.add(
            PaymentAllocation(
                payment_id=payment.id,
                installment_id=installment.id,
                fees=split.fees,
                interest=split.interest,
                principal=split.principal,
            )
        )
    if rules.repaid(installments):
        loan.status = LoanStatus.closed
    session.flush()


def recent_payments(session: Session, *, loan_id: int, limit: int) -> list[Payment]:
    return list(
        session.scalars(
            select(Payment)
            .where(Payment.loan_id == loan_id)
            .order_by(Payment.received_at.desc(), Payment.id.desc())
            .limit(limit)
        )
    )


def find_claimed_payment(
    session: Session,
    *,
    loan_ids: list[int],
    since: datetime,
    reference: str | None,
    amount: Decimal | None,
    paid_on: date | None,
    timezone: str,
) -> Payment | None:
    """A recent payment matching what a borrower says they paid (reference, or amount and day)."""
    if not loan_ids:
        return None
    query = select(Payment).where(Payment.loan_id.in_(loan_ids), Payment.received_at >= since)
    candidates = list(session.scalars(query.order_by(Payment.received_at.desc())))
    for payment in candidates:
        if reference and payment.external_reference.strip().upper() == reference.strip().upper():
            return payment
    if reference and amount is None:
        return None
    for payment in candidates:
        if amount is not None and payment.amount != money(amount):
            continue
        if (
            paid_on is not None
            and loan_service.local_today(timezone, payment.received_at) != paid_on
        ):
            continue
        if amount is None and paid_on is None:
            continue
        return payment
    return None
