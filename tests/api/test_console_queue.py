"""The console's queue: scope per role (the BOLA way), order, claiming, French pages."""

from __future__ import annotations

import html
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.cases.models import Case, CaseStatus
from api.ledger.models import ContactEvent
from api.loans.models import Loan
from api.outbox.models import OutboxMessage
from i18n import format_moment, format_money
from tests.api.conftest import Clock
from tests.api.console_pages import (
    Portfolio,
    cheap_hashing,
    make_staff,
    portfolio,
    shown_cases,
    sign_in,
    signed_in_as,
)

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__, portfolio.__name__)


def _claim(web: TestClient, token: str, case: Case, **headers: str) -> httpx.Response:
    return web.post(
        f"/console/cases/{case.reference}/claim", data={"csrf_token": token}, headers=headers
    )


def _borrower_updates(session: Session, case: Case) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(
        OutboxMessage.case_id == case.id, OutboxMessage.purpose == "case_update"
    )
    return list(session.scalars(query))


def test_the_queue_needs_a_session(web: TestClient) -> None:
    response = web.get("/console/queue", follow_redirects=False)

    assert (response.status_code, response.headers["location"]) == (303, "/console/login")


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("officer", ["a_missed", "a_old", "a_new", "a_colleague"]),
        ("manager", ["a_missed", "a_old", "a_new", "a_colleague", "b"]),
        ("admin", ["a_missed", "a_old", "a_new", "a_colleague", "b", "c"]),
    ],
)
def test_each_role_sees_its_scope_missed_deadlines_first_then_oldest(
    web: TestClient, portfolio: Portfolio, who: str, expected: list[str]
) -> None:
    sign_in(web, f"{who}@mfi.example")

    page = web.get("/console/queue")

    assert page.status_code == 200
    assert shown_cases(page.text, portfolio) == expected
    assert "deadline missed" in page.text
    assert "Wanjiku" in page.text and "Njeri" not in page.text  # first names only


@pytest.mark.parametrize(("who", "outside"), [("officer", "b"), ("officer", "c"), ("manager", "c")])
def test_a_case_outside_ones_branches_is_not_found(
    web: TestClient, portfolio: Portfolio, session: Session, who: str, outside: str
) -> None:
    token = signed_in_as(web, who)
    case = portfolio.cases[outside]

    response = _claim(web, token, case)
    missing = web.post("/console/cases/HD-ZZZZZ/claim", data={"csrf_token": token})

    assert (response.status_code, missing.status_code) == (404, 404)
    assert response.text == missing.text  # another branch's reference cannot be told apart
    session.refresh(case)
    assert case.status == CaseStatus.open


def test_claiming_from_the_queue_acknowledges_the_case_and_tells_the_borrower(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    token = signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]

    response = _claim(web, token, case, **{"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="case-{case.reference}"')
    assert f"Case {case.reference} acknowledged. The borrower has been told." in response.text
    session.refresh(case)
    assert (case.status, case.acknowledged_at) == (CaseStatus.acknowledged, clock.now)
    audit = session.scalars(
        select(ContactEvent).where(
            ContactEvent.case_id == case.id, ContactEvent.decision == "acknowledged"
        )
    ).one()
    assert (audit.rule, audit.detail) == (
        "officer:officer",
        {"officer_id": portfolio.officer.id, "via": "console"},
    )
    assert [m.message_key for m in _borrower_updates(session, case)] == [
        "cases.update.acknowledged"
    ]


def test_claiming_twice_changes_nothing_the_second_time(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    token = signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]

    answers = [_claim(web, token, case).status_code for _ in range(2)]

    assert answers == [200, 200]
    assert len(_borrower_updates(session, case)) == 1


@pytest.mark.parametrize(
    ("who", "name", "answer", "status", "notice"),
    [
        # A colleague's case is theirs (or the manager's) to claim, as with the chat buttons.
        ("officer", "a_colleague", 403, CaseStatus.open, "is assigned to another officer."),
        ("manager", "b", 200, CaseStatus.acknowledged, "acknowledged. The borrower has been"),
        ("admin", "a_colleague", 200, CaseStatus.acknowledged, "acknowledged. The borrower"),
    ],
)
def test_who_may_claim_a_case_of_their_scope(
    web: TestClient,
    portfolio: Portfolio,
    session: Session,
    who: str,
    name: str,
    answer: int,
    status: CaseStatus,
    notice: str,
) -> None:
    token = signed_in_as(web, who)
    case = portfolio.cases[name]

    response = _claim(web, token, case)

    assert response.status_code == answer
    assert f"Case {case.reference} {notice}" in response.text
    session.refresh(case)
    assert case.status == status


def test_claiming_without_the_form_token_is_refused(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    sign_in(web, "officer@mfi.example")
    case = portfolio.cases["a_new"]

    no_token = web.post(f"/console/cases/{case.reference}/claim")
    forged = web.post(f"/console/cases/{case.reference}/claim", data={"csrf_token": "x"})

    assert (no_token.status_code, forged.status_code) == (403, 403)
    session.refresh(case)
    assert case.status == CaseStatus.open


def test_the_queue_speaks_french_with_french_amounts_and_dates(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    french = make_staff(session, [portfolio.a], email="agent@mfi.example", locale="fr")
    session.commit()
    sign_in(web, french.email)

    text = html.unescape(web.get("/console/queue").text)

    case = portfolio.cases["a_new"]
    loan = session.get_one(Loan, case.loan_id)
    borrower = session.get_one(Borrower, case.borrower_id)
    assert borrower.branch_id == portfolio.a.id
    assert '<html lang="fr">' in text
    assert "Cas à traiter" in text and "4 cas ouverts" in text
    assert "délai dépassé" in text and "Prendre en charge" in text
    assert "demande d'aide (difficultés)" in text  # the case kind, from the cases catalog
    arrears = format_money("1650.00", loan.currency, "fr")
    assert arrears in text and arrears != format_money("1650.00", loan.currency, "en")
    due = format_moment(case.sla_due_at, "fr", portfolio.a.timezone)
    assert due in text and "déc." in due
    assert "Deadline" not in text and "Claim" not in text
    assert clock.now - case.created_at == timedelta(hours=25)
