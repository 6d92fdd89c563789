"""Promises to pay: validated in the borrower's local date, idempotent, judged by payments."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.loans.models import Loan
from api.payments.service import record_payment
from api.promises.models import PromiseStatus, PromiseToPay
from api.promises.service import evaluate_promises
from tests.api.conftest import Api
from tests.api.factories import (
    aware,
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
    make_verified_identity,
)


def _setup(api: Api, session: Session, timezone: str = "Africa/Nairobi") -> tuple[str, Loan]:
    branch = make_branch(session, timezone=timezone)
    borrower = make_borrower(session, branch, officer=make_officer(session, branch))
    loan = make_loan(
        session,
        borrower,
        schedule=[
            (date(2026, 11, 20), "800.00", "150.00", "50.00"),
            (date(2026, 12, 20), "800.00", "150.00", "50.00"),
        ],
    )
    identity = make_verified_identity(session, borrower, at=api.clock.now)
    return f"/v1/identities/telegram/{identity.external_user_id}/promises", loan


def _promises(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(PromiseToPay)) or 0)


def test_a_retry_with_the_same_idempotency_key_returns_the_same_promise(
    api: Api, session: Session
) -> None:
    url, loan = _setup(api, session)
    body = {"amount": "1500.00", "promised_date": "2026-12-04"}
    first = api.post(url, body, headers={"Idempotency-Key": "abc-1"})
    again = api.post(url, body, headers={"Idempotency-Key": "abc-1"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json() | {"promise_id": 0} == {
        "promise_id": 0,
        "loan_id": loan.id,
        "amount": "1500.00",
        "currency": "KES",
        "promised_date": "2026-12-04",
        "status": "pending",
    }
    assert _promises(session) == 1

    reused = api.post(url, body | {"amount": "10.00"}, headers={"Idempotency-Key": "abc-1"})
    assert reused.status_code == 409
    assert reused.json()["code"] == "idempotency_key_reused"
    assert api.post(url, body, headers={"Idempotency-Key": "abc-2"}).status_code == 201
    assert _promises(session) == 2


@pytest.mark.parametrize(
    ("amount", "promised_date", "code"),
    [
        ("0", "2026-12-04", "amount_not_positive"),
        ("-5.00", "2026-12-04", "amount_not_positive"),
        ("2000.01", "2026-12-04", "amount_above_outstanding"),
        ("100.00", "2026-11-30", "date_in_past"),
        ("100.00", "2027-01-01", "date_beyond_policy"),
    ],
)
def test_a_promise_breaking_a_rule_is_refused_and_nothing_is_written(
    api: Api, session: Session, amount: str, promised_date: str, code: str
) -> None:
    url, _loan = _setup(api, session)
    response = api.post(url, {"amount": amount, "promised_date": promised_date})
    assert response.status_code == 422
    assert response.json()["code"] == code
    if code == "date_beyond_policy":
        assert response.json()["max_date"] == "2026-12-31"
    assert _promises(session) == 0


def test_today_is_the_borrowers_local_day(api: Api, session: Session) -> None:
    # 03:00 UTC on 1 December is still 30 November in Mexico City.
    api.clock.now = aware(2026, 12, 1, 3, 0)
    url, _loan = _setup(api, session, timezone="America/Mexico_City")
    ok = api.post(url, {"amount": "100.00", "promised_date": "2026-11-30"})
    assert ok.status_code == 201, ok.text


def _pay(session: Session, loan: Loan, amount: str, at: datetime, ref: str) -> None:
    record_payment(
        session=session,
        loan=loan,
        amount=Decimal(amount),
        currency="KES",
        external_reference=ref,
        received_at=at,
        method="mobile_money",
        source="webhook",
    )


def _promise(api: Api, url: str, amount: str, on: str) -> int:
    response = api.post(url, {"amount": amount, "promised_date": on})
    assert response.status_code == 201, response.text
    return int(response.json()["promise_id"])


def test_promises_are_judged_kept_partially_kept_and_broken(api: Api, session: Session) -> None:
    kept_url, kept_loan = _setup(api, session)
    partial_url, partial_loan = _setup(api, session)
    broken_url, _broken_loan = _setup(api, session)
    kept = _promise(api, kept_url, "500.00", "2026-12-05")
    partial = _promise(api, partial_url, "500.00", "2026-12-05")
    broken = _promise(api, broken_url, "500.00", "2026-12-05")
    # Paid before the promise was made: does not count towards it.
    _pay(session, partial_loan, "300.00", aware(2026, 11, 30), "EARLY-1")

    _pay(session, kept_loan, "200.00", aware(2026, 12, 3), "K-1")
    _pay(session, kept_loan, "300.00", aware(2026, 12, 4), "K-2")  # reaches 500: kept at once
    _pay(session, partial_loan, "200.00", aware(2026, 12, 4), "P-1")

    def status(promise_id: int) -> PromiseStatus:
        session.expire_all()
        return session.get_one(PromiseToPay, promise_id).status

    assert status(kept) == PromiseStatus.kept
    assert status(partial) == PromiseStatus.pending
    # Grace of 2 days: the window closes at midnight after 7 December, Nairobi time.
    evaluate_promises(session=session, now=aware(2026, 12, 7, 20, 59))
    assert (status(partial), status(broken)) == (PromiseStatus.pending, PromiseStatus.pending)

    changed = evaluate_promises(session=session, now=aware(2026, 12, 7, 21, 0))
    assert {p.id for p in changed} == {partial, broken}
    assert status(partial) == PromiseStatus.partially_kept
    assert session.get_one(PromiseToPay, partial).amount_paid == Decimal("200.00")
    assert status(broken) == PromiseStatus.broken
    assert status(kept) == PromiseStatus.kept
    # Judged once: a later run changes nothing.
    assert evaluate_promises(session=session, now=aware(2026, 12, 9)) == []
