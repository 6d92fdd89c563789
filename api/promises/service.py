"""Promises to pay: accepted within policy, then judged by the payments that arrive."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Branch
from api.core.config import PromisePolicy, get_settings
from api.core.types import money
from api.loans import service as loan_service
from api.loans.models import Loan
from api.payments.models import Payment
from api.promises.exceptions import (
    IdempotencyKeyReused,
    PromiseAmountAboveOutstanding,
    PromiseAmountNotPositive,
    PromiseDateBeyondPolicy,
    PromiseDateInPast,
)
from api.promises.models import PromiseStatus, PromiseToPay

ZERO = Decimal("0.00")
_CHUNK = 500


@dataclass(frozen=True)
class CreatedPromise:
    promise: PromiseToPay
    created: bool  # False: an earlier request with the same Idempotency-Key made it


def create_promise(
    *,
    session: Session,
    borrower: Borrower,
    loan: Loan,
    amount: Decimal,
    promised_date: date,
    channel: str,
    now: datetime,
    idempotency_key: str | None = None,
    policy: PromisePolicy | None = None,
) -> CreatedPromise:
    """Accept a promise: amount in (0, outstanding], date from today to today + policy maximum.

    ``idempotency_key`` must already be scoped to the caller (see :mod:`api.core.idempotency`);
    a retry with the same key answers the promise made first.

    Raises:
        IdempotencyKeyReused: the key was used for a different amount, date or loan.
        PromiseAmountNotPositive, PromiseAmountAboveOutstanding, PromiseDateInPast,
        PromiseDateBeyondPolicy: the promise breaks a rule; nothing is written.
    """
    policy = policy or get_settings().promises
    amount = money(amount)
    if idempotency_key is not None:
        earlier = session.scalar(
            select(PromiseToPay).where(PromiseToPay.idempotency_key == idempotency_key)
        )
        if earlier is not None:
            same = (earlier.amount, earlier.promised_date, earlier.loan_id) == (
                amount,
                promised_date,
                loan.id,
            )
            if not same:
                raise IdempotencyKeyReused()
            return CreatedPromise(earlier, created=False)

    if amount <= ZERO:
        raise PromiseAmountNotPositive()
    pos = loan_service.loan_position(session, loan=loan, now=now)
    if amount > pos.outstanding:
        raise PromiseAmountAboveOutstanding(outstanding=str(pos.outstanding))
    today = loan_service.local_today(loan_service.branch_of(session, borrower).timezone, now)
    if promised_date < today:
        raise PromiseDateInPast()
    max_date = today + timedelta(days=policy.max_days_ahead)
    if promised_date > max_date:
        raise PromiseDateBeyondPolicy(max_date=max_date.isoformat())

    promise = PromiseToPay(
        loan_id=loan.id,
        borrower_id=borrower.id,
        amount=amount,
        currency=loan.currency,
        promised_date=promised_date,
        channel=channel,
        status=PromiseStatus.pending,
        amount_paid=ZERO,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    try:
        # Two deliveries of the same retry can race to the unique key: the loser answers the
        # winner's promise.
        with session.begin_nested():
            session.add(promise)
            session.flush()
    except IntegrityError:
        if idempotency_key is None:
            raise
        winner = session.scalar(
            select(PromiseToPay).where(PromiseToPay.idempotency_key == idempotency_key)
        )
        if winner is None:
            raise
        return CreatedPromise(winner, created=False)
    return CreatedPromise(promise, created=True)


def window_end(promised_date: date, timezone: str, grace_days: int) -> datetime:
    """The instant the promise's chance ends: midnight after its date plus grace, local time."""
    last_day = promised_date + timedelta(days=grace_days + 1)
    return datetime.combine(last_day, time.min, tzinfo=ZoneInfo(timezone))


def paid_towards(promise: PromiseToPay, payments: Iterable[Payment], end: datetime) -> Decimal:
    """What counts towards ``promise``: its loan's payments received from the moment it was
    made until ``end`` (its :func:`window_end`); ``payments`` must be of the promise's loan."""
    return sum((p.amount for p in payments if promise.created_at <= p.received_at < end), ZERO)


def judge(*, amount: Decimal, paid: Decimal, window_over: bool) -> PromiseStatus:
    """Kept as soon as ``paid`` reaches ``amount``; once the window is over, partially kept when
    something was paid and broken when nothing was; pending until then."""
    if paid >= amount:
        return PromiseStatus.kept
    if window_over:
        return PromiseStatus.partially_kept if paid > ZERO else PromiseStatus.broken
    return PromiseStatus.pending


def evaluate_promises(
    *,
    session: Session,
    now: datetime,
    loan_ids: list[int] | None = None,
    policy: PromisePolicy | None = None,
) -> list[PromiseToPay]:
    """Judge pending promises at ``now``; answer the ones whose status changed.

    Payments count towards a promise when received after it was made, before its window ends
    and not after ``now`` (so importing history in order judges each promise as it stood).
    Kept as soon as the amount is reached; partially kept or broken once the promised date plus
    the grace days has passed in the borrower's time zone.
    """
    policy = policy or get_settings().promises
    query = (
        select(PromiseToPay, Branch.timezone)
        .join(Borrower, Borrower.id == PromiseToPay.borrower_id)
        .join(Branch, Branch.id == Borrower.branch_id)
        .where(PromiseToPay.status == PromiseStatus.pending)
        .order_by(PromiseToPay.id)
    )
    if loan_ids is not None:
        query = query.where(PromiseToPay.loan_id.in_(loan_ids))
    pending = list(session.execute(query).tuples())
    changed: list[PromiseToPay] = []
    for start in range(0, len(pending), _CHUNK):
        chunk = pending[start : start + _CHUNK]
        earliest = min(p.created_at for p, _tz in chunk)
        payments: dict[int, list[Payment]] = defaultdict(list)
        for payment in session.scalars(
            select(Payment).where(
                Payment.loan_id.in_({p.loan_id for p, _tz in chunk}),
                Payment.received_at >= earliest,
                Payment.received_at <= now,
            )
        ):
            payments[payment.loan_id].append(payment)
        for promise, timezone in chunk:
            end = window_end(promise.promised_date, timezone, policy.grace_days)
            paid = paid_towards(promise, payments[promise.loan_id], end)
            status = judge(amount=promise.amount, paid=paid, window_over=now >= end)
            if paid != promise.amount_paid:
                promise.amount_paid = paid
            if status != PromiseStatus.pending:
                promise.status = status
                promise.evaluated_at = now
                changed.append(promise)
    session.flush()
    return changed
