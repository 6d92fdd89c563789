"""What a verified borrower reads about their loan, counted in their branch's time zone."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from api.payments.service import record_payment
from tests.api.conftest import Api
from tests.api.factories import (
    NAIROBI_INSTRUCTIONS,
    aware,
    make_borrower,
    make_branch,
    make_loan,
    make_verified_identity,
)

SCHEDULE = [
    (date(2026, 11, 20), "800.00", "150.00", "50.00"),
    (date(2026, 12, 2), "800.00", "150.00", "50.00"),
    (date(2026, 12, 20), "800.00", "150.00", "50.00"),
]


def _chat(api: Api, session: Session, timezone: str) -> tuple[str, int]:
    branch = make_branch(session, timezone=timezone)
    borrower = make_borrower(session, branch)
    loan = make_loan(session, borrower, schedule=SCHEDULE)
    record_payment(
        session=session,
        loan=loan,
        amount=Decimal("400.00"),
        currency="KES",
        external_reference=f"PAY-{loan.id}",
        received_at=aware(2026, 11, 25),
        method="mobile_money",
        source="webhook",
    )
    identity = make_verified_identity(session, borrower, at=api.clock.now)
    return f"/v1/identities/telegram/{identity.external_user_id}", loan.id


def test_days_past_due_and_next_installment_follow_the_branch_day(
    api: Api, session: Session
) -> None:
    # 22:30 UTC on 1 December: already 2 December in Nairobi, still 1 December in Mexico City.
    api.clock.now = aware(2026, 12, 1, 22, 30)
    nairobi, nairobi_loan = _chat(api, session, "Africa/Nairobi")
    mexico, _ = _chat(api, session, "America/Mexico_City")

    [in_nairobi] = api.get(f"{nairobi}/loans").json()
    [in_mexico] = api.get(f"{mexico}/loans").json()

    assert in_nairobi == {
        "loan_id": nairobi_loan,
        "account_reference": in_nairobi["account_reference"],
        "currency": "KES",
        "outstanding": "2600.00",
        "arrears": "600.00",
        "days_past_due": 12,
        "status": "active",
        "collection_paused": False,
        "next_installment": {"due_date": "2026-12-02", "amount": "1000.00"},
    }
    assert (in_mexico["days_past_due"], in_mexico["arrears"]) == (11, "600.00")
    assert in_mexico["next_installment"] == {"due_date": "2026-12-02", "amount": "1000.00"}

    api.clock.advance(days=1)
    nairobi_tomorrow, _ = _chat(api, session, "Africa/Nairobi")
    [tomorrow] = api.get(f"{nairobi_tomorrow}/loans").json()
    assert (tomorrow["arrears"], tomorrow["days_past_due"]) == ("1600.00", 13)
    assert tomorrow["next_installment"]["due_date"] == "2026-12-20"


def test_schedule_payments_and_payment_instructions(api: Api, session: Session) -> None:
    chat, loan_id = _chat(api, session, "Africa/Nairobi")
    schedule = api.get(f"{chat}/loans/{loan_id}/schedule").json()
    assert [(s["seq"], s["amount_due"], s["amount_paid"], s["status"]) for s in schedule] == [
        (1, "1000.00", "400.00", "partial"),
        (2, "1000.00", "0.00", "pending"),
        (3, "1000.00", "0.00", "pending"),
    ]
    payments = api.get(f"{chat}/loans/{loan_id}/payments", limit=5).json()
    assert payments == [
        {
            "amount": "400.00",
            "currency": "KES",
            "received_at": "2026-11-25T09:00:00Z",
            "method": "mobile_money",
            "reference": f"PAY-{loan_id}",
        }
    ]
    assert api.get(f"{chat}/loans/{loan_id}/payments", limit=500).status_code == 422

    instructions = api.get(f"{chat}/payment-instructions").json()
    loans = api.get(f"{chat}/loans").json()
    assert instructions == {
        "account_reference": loans[0]["account_reference"],
        "currency": "KES",
        "mobile_money": NAIROBI_INSTRUCTIONS["mobile_money"],
        "bank": NAIROBI_INSTRUCTIONS["bank"],
        "agents": NAIROBI_INSTRUCTIONS["agents"],
    }


def test_a_data_read_keeps_the_chat_fresh(api: Api, session: Session) -> None:
    chat, loan_id = _chat(api, session, "Africa/Nairobi")
    for _ in range(4):
        api.clock.advance(minutes=10)
        assert api.get(f"{chat}/loans/{loan_id}/schedule").status_code == 200
    api.clock.now += timedelta(minutes=15, seconds=1)
    assert api.get(f"{chat}/loans/{loan_id}/schedule").status_code == 403
