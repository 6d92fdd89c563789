"""Payment confirmations: signed, recorded once, allocated fees → interest → principal."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.core.config import get_settings
from api.core.security import hmac_sha256_hex
from api.loans.models import Installment, InstallmentStatus, Loan, LoanStatus
from api.payments.models import Payment, PaymentAllocation
from tests.api.conftest import Api
from tests.api.factories import make_borrower, make_branch, make_loan


def _loan(session: Session) -> Loan:
    branch = make_branch(session)
    borrower = make_borrower(session, branch)
    return make_loan(
        session,
        borrower,
        schedule=[
            (date(2026, 11, 20), "800.00", "150.00", "50.00"),
            (date(2026, 12, 20), "800.00", "150.00", "50.00"),
        ],
    )


def _confirmation(loan: Loan, amount: str, reference: str, **extra: Any) -> dict[str, Any]:
    return {
        "external_reference": reference,
        "account_reference": loan.account_reference,
        "amount": amount,
        "currency": "KES",
        "method": "mobile_money",
        "received_at": "2026-12-01T22:30:00+00:00",
        **extra,
    }


def _payments(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Payment)) or 0)


def _installments(session: Session, loan: Loan) -> list[Installment]:
    session.expire_all()
    return list(
        session.scalars(select(Installment).where(Installment.loan_id == loan.id).order_by("seq"))
    )


def test_a_replayed_confirmation_records_nothing_twice(api: Api, session: Session) -> None:
    loan = _loan(session)
    body = _confirmation(loan, "300.00", "QK7X2ABC")
    first = api.webhook(body)
    replay = api.webhook(body)

    assert (first.status_code, first.json()) == (200, {"status": "recorded"})
    assert (replay.status_code, replay.json()) == (200, {"status": "duplicate"})
    assert _payments(session) == 1
    assert _installments(session, loan)[0].total_paid == Decimal("300.00")
    allocations = session.scalar(select(func.count()).select_from(PaymentAllocation))
    assert allocations == 1


def test_a_bad_or_missing_signature_records_nothing(api: Api, session: Session) -> None:
    loan = _loan(session)
    body = _confirmation(loan, "300.00", "SIG-1")
    other = json.dumps(_confirmation(loan, "9999.00", "SIG-1")).encode()
    secret = get_settings().payment_webhook_secret.get_secret_value()
    signature_of_other_body = f"sha256={hmac_sha256_hex(secret, other)}"
    for signature in (None, "sha256=00", "md5=abc", signature_of_other_body):
        response = api.webhook(body, signature=signature)
        assert response.status_code == 401
        assert response.json()["code"] == "bad_signature"
    assert _payments(session) == 0
    assert _installments(session, loan)[0].status == InstallmentStatus.pending


def test_payment_goes_to_fees_then_interest_then_principal_oldest_first(
    api: Api, session: Session
) -> None:
    loan = _loan(session)
    assert api.webhook(_confirmation(loan, "1100.00", "ALLOC-1")).json()["status"] == "recorded"

    first, second = _installments(session, loan)
    assert (first.fees_paid, first.interest_paid, first.principal_paid) == (
        Decimal("50.00"),
        Decimal("150.00"),
        Decimal("800.00"),
    )
    assert first.status == InstallmentStatus.paid
    # 22:30 UTC on 1 December is already 2 December in Nairobi.
    assert first.paid_on == date(2026, 12, 2)
    assert (second.fees_paid, second.interest_paid, second.principal_paid) == (
        Decimal("50.00"),
        Decimal("50.00"),
        Decimal("0.00"),
    )
    assert second.status == InstallmentStatus.partial
    assert second.paid_on is None
    session.refresh(loan)
    assert loan.status == LoanStatus.active

    assert api.webhook(_confirmation(loan, "900.00", "ALLOC-2")).json()["status"] == "recorded"
    assert [i.status for i in _installments(session, loan)] == [InstallmentStatus.paid] * 2
    session.refresh(loan)
    assert loan.status == LoanStatus.closed


def test_wrong_currency_unknown_account_and_malformed_bodies_are_refused(
    api: Api, session: Session
) -> None:
    loan = _loan(session)
    wrong_currency = api.webhook(_confirmation(loan, "10.00", "CUR-1", currency="XOF"))
    assert (wrong_currency.status_code, wrong_currency.json()["code"]) == (422, "currency_mismatch")
    unknown = api.webhook(_confirmation(loan, "10.00", "ACC-1", account_reference="NOPE"))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_account")
    zero = api.webhook(_confirmation(loan, "0", "ZERO-1"))
    assert (zero.status_code, zero.json()["code"]) == (422, "amount_not_positive")
    naive = api.webhook(_confirmation(loan, "10.00", "NAIVE-1", received_at="2026-12-01T10:00"))
    assert naive.status_code == 422
    assert "Traceback" not in naive.text
    assert _payments(session) == 0
