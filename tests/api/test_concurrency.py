"""Two deliveries of the same confirmation or retry at the same instant still count once.

Runs on PostgreSQL only (SQLite serializes writers anyway), in a database of its own, because
the racing sessions must really commit.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.borrowers.models import Borrower
from api.cases.models import Case, CaseKind
from api.cases.service import open_case
from api.core.db import build_engine
from api.loans.models import Loan
from api.outbox.models import OutboxMessage
from api.payments.models import Payment, PaymentAllocation
from api.payments.service import record_payment
from api.promises.models import PromiseToPay
from api.promises.service import create_promise
from tests.api.factories import aware, make_borrower, make_branch, make_loan, make_officer
from tests.services import scratch_postgres

pytestmark = pytest.mark.postgres
T = TypeVar("T")


@pytest.fixture(scope="module")
def factory() -> Iterator[sessionmaker[Session]]:
    with scratch_postgres("kopa_race") as url:
        engine = build_engine(url, pool_size=4)
        yield sessionmaker(bind=engine, expire_on_commit=False)
        engine.dispose()


def _race(factory: sessionmaker[Session], work: Callable[[Session], T]) -> list[T]:
    """Run ``work`` in two sessions released at the same moment; each commits its own."""
    barrier = threading.Barrier(2)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        with factory() as session:
            try:
                barrier.wait()
                results.append(work(session))
                session.commit()
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    return results


def _loan_id(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        borrower = make_borrower(session, make_branch(session))
        loan = make_loan(
            session, borrower, schedule=[(date(2026, 12, 20), "900.00", "90.00", "10")]
        )
        session.commit()
        return loan.id


@pytest.mark.parametrize("attempt", range(5))
def test_a_confirmation_delivered_twice_at_once_is_recorded_once(
    factory: sessionmaker[Session], attempt: int
) -> None:
    loan_id = _loan_id(factory)
    reference = f"RACE-{attempt}-{uuid.uuid4().hex[:8]}"

    def pay(session: Session) -> str:
        result = record_payment(
            session=session,
            loan=session.get_one(Loan, loan_id),
            amount=Decimal("400.00"),
            currency="KES",
            external_reference=reference,
            received_at=aware(2026, 12, 1),
            method="mobile_money",
            source="webhook",
        )
        return result.status.value

    assert sorted(_race(factory, pay)) == ["duplicate", "recorded"]
    with factory() as session:
        payments = session.scalar(
            select(func.count()).select_from(Payment).where(Payment.loan_id == loan_id)
        )
        allocated = session.scalar(
            select(
                func.sum(
                    PaymentAllocation.fees
                    + PaymentAllocation.interest
                    + PaymentAllocation.principal
                )
            )
            .join(Payment, Payment.id == PaymentAllocation.payment_id)
            .where(Payment.loan_id == loan_id)
        )
    assert (payments, allocated) == (1, Decimal("400.00"))


@pytest.mark.parametrize("attempt", range(5))
def test_a_promise_retried_twice_at_once_is_created_once(
    factory: sessionmaker[Session], attempt: int
) -> None:
    loan_id = _loan_id(factory)
    key = f"promise-race-{attempt}-{uuid.uuid4().hex}"

    def promise(session: Session) -> bool:
        loan = session.get_one(Loan, loan_id)
        return create_promise(
            session=session,
            borrower=session.get_one(Borrower, loan.borrower_id),
            loan=loan,
            amount=Decimal("300.00"),
            promised_date=date(2026, 12, 5),
            channel="telegram",
            now=aware(2026, 12, 1),
            idempotency_key=key,
        ).created

    assert sorted(_race(factory, promise)) == [False, True]
    with factory() as session:
        count = session.scalar(
            select(func.count()).select_from(PromiseToPay).where(PromiseToPay.loan_id == loan_id)
        )
    assert count == 1


@pytest.mark.parametrize("attempt", range(3))
def test_a_case_retried_twice_at_once_is_opened_and_alerted_once(
    factory: sessionmaker[Session], attempt: int
) -> None:
    with factory() as session:
        branch = make_branch(session)
        borrower_id = make_borrower(session, branch, officer=make_officer(session, branch)).id
        session.commit()
    key = f"case-race-{attempt}-{uuid.uuid4().hex}"

    def open_it(session: Session) -> str:
        return open_case(
            session=session,
            borrower=session.get_one(Borrower, borrower_id),
            kind=CaseKind.officer_request,
            now=aware(2026, 12, 1),
            idempotency_key=key,
        ).case.reference

    first, second = _race(factory, open_it)
    assert first == second
    with factory() as session:
        alerts = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.business_key == f"case:{first}:officer_alert")
        )
    assert alerts == 1


@pytest.mark.parametrize("attempt", range(3))
def test_two_requests_of_a_kind_at_once_open_one_case_and_alert_once(
    factory: sessionmaker[Session], attempt: int
) -> None:
    """A duplicated webhook: two deliveries, two different keys, one case, one alert."""
    with factory() as session:
        branch = make_branch(session)
        borrower_id = make_borrower(session, branch, officer=make_officer(session, branch)).id
        session.commit()
    keys = iter([f"dup-{attempt}-a-{uuid.uuid4().hex}", f"dup-{attempt}-b-{uuid.uuid4().hex}"])
    lock = threading.Lock()

    def open_it(session: Session) -> str:
        with lock:
            key = next(keys)
        return open_case(
            session=session,
            borrower=session.get_one(Borrower, borrower_id),
            kind=CaseKind.complaint,
            now=aware(2026, 12, 1),
            idempotency_key=key,
        ).disposition.value

    assert sorted(_race(factory, open_it)) == ["added", "opened"]
    with factory() as session:
        alerts = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .join(Case, Case.id == OutboxMessage.case_id)
            .where(Case.borrower_id == borrower_id, OutboxMessage.purpose == "officer_alert")
        )
    assert alerts == 1
