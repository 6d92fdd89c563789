"""Payment confirmations: signed, recorded once, allocated fees → interest → principal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.core.config import get_settings
from api.core.security import hmac_sha256_hex, payment_signature_headers
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


def _signed_post(
    api: Api, raw: bytes, *, timestamp: int, extra: dict[str, str] | None = None
) -> httpx.Response:
    secret = get_settings().payment_webhook_secret.get_secret_value()
    headers = {
        "Authorization": f"Bearer {api.token}",
        "Content-Type": "application/json",
        **payment_signature_headers(secret, raw, timestamp=timestamp),
        **(extra or {}),
    }
    return api.client.post("/v1/webhooks/payments", content=raw, headers=headers)


def test_a_signed_confirmation_replayed_outside_five_minutes_is_refused(
    api: Api, session: Session
) -> None:
    loan = _loan(session)
    raw = json.dumps(_confirmation(loan, "300.00", "TS-1")).encode()
    now = int(api.clock.now.timestamp())
    for stale in (now - 301, now + 301):
        refused = _signed_post(api, raw, timestamp=stale)
        assert (refused.status_code, refused.json()["code"]) == (401, "stale_signature")
    assert _payments(session) == 0
    # The timestamp is signed: moving it into the window without the secret breaks the HMAC.
    secret = get_settings().payment_webhook_secret.get_secret_value()
    old = payment_signature_headers(secret, raw, timestamp=now - 400)
    forged = api.client.post(
        "/v1/webhooks/payments",
        content=raw,
        headers={
            "Authorization": f"Bearer {api.token}",
            "Content-Type": "application/json",
            "X-Kopa-Signature": old["X-Kopa-Signature"],
            "X-Kopa-Timestamp": str(now),
        },
    )
    assert (forged.status_code, forged.json()["code"]) == (401, "bad_signature")
    # The body alone signed (no timestamp), as before: refused.
    unsigned_time = api.webhook(_confirmation(loan, "300.00", "TS-1"), signature="body-only")
    assert unsigned_time.status_code == 401
    assert _payments(session) == 0
    inside = _signed_post(api, raw, timestamp=now - 299)
    assert (inside.status_code, inside.json()) == (200, {"status": "recorded"})


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(
    api: Api, session: Session
) -> None:
    loan = _loan(session)
    limit = get_settings().payment_webhook_max_body_bytes
    padded = _confirmation(loan, "300.00", "BIG-1", method="mobile_money" + " " * limit)
    raw = json.dumps(padded).encode()
    now = int(api.clock.now.timestamp())
    response = _signed_post(api, raw, timestamp=now)
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")

    # A chunked body (no Content-Length) is cut off at the limit too.
    secret = get_settings().payment_webhook_secret.get_secret_value()

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b" " * (limit // 8)

    streamed = api.client.post(
        "/v1/webhooks/payments",
        content=chunks(),
        headers={
            "Authorization": f"Bearer {api.token}",
            "Content-Type": "application/json",
            **payment_signature_headers(secret, b"", timestamp=now),
        },
    )
    assert (streamed.status_code, streamed.json()["code"]) == (413, "payload_too_large")
    assert _payments(session) == 0
