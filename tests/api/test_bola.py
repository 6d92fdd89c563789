"""Borrower A's chat never reaches borrower B's data, whatever ids it sends."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.cases.models import Case
from api.payments.service import record_payment
from api.promises.models import PromiseToPay
from tests.api.conftest import Api
from tests.api.factories import (
    aware,
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
    make_verified_identity,
)


def _two_borrowers(api: Api, session: Session) -> tuple[int, int, str]:
    branch = make_branch(session)
    officer = make_officer(session, branch)
    alice = make_borrower(session, branch, officer=officer, full_name="Alice Achieng")
    bob = make_borrower(session, branch, officer=officer, full_name="Bob Mwangi")
    alice_loan = make_loan(session, alice, schedule=[(date(2026, 12, 20), "500.00", "50.00", "0")])
    bob_loan = make_loan(session, bob, schedule=[(date(2026, 12, 20), "9000.00", "900.00", "0")])
    record_payment(
        session=session,
        loan=bob_loan,
        amount=Decimal("700.00"),
        currency="KES",
        external_reference="BOBPAY1",
        received_at=aware(2026, 11, 30),
        method="mobile_money",
        source="webhook",
    )
    identity = make_verified_identity(session, alice, at=api.clock.now)
    return alice_loan.id, bob_loan.id, identity.external_user_id


def _count(session: Session, model: type[object]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_alice_with_bobs_loan_ids_gets_nothing_on_every_endpoint(
    api: Api, session: Session
) -> None:
    alice_loan, bob_loan, user = _two_borrowers(api, session)
    base = f"/v1/identities/telegram/{user}"
    missing = api.get(f"{base}/loans/987654321/schedule")
    assert missing.status_code == 404

    promises_before, cases_before = _count(session, PromiseToPay), _count(session, Case)
    attempts = [
        api.get(f"{base}/loans/{bob_loan}/schedule"),
        api.get(f"{base}/loans/{bob_loan}/payments"),
        api.get(f"{base}/payment-instructions", loan_id=bob_loan),
        api.post(
            f"{base}/promises",
            {"amount": "100.00", "promised_date": "2026-12-05", "loan_id": bob_loan},
        ),
        api.post(f"{base}/cases", {"kind": "hardship", "loan_id": bob_loan}),
    ]
    for response in attempts:
        assert response.status_code == 404, response.request.url
        # Exactly what a loan id that does not exist gets: nothing tells B's loan exists.
        assert response.json() == missing.json()
        assert "9900" not in response.text and "BOBPAY1" not in response.text
    assert (_count(session, PromiseToPay), _count(session, Case)) == (
        promises_before,
        cases_before,
    )

    loans = api.get(f"{base}/loans").json()
    assert [loan["loan_id"] for loan in loans] == [alice_loan]
    # Bob's payment reference does not reveal Bob's payment to Alice.
    claim = api.post(f"{base}/payment-claims", {"reference": "BOBPAY1"}).json()
    assert claim["found"] is False


def test_an_unverified_or_expired_chat_gets_no_account_data(api: Api, session: Session) -> None:
    alice_loan, _bob_loan, user = _two_borrowers(api, session)
    api.clock.advance(minutes=16)
    for chat in (f"/v1/identities/telegram/{user}", "/v1/identities/telegram/nobody"):
        responses = [
            api.get(f"{chat}/loans"),
            api.get(f"{chat}/loans/{alice_loan}/schedule"),
            api.get(f"{chat}/loans/{alice_loan}/payments"),
            api.get(f"{chat}/payment-instructions"),
            api.post(f"{chat}/promises", {"amount": "1.00", "promised_date": "2026-12-05"}),
            api.post(f"{chat}/cases", {"kind": "officer_request"}),
            api.post(f"{chat}/payment-claims", {"reference": "X"}),
        ]
        for response in responses:
            assert response.status_code == 403, response.request.url
            assert response.json()["code"] == "verification_required"
    assert api.get(f"/v1/identities/telegram/{user}").json()["first_name"] is None
