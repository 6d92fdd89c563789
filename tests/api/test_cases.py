"""Cases reach the right officer at once, with only what they need, and escalate when ignored."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Officer, StaffRole
from api.ledger.models import ContactEvent
from api.loans.models import Loan
from api.outbox.models import OutboxMessage
from api.payments.service import record_payment
from i18n import render
from tests.api.conftest import Api
from tests.api.factories import (
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
    make_verified_identity,
)

NATIONAL_ID_LAST4 = "9073"
PHONE = "+254711223344"


@dataclass
class World:
    borrower: Borrower
    loan: Loan
    officer: Officer
    manager: Officer
    colleague: Officer
    base: str
    user: str


def _world(api: Api, session: Session, *, language: str = "en") -> World:
    branch = make_branch(session)
    officer = make_officer(session, branch, name="Grace Otieno")
    manager = make_officer(session, branch, name="Peter Kariuki", role=StaffRole.manager)
    colleague = make_officer(session, branch, name="Other Officer")
    existing = session.scalar(select(Borrower).where(Borrower.phone_e164 == PHONE))
    borrower = make_borrower(
        session,
        branch,
        officer=officer,
        full_name="Amina Wanjiru Kamau",
        phone=None if existing else PHONE,
        national_id_last4=NATIONAL_ID_LAST4,
        language=language,
    )
    loan = make_loan(
        session,
        borrower,
        schedule=[
            (date(2026, 11, 21), "800.00", "150.00", "50.00"),
            (date(2026, 12, 21), "800.00", "150.00", "50.00"),
        ],
    )
    identity = make_verified_identity(session, borrower, at=api.clock.now)
    user = identity.external_user_id
    return World(
        borrower, loan, officer, manager, colleague, f"/v1/identities/telegram/{user}", user
    )


def _outbox(session: Session, **where: object) -> list[OutboxMessage]:
    session.expire_all()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    return list(session.scalars(query))


def _act(api: Api, reference: str, action: str, officer: Officer, **body: str) -> dict[str, object]:
    response = api.post(
        f"/v1/cases/{reference}/{action}", {"officer_chat_id": officer.chat_id, **body}
    )
    return {"status_code": response.status_code, **response.json()}


def test_a_hardship_case_alerts_the_officer_with_no_national_id_or_full_phone(
    api: Api, session: Session
) -> None:
    world = _world(api, session)
    body = {
        "kind": "hardship",
        "category": "disaster",
        "borrower_words": "My stall at Gikomba burned down, ID 12349073",
        "requested_relief": "pause",
    }
    created = api.post(f"{world.base}/cases", body, headers={"Idempotency-Key": "h-1"})
    assert created.status_code == 201, created.text
    case = created.json()
    assert re.fullmatch(r"HD-[23456789ABCDEFGHJKMNPQRSTWXYZ]{5}", case["reference"])
    assert case["officer_name"] == "Grace Otieno"
    assert case["status"] == "open"
    assert case["sla_due_at"].startswith("2026-12-03T07:00:00")

    [alert] = _outbox(session, purpose="officer_alert")
    assert (alert.channel, alert.recipient, alert.message_key) == (
        "telegram",
        world.officer.chat_id,
        "cases.officer_alert",
    )
    assert alert.case_id is not None and alert.officer_id == world.officer.id
    assert alert.args["reference"] == case["reference"]
    assert alert.args["first_name"] == "Amina"
    assert alert.args["count"] == 10  # days past due on 1 December, 21 November unpaid
    assert alert.args["arrears"] == {"$money": ["1000.00", "KES"]}
    everything = json.dumps([alert.args, alert.buttons])
    assert PHONE not in everything and PHONE[1:] not in everything
    assert NATIONAL_ID_LAST4 not in everything
    assert "Wanjiru" not in everything and "Gikomba" not in everything
    assert re.fullmatch(r"\+2547••••\d{4}", str(alert.args["phone"]))
    assert [b["payload"] for b in alert.buttons][:2] == [
        f"case:ack:{case['reference']}",
        f"case:called:{case['reference']}",
    ]
    assert f"case:resolve:{case['reference']}:plan_agreed" in everything

    text = render(alert.message_key, alert.locale, **alert.args)
    assert "disaster (fire, flood, drought)" in text and "a pause in payments" in text
    assert "10 days past due" in text and "Amina" in text
    assert "Amina" in render(alert.message_key, "fr", **alert.args)

    session.refresh(world.loan)
    assert world.loan.collection_paused is True
    loans = api.get(f"{world.base}/loans").json()
    assert loans[0]["collection_paused"] is True

    again = api.post(f"{world.base}/cases", body, headers={"Idempotency-Key": "h-1"})
    assert (again.status_code, again.json()) == (200, case)
    assert len(_outbox(session, purpose="officer_alert")) == 1


def test_resolving_the_hardship_case_resumes_collection(api: Api, session: Session) -> None:
    world = _world(api, session, language="sw")
    other_loan = make_loan(
        session, world.borrower, schedule=[(date(2027, 1, 5), "90.00", "9", "1")]
    )
    first = api.post(f"{world.base}/cases", {"kind": "hardship"}).json()["reference"]
    # A second hardship request while the first is unresolved is added to it.
    second = api.post(f"{world.base}/cases", {"kind": "hardship"}).json()
    assert (second["reference"], second["disposition"]) == (first, "added")

    assert _act(api, first, "acknowledge", world.officer)["status"] == "acknowledged"
    assert _act(api, first, "acknowledge", world.officer)["status"] == "acknowledged"
    [update] = _outbox(session, purpose="case_update")
    assert (update.channel, update.recipient, update.locale) == ("telegram", world.user, "sw")
    assert update.message_key == "cases.update.acknowledged"
    assert update.args == {"reference": first, "officer_name": "Grace Otieno"}
    assert first in render(update.message_key, update.locale, **update.args)

    assert _act(api, first, "called", world.officer)["status"] == "called"
    session.expire_all()
    assert (world.loan.collection_paused, other_loan.collection_paused) == (True, True)
    resolved = _act(api, first, "resolve", world.officer, outcome="payment_holiday")
    assert (resolved["status"], resolved["outcome"]) == ("resolved", "payment_holiday")
    session.expire_all()
    assert (world.loan.collection_paused, other_loan.collection_paused) == (False, False)
    keys = [m.message_key for m in _outbox(session, purpose="case_update")]
    assert keys == [
        "cases.update.acknowledged",
        "cases.update.called",
        "cases.update.resolved",
    ]


def test_only_the_assigned_officer_or_the_branch_manager_may_act(
    api: Api, session: Session
) -> None:
    world = _world(api, session)
    ref = api.post(f"{world.base}/cases", {"kind": "complaint"}).json()["reference"]
    refused = _act(api, ref, "acknowledge", world.colleague)
    assert (refused["status_code"], refused["code"]) == (403, "not_case_officer")
    stranger = api.post(f"/v1/cases/{ref}/acknowledge", {"officer_chat_id": "nobody"})
    assert (stranger.status_code, stranger.json()["code"]) == (404, "officer_not_found")
    missing = _act(api, "CP-22222", "acknowledge", world.officer)
    assert (missing["status_code"], missing["code"]) == (404, "case_not_found")
    assert _act(api, ref, "resolve", world.officer)["code"] == "outcome_required"

    assert _act(api, ref, "acknowledge", world.manager)["status"] == "acknowledged"
    _act(api, ref, "resolve", world.officer, outcome="no_action")
    closed = _act(api, ref, "called", world.officer)
    assert (closed["status_code"], closed["code"]) == (409, "case_closed")


def test_a_case_nobody_acknowledged_in_time_escalates_to_the_branch_manager(
    api: Api, session: Session
) -> None:
    world = _world(api, session)
    ignored = api.post(f"{world.base}/cases", {"kind": "officer_request"}).json()["reference"]
    handled = api.post(f"{world.base}/cases", {"kind": "complaint"}).json()["reference"]
    _act(api, handled, "acknowledge", world.officer)

    api.clock.advance(hours=23)
    assert api.post("/v1/cases/escalate-overdue").json() == {"escalated": []}
    api.clock.advance(hours=2)
    assert api.post("/v1/cases/escalate-overdue").json() == {"escalated": [ignored]}
    assert api.post("/v1/cases/escalate-overdue").json() == {"escalated": []}

    [alert] = _outbox(session, purpose="officer_alert", recipient=world.manager.chat_id)
    assert alert.message_key == "cases.escalation_alert"
    assert alert.args["officer_name"] == "Grace Otieno"
    assert "Grace Otieno" in render(alert.message_key, "en", **alert.args)
    event = session.scalar(select(ContactEvent).where(ContactEvent.decision == "escalated"))
    assert event is not None and event.rule == "sla_missed"

    listed = {c["reference"]: c for c in api.get("/v1/cases", status="open").json()}
    assert listed[ignored]["escalated_to_name"] == "Peter Kariuki"
    assert listed[ignored]["sla_missed"] is True
    # The manager can now take it over.
    assert _act(api, ignored, "acknowledge", world.manager)["status"] == "acknowledged"


def test_open_cases_are_listed_by_sla_without_identity_data(api: Api, session: Session) -> None:
    world = _world(api, session)
    complaint = api.post(f"{world.base}/cases", {"kind": "complaint"}).json()["reference"]
    request = api.post(f"{world.base}/cases", {"kind": "officer_request"}).json()["reference"]
    hardship = api.post(f"{world.base}/cases", {"kind": "hardship"}).json()["reference"]
    closed = api.post(f"{world.base}/payment-claims", {"reference": "X1"}).json()
    closed = closed["case_reference"]
    _act(api, closed, "resolve", world.officer, outcome="no_action")

    listed = api.get("/v1/cases", status="open")
    mine = [
        c["reference"]
        for c in listed.json()
        if c["reference"] in {complaint, request, hardship, closed}
    ]
    assert mine == [request, hardship, complaint]
    assert NATIONAL_ID_LAST4 not in listed.text and "Wanjiru" not in listed.text

    officer = api.get(f"/v1/officers/by-chat/telegram/{world.manager.chat_id}").json()
    assert (officer["name"], officer["role"]) == ("Peter Kariuki", "manager")
    assert api.get("/v1/officers/by-chat/telegram/nobody").status_code == 404


def test_a_payment_claim_finds_the_payment_or_opens_a_case(api: Api, session: Session) -> None:
    world = _world(api, session)
    record_payment(
        session=session,
        loan=world.loan,
        amount=Decimal("1000.00"),
        currency="KES",
        external_reference="QK55TT",
        received_at=api.clock.now - timedelta(hours=3),
        method="mobile_money",
        source="webhook",
    )
    by_ref = api.post(f"{world.base}/payment-claims", {"reference": "qk55tt"}).json()
    assert by_ref["found"] is True and by_ref["payment"]["amount"] == "1000.00"
    by_amount = api.post(
        f"{world.base}/payment-claims", {"amount": "1000", "paid_on": "2026-12-01"}
    ).json()
    assert by_amount["found"] is True

    missing = api.post(
        f"{world.base}/payment-claims", {"amount": "500.00", "paid_on": "2026-11-30"}
    ).json()
    assert missing["found"] is False
    assert missing["expected_within_hours"] == 24
    assert re.fullmatch(r"PC-[23456789A-Z]{5}", missing["case_reference"])
    [alert] = _outbox(session, purpose="officer_alert")
    assert alert.args["kind"] == {"$key": "cases.kind.payment_claim", "args": {}}


def test_an_officer_reads_other_reason_for_a_category_we_have_no_words_for(
    api: Api, session: Session
) -> None:
    world = _world(api, session)
    api.post(f"{world.base}/cases", {"kind": "complaint", "category": "locust_swarm"})
    api.post(f"{world.base}/cases", {"kind": "officer_request"})
    first, second = _outbox(session, purpose="officer_alert")
    assert "Reason: other reason. Asks for: nothing specific." in render(
        first.message_key, "en", **first.args
    )
    assert "Reason: not given." in render(second.message_key, "en", **second.args)
