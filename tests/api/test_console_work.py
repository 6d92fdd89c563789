"""Working a case from the console: calls, notes and resolving, each recorded once, audited,
CSRF-checked and confined to the officer's branches (the BOLA way)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.cases import officers
from api.cases.models import CallOutcome, Case, CaseNote, CaseOutcome, CaseStatus
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage
from tests.api.conftest import Clock
from tests.api.console_pages import Portfolio, cheap_hashing, portfolio, signed_in_as

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__, portfolio.__name__)


def _post(web: TestClient, case: Case, action: str, token: str, **form: str) -> httpx.Response:
    return web.post(f"/console/cases/{case.reference}/{action}", data={"csrf_token": token, **form})


def _notes(session: Session, case: Case) -> list[CaseNote]:
    return list(session.scalars(select(CaseNote).where(CaseNote.case_id == case.id)))


def _events(session: Session, case: Case) -> list[tuple[str, str, dict[str, object]]]:
    """The audit of officers' acts on the case (rule ``officer:<role>``), oldest first."""
    query = (
        select(ContactEvent)
        .where(ContactEvent.case_id == case.id, ContactEvent.rule.startswith("officer:"))
        .order_by(ContactEvent.id)
    )
    return [(e.kind, e.decision, e.detail) for e in session.scalars(query)]


def _updates(session: Session, case: Case) -> list[tuple[str, str]]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.case_id == case.id, OutboxMessage.purpose == "case_update")
        .order_by(OutboxMessage.id)
    )
    return [(m.message_key, m.locale) for m in session.scalars(query)]


def _row_count(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(CaseNote)) or 0,
        session.scalar(select(func.count()).select_from(ContactEvent)) or 0,
        session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
    )


def test_a_call_that_reached_the_borrower_is_recorded_once_and_the_borrower_told(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    token = signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]
    form = {"outcome": "promise_to_pay", "words": "Will pay on Friday", "nonce": "n-1"}

    answers = [_post(web, case, "call", token, **form) for _ in range(2)]  # sent twice

    assert [a.status_code for a in answers] == [200, 200]
    assert f"Case {case.reference}: call recorded." in answers[0].text
    assert "Will pay on Friday" in answers[1].text
    session.refresh(case)
    assert (case.status, case.called_at) == (CaseStatus.called, clock.now)
    [note] = _notes(session, case)
    assert (note.officer_id, note.call_outcome, note.officer_words) == (
        portfolio.officer.id,
        CallOutcome.promise_to_pay,
        "Will pay on Friday",
    )
    audit = {"officer_id": portfolio.officer.id, "via": "console"}
    assert _events(session, case) == [
        ("case", "called", audit),
        ("call", "promise_to_pay", {**audit, "note_id": note.id}),
    ]
    assert _updates(session, case) == [("cases.update.called", "en")]


def test_a_call_that_reached_nobody_claims_the_case_and_is_not_called(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    token = signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]

    response = _post(web, case, "call", token, outcome="no_answer", nonce="n-2")

    assert response.status_code == 200
    session.refresh(case)
    assert (case.status, case.called_at) == (CaseStatus.acknowledged, None)
    assert [n.call_outcome for n in _notes(session, case)] == [CallOutcome.no_answer]
    assert [(kind, decision) for kind, decision, _ in _events(session, case)] == [
        ("case", "acknowledged"),
        ("call", "no_answer"),
    ]
    assert _updates(session, case) == [("cases.update.acknowledged", "en")]


def test_a_note_is_kept_once_audited_and_tells_nobody(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    token = signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]

    answers = [
        _post(web, case, "note", token, words="Shop closed <b>after</b> the floods", nonce="n-3")
        for _ in range(2)
    ]

    assert [a.status_code for a in answers] == [200, 200]
    assert f"Case {case.reference}: note saved." in answers[0].text
    assert "Shop closed &lt;b&gt;after&lt;/b&gt; the floods" in answers[1].text
    [note] = _notes(session, case)
    assert (note.officer_words, note.call_outcome) == ("Shop closed <b>after</b> the floods", None)
    assert _events(session, case) == [
        (
            "case",
            "noted",
            {"officer_id": portfolio.officer.id, "note_id": note.id, "via": "console"},
        )
    ]
    assert _updates(session, case) == []
    session.refresh(case)
    assert case.status == CaseStatus.open


