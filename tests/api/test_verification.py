"""A chat sees account data only after proving the phone and one knowledge factor."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.core.config import get_settings
from tests.api.conftest import Api
from tests.api.factories import (
    DEFAULT_DOB,
    DEFAULT_NATIONAL_ID_LAST4,
    aware,
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
    unique_phone,
)

SCHEDULE = [(aware(2026, 12, 15).date(), "1000.00", "200.00", "50.00")]


def _borrower(session: Session) -> Borrower:
    branch = make_branch(session)
    borrower = make_borrower(session, branch, officer=make_officer(session, branch))
    make_loan(session, borrower, schedule=SCHEDULE)
    return borrower


def _answer(factor: str) -> str:
    return DEFAULT_DOB.strftime("%d/%m/%Y") if factor == "dob" else DEFAULT_NATIONAL_ID_LAST4


def _verify(api: Api, user: str, phone: str) -> str:
    base = f"/v1/identities/telegram/{user}"
    factor = api.post(f"{base}/verification/start", {"phone": phone}).json()["factor"]
    response = api.post(
        f"{base}/verification/complete", {"factor": factor, "value": _answer(factor)}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_every_route_but_health_and_docs_needs_the_service_token(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    calls = [
        (method, re.sub(r"\{[^}]+\}", "telegram", path))
        for path, methods in spec["paths"].items()
        for method in methods
        if path != "/health"
    ]
    assert len(calls) >= 17
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            response = api.client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path)
            assert response.json()["code"] == "unauthorized"
    assert api.client.get("/health").status_code == 200
    assert api.client.get("/docs").status_code == 200


def test_a_verified_chat_reads_its_loans_and_a_new_chat_is_unverified(
    api: Api, session: Session
) -> None:
    borrower = _borrower(session)
    assert api.get("/v1/identities/telegram/555").json() == {
        "status": "unverified",
        "locale": "en",
        "first_name": None,
        "timezone": None,
    }
    assert api.get("/v1/identities/telegram/555/loans").status_code == 403

    assert _verify(api, "555", borrower.phone_e164) == "verified"

    identity = api.get("/v1/identities/telegram/555").json()
    assert identity == {
        "status": "verified",
        "locale": "en",
        "first_name": "Amina",
        "timezone": "Africa/Nairobi",
    }
    loans = api.get("/v1/identities/telegram/555/loans").json()
    assert [loan["outstanding"] for loan in loans] == ["1250.00"]


def test_idle_chat_expires_and_reverifies_without_sending_the_phone_again(
    api: Api, session: Session
) -> None:
    borrower = _borrower(session)
    _verify(api, "77", borrower.phone_e164)
    api.clock.advance(minutes=14)
    assert api.get("/v1/identities/telegram/77/loans").status_code == 200  # refreshes
    api.clock.advance(minutes=14)
    assert api.get("/v1/identities/telegram/77/loans").status_code == 200
    api.clock.advance(minutes=16)

    assert api.get("/v1/identities/telegram/77").json()["status"] == "expired"
    denied = api.get("/v1/identities/telegram/77/loans")
    assert denied.status_code == 403
    assert denied.json()["code"] == "verification_required"
    assert "outstanding" not in denied.text

    base = "/v1/identities/telegram/77/verification"
    factor = api.post(f"{base}/start", {}).json()["factor"]
    assert (
        api.post(f"{base}/complete", {"factor": factor, "value": _answer(factor)}).status_code
        == 200
    )
    assert api.get("/v1/identities/telegram/77/loans").status_code == 200


def test_five_failures_lock_the_chat_for_thirty_minutes(api: Api, session: Session) -> None:
    borrower = _borrower(session)
    base = "/v1/identities/whatsapp/254700/verification"
    api.post(f"{base}/start", {"phone": borrower.phone_e164})
    answers = [
        api.post(f"{base}/complete", {"factor": "dob", "value": "01/01/1990"}) for _ in range(5)
    ]

    assert [a.status_code for a in answers] == [401, 401, 401, 401, 423]
    assert [a.json().get("attempts_left") for a in answers[:4]] == [4, 3, 2, 1]
    assert answers[4].json()["code"] == "locked"
    locked_until = answers[4].json()["locked_until"]
    assert locked_until.startswith("2026-12-01T07:30:00")

    # Even the right answer is refused while locked, and the status says so.
    right = {"factor": "dob", "value": DEFAULT_DOB.isoformat()}
    assert api.post(f"{base}/complete", right).status_code == 423
    assert api.post(f"{base}/start", {"phone": borrower.phone_e164}).status_code == 423
    assert api.get("/v1/identities/whatsapp/254700").json()["status"] == "locked"

    api.clock.advance(minutes=30, seconds=1)
    assert api.post(f"{base}/complete", right).status_code == 200
    assert api.get("/v1/identities/whatsapp/254700").json()["status"] == "verified"


def test_unknown_and_known_phones_get_identical_answers(api: Api, session: Session) -> None:
    known = _borrower(session)
    unknown = unique_phone()
    assert session.scalar(select(func.count()).where(Borrower.phone_e164 == unknown)) == 0

    def transcript(user: str, phone: str) -> list[tuple[int, bytes]]:
        base = f"/v1/identities/telegram/{user}"
        steps = [api.post(f"{base}/verification/start", {"phone": phone})]
        steps += [
            api.post(f"{base}/verification/complete", {"factor": "national_id", "value": "0000"})
            for _ in range(5)
        ]
        steps.append(api.get(base))
        return [(r.status_code, r.content) for r in steps]

    known_answers = transcript("1001", known.phone_e164)
    unknown_answers = transcript("1002", unknown)
    # The factor is derived from the phone alone; compare everything else byte for byte.
    assert [c for c, _ in known_answers] == [c for c, _ in unknown_answers]
    assert known_answers[1:] == unknown_answers[1:]


def test_start_needs_a_valid_phone_and_complete_needs_a_start(api: Api) -> None:
    base = "/v1/identities/telegram/4242/verification"
    assert api.post(f"{base}/complete", {"factor": "dob", "value": "x"}).json()["code"] == (
        "verification_not_started"
    )
    assert api.post(f"{base}/start", {}).json()["code"] == "phone_required"
    assert api.post(f"{base}/start", {"phone": "0712"}).json()["code"] == "invalid_phone"


def test_a_different_phone_unbinds_the_chat(api: Api, session: Session) -> None:
    borrower = _borrower(session)
    _verify(api, "31", borrower.phone_e164)
    # A phone named in a request body does not move a chat that proved one...
    api.post("/v1/identities/telegram/31/verification/start", {"phone": unique_phone()})
    assert api.get("/v1/identities/telegram/31").json()["status"] == "verified"
    # ...a new phone the channel proved (the gateway registers it) does.
    api.put("/v1/identities/telegram/31/alias", {"phone": unique_phone()})
    api.post("/v1/identities/telegram/31/verification/start", {})
    assert api.get("/v1/identities/telegram/31").json()["status"] == "unverified"
    assert api.get("/v1/identities/telegram/31/loans").status_code == 403


def test_policy_numbers_are_the_documented_ones() -> None:
    policy = get_settings().verification
    assert (policy.max_failures, policy.lockout_minutes, policy.idle_minutes) == (5, 30, 15)


def test_a_chat_reads_days_in_its_borrowers_time_zone_before_and_after_the_check(
    api: Api, session: Session
) -> None:
    """The bot reads "tomorrow" on the borrower's clock from the first message: before the
    check, the zone of the proven phone's number (the same whether a borrower owns it or not);
    after it, the verified borrower's branch zone."""
    branch = make_branch(session, timezone="America/Mexico_City")
    mexican = f"+5255{uuid.uuid4().int % 10**8:08d}"  # a mobile in Mexico City's prefix
    borrower = make_borrower(session, branch, phone=mexican, officer=make_officer(session, branch))
    make_loan(session, borrower, schedule=SCHEDULE)
    # Lives in Mexico, keeps a Kenyan phone: the phone's zone until the check, then hers.
    abroad = make_borrower(session, branch, phone=unique_phone())
    session.commit()

    def zone_before_and_after(user: str, phone: str) -> tuple[str | None, str | None, str | None]:
        base = f"/v1/identities/whatsapp/{user}"
        unknown_chat = api.get(base).json()["timezone"]
        api.put(f"{base}/alias", {"phone": phone})
        before = api.get(base).json()
        assert before["status"] == "unverified"
        factor = api.post(f"{base}/verification/start", {}).json()["factor"]
        done = api.post(
            f"{base}/verification/complete", {"factor": factor, "value": _answer(factor)}
        )
        return unknown_chat, before["timezone"], done.json()["timezone"]

    assert zone_before_and_after("mx-1", mexican) == (
        None,
        "America/Mexico_City",
        "America/Mexico_City",
    )
    assert zone_before_and_after("mx-2", abroad.phone_e164) == (
        None,
        "Africa/Nairobi",
        "America/Mexico_City",
    )