def test_resolving_tells_the_borrower_in_their_language_once(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    case = portfolio.cases["a_new"]
    session.get_one(Borrower, case.borrower_id).preferred_language = "sw"
    session.commit()
    token = signed_in_as(web, "officer")

    answers = [_post(web, case, "resolve", token, outcome="plan_agreed") for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 200]
    assert f"Case {case.reference} resolved: Plan agreed." in answers[0].text
    session.refresh(case)
    assert (case.status, case.outcome, case.resolved_at) == (
        CaseStatus.resolved,
        CaseOutcome.plan_agreed,
        clock.now,
    )
    audit = {"officer_id": portfolio.officer.id, "outcome": "plan_agreed", "via": "console"}
    assert _events(session, case) == [("case", "resolved", audit)]
    assert _updates(session, case) == [("cases.update.resolved", "sw")]
    assert 'action="/console/cases/' not in answers[1].text  # no forms on a resolved case


def test_a_resolved_case_takes_no_more_calls_or_notes(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    token = signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]
    _post(web, case, "resolve", token, outcome="no_action")
    before = _row_count(session)

    call = _post(web, case, "call", token, outcome="answered", nonce="n-4")
    note = _post(web, case, "note", token, words="late", nonce="n-5")

    assert (call.status_code, note.status_code) == (409, 409)
    assert f"Case {case.reference} is already resolved." in call.text
    assert _row_count(session) == before


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("call", {"outcome": "answered", "nonce": "n-6"}),
        ("note", {"words": "hello", "nonce": "n-7"}),
        ("resolve", {"outcome": "no_action"}),
    ],
)
def test_working_a_case_without_the_form_token_is_refused(
    web: TestClient, portfolio: Portfolio, session: Session, action: str, form: dict[str, str]
) -> None:
    signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]
    before = _row_count(session)

    missing = web.post(f"/console/cases/{case.reference}/{action}", data=form)
    forged = _post(web, case, action, "forged", **form)

    assert (missing.status_code, forged.status_code) == (403, 403)
    assert _row_count(session) == before
    session.refresh(case)
    assert case.status == CaseStatus.open


@pytest.mark.parametrize(("who", "outside"), [("officer", "b"), ("officer", "c"), ("manager", "c")])
@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("call", {"outcome": "answered", "nonce": "n-8"}),
        ("note", {"words": "hello", "nonce": "n-9"}),
        ("resolve", {"outcome": "no_action"}),
    ],
)
def test_a_case_of_another_branch_is_not_found(
    web: TestClient,
    portfolio: Portfolio,
    session: Session,
    who: str,
    outside: str,
    action: str,
    form: dict[str, str],
) -> None:
    token = signed_in_as(web, who)
    case = portfolio.cases[outside]
    before = _row_count(session)

    response = _post(web, case, action, token, **form)
    missing = web.post(f"/console/cases/HD-ZZZZZ/{action}", data={"csrf_token": token, **form})
    page = web.get(f"/console/cases/{case.reference}")

    assert (response.status_code, missing.status_code, page.status_code) == (404, 404, 404)
    assert response.text == missing.text == page.text
    assert _row_count(session) == before


def test_an_officer_may_not_work_a_colleagues_case(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    token = signed_in_as(web, "officer")
    case = portfolio.cases["a_colleague"]
    before = _row_count(session)

    response = _post(web, case, "call", token, outcome="answered", nonce="n-10")

    assert response.status_code == 403
    assert f"Case {case.reference} is assigned to another officer." in response.text
    assert _row_count(session) == before


def test_the_case_page_works_in_french(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    portfolio.officer.locale = "fr"
    session.commit()
    signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]

    page = web.get(f"/console/cases/{case.reference}")

    assert page.status_code == 200
    assert "Enregistrer un appel" in page.text and "Mauvais numéro" in page.text
    assert "Clôturer le cas" in page.text and "Record a call" not in page.text
    assert f'href="/console/borrowers/{case.borrower_id}"' in page.text


@pytest.mark.parametrize(("who", "name"), [("manager", "b"), ("admin", "c")])
def test_a_manager_or_admin_works_any_case_of_their_scope(
    web: TestClient, portfolio: Portfolio, session: Session, who: str, name: str
) -> None:
    token = signed_in_as(web, who)
    case = portfolio.cases[name]

    response = _post(web, case, "resolve", token, outcome="no_action")

    assert response.status_code == 200
    session.refresh(case)
    assert (case.status, case.outcome) == (CaseStatus.resolved, CaseOutcome.no_action)
    assert [decision for _, decision, _ in _events(session, case)] == ["resolved"]


def test_the_queue_links_each_case_and_borrower_to_their_pages(
    web: TestClient, portfolio: Portfolio
) -> None:
    signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]

    queue = web.get("/console/queue").text

    assert f'href="/console/cases/{case.reference}"' in queue
    assert f'href="/console/borrowers/{case.borrower_id}"' in queue


def test_a_form_that_lost_a_race_for_its_nonce_shows_the_case_as_it_stands(
    web: TestClient, portfolio: Portfolio, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = signed_in_as(web, "officer")
    case = portfolio.cases["a_new"]
    form = {"outcome": "answered", "nonce": "n-11"}
    _post(web, case, "call", token, **form)
    before = _row_count(session)
    # As if the first request committed after the second looked for its nonce.
    monkeypatch.setattr(officers, "_earlier_note", lambda *_args: None)

    response = _post(web, case, "call", token, **form)

    assert response.status_code == 409
    assert f"Case {case.reference} was changed at the same moment" in response.text
    assert _row_count(session) == before
