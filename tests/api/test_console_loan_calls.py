"""A call recorded from a broken promise's follow-up, without a case: the contact ledger keeps
it as it keeps a call on a case, the queue follows it as it follows calls on cases, the
borrower's timeline shows it, and the form holds the console's rules (CSRF token, one-time
nonce, branch scope, a clear refusal of an outcome it does not offer)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.cases.models import CallOutcome, LoanCall
from api.ledger.models import ContactEvent
from api.loans.models import Loan
from tests.api.conftest import Clock
from tests.api.console_pages import (
    Portfolio,
    cheap_hashing,
    portfolio,
    promise_on,
    promiser,
    record_promise_form,
    signed_in_as,
)

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__, portfolio.__name__)

_ROW_ID = re.compile(r'id="(follow-up-[a-z_]+-(?:call-)?\d+)"')


def _broken(session: Session, portfolio: Portfolio, clock: Clock) -> tuple[Loan, str]:
    """A loan whose promise (1,000 by 2 December) is broken, and its follow-up's row id."""
    loan = promiser(session, portfolio.a, portfolio.officer, clock)
    promise = promise_on(session, loan, clock)
    clock.advance(days=3)
    return loan, f"follow-up-broken_promise-{promise.id}"


def _rows(web: TestClient, who: str = "officer") -> list[str]:
    """Sign in again (the clock may have passed the session's idle time) and read the ids of
    the queue's follow-ups, in the page's order."""
    signed_in_as(web, who)
    page = web.get("/console/queue")
    assert page.status_code == 200, page.text
    return _ROW_ID.findall(page.text)


def _call(
    web: TestClient, loan: Loan, token: str | None, nonce: str, **form: str
) -> tuple[int, str]:
    data = {"loan": str(loan.id), "nonce": nonce, **form}
    if token is not None:
        data["csrf_token"] = token
    answer = web.post(f"/console/borrowers/{loan.borrower_id}/call", data=data)
    return answer.status_code, answer.text


def _calls(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(LoanCall)) or 0


def _ledger_calls(session: Session, loan: Loan) -> list[ContactEvent]:
    query = select(ContactEvent).where(ContactEvent.loan_id == loan.id, ContactEvent.kind == "call")
    return list(session.scalars(query.order_by(ContactEvent.id)))


def _latest(session: Session, loan: Loan) -> LoanCall:
    query = select(LoanCall).where(LoanCall.loan_id == loan.id).order_by(LoanCall.id.desc())
    call = session.scalars(query).first()
    assert call is not None
    return call


@pytest.mark.parametrize("outcome", ["answered", "paid", "dispute", "refused", "wrong_number"])
def test_a_call_that_dealt_with_a_broken_promise_takes_it_off_the_queue_and_is_audited(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock, outcome: str
) -> None:
    loan, row = _broken(session, portfolio, clock)
    assert _rows(web) == [row]
    page = web.get("/console/queue").text
    assert f'href="/console/borrowers/{loan.borrower_id}#call-form">Call and record' in page

    status, text = _call(
        web, loan, signed_in_as(web, "officer"), "c-1", outcome=outcome, words="  Spoke at 9  "
    )

    assert status == 200, text
    shown = {"answered": "Answered", "paid": "Says they have paid"}.get(outcome)
    if shown:
        assert f"Call recorded: {shown}." in text
    assert _rows(web) == []
    call = _latest(session, loan)
    assert (call.call_outcome, call.officer_words, call.officer_id) == (
        CallOutcome(outcome),
        "Spoke at 9",
        portfolio.officer.id,
    )
    [event] = _ledger_calls(session, loan)
    assert (event.direction, event.channel, event.decision, event.rule) == (
        "outbound",
        "phone",
        outcome,
        "officer:officer",
    )
    assert (event.borrower_id, event.loan_id, event.case_id, event.at) == (
        loan.borrower_id,
        loan.id,
        None,
        clock.now,
    )
    assert event.detail == {
        "officer_id": portfolio.officer.id,
        "call_id": call.id,
        "via": "console",
    }


@pytest.mark.parametrize(
    ("outcome", "shown"), [("no_answer", "No answer"), ("unreachable", "Unreachable")]
)
def test_a_call_that_reached_nobody_is_due_again_after_the_call_back_hours(
    web: TestClient,
    portfolio: Portfolio,
    session: Session,
    clock: Clock,
    outcome: str,
    shown: str,
) -> None:
    loan, _ = _broken(session, portfolio, clock)
    status, text = _call(web, loan, signed_in_as(web, "officer"), "c-2", outcome=outcome)
    assert status == 200, text
    call = _latest(session, loan)

    assert _rows(web) == []
    clock.advance(hours=23, minutes=59)
    assert _rows(web) == []
    clock.advance(minutes=1)  # KOPA_CASES__CALL_BACK_HOURS: 24 by default
    assert _rows(web) == [f"follow-up-call_back-call-{call.id}"]
    only = web.get("/console/queue", params={"kind": "call_back"}).text
    assert _ROW_ID.findall(only) == [f"follow-up-call_back-call-{call.id}"]
    assert _ROW_ID.findall(web.get("/console/queue", params={"kind": "broken_promise"}).text) == []
    page = web.get("/console/queue").text
    assert "Call again" in page
    assert f"Last call: {shown}" in page
    assert f'href="/console/borrowers/{loan.borrower_id}#call-form"' in page

    status, text = _call(web, loan, signed_in_as(web, "officer"), "c-3", outcome="answered")
    assert status == 200, text
    assert _rows(web) == []


def test_a_promise_made_on_the_phone_is_due_until_it_is_recorded(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    loan, _ = _broken(session, portfolio, clock)
    token = signed_in_as(web, "officer")
    status, text = _call(web, loan, token, "c-4", outcome="promise_to_pay")
    assert status == 200, text
    call = _latest(session, loan)

    assert _rows(web) == [f"follow-up-record_promise-call-{call.id}"]
    page = web.get("/console/queue").text
    assert "Last call: Promised to pay" in page
    assert f'href="/console/borrowers/{loan.borrower_id}#promise-form">Open the borrower' in page

    record_promise_form(web, loan.borrower_id, loan.id, "c-5", "2026-12-08")
    assert _rows(web) == []


def test_the_borrowers_timeline_shows_the_call_and_the_officers_words(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    loan, _ = _broken(session, portfolio, clock)
    token = signed_in_as(web, "officer")
    _call(web, loan, token, "c-6", outcome="refused", words="Says the <b>shop</b> is closed")

    page = web.get(f"/console/borrowers/{loan.borrower_id}").text

    assert f"Grace Otieno called about loan {loan.account_reference}: Refused to pay" in page
    assert "<q>Says the &lt;b&gt;shop&lt;/b&gt; is closed</q>" in page
    assert "<code>phone · refused · officer:officer</code>" in page


def test_the_call_form_speaks_the_officers_language(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    loan, _ = _broken(session, portfolio, clock)
    portfolio.officer.locale = "sw"
    session.commit()
    token = signed_in_as(web, "officer")
    assert "Piga simu na urekodi" in web.get("/console/queue").text

    status, text = _call(web, loan, token, "c-7", outcome="answered")

    assert status == 200, text
    assert "Rekodi simu kuhusu mkopo" in text
    assert "Simu imerekodiwa: Alijibu." in text


def test_a_form_sent_twice_records_one_call(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    loan, _ = _broken(session, portfolio, clock)
    token = signed_in_as(web, "officer")

    first = _call(web, loan, token, "c-8", outcome="no_answer")
    again = _call(web, loan, token, "c-8", outcome="no_answer")

    assert (first[0], again[0]) == (200, 200)
    assert _calls(session) == 1
    assert len(_ledger_calls(session, loan)) == 1


@pytest.mark.parametrize("token", [None, "forged"])
def test_a_call_without_the_form_token_is_refused_and_writes_nothing(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock, token: str | None
) -> None:
    loan, row = _broken(session, portfolio, clock)
    signed_in_as(web, "officer")

    status, _ = _call(web, loan, token, "c-9", outcome="answered")

    assert status == 403
    assert (_calls(session), _ledger_calls(session, loan)) == (0, [])
    assert _rows(web) == [row]


@pytest.mark.parametrize("outcome", ["nonsense", ""])
def test_an_outcome_the_form_does_not_offer_is_refused_on_the_form(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock, outcome: str
) -> None:
    loan, row = _broken(session, portfolio, clock)
    token = signed_in_as(web, "officer")

    status, text = _call(web, loan, token, "c-10", outcome=outcome, words="kept")

    assert status == 422
    assert "Choose what happened on the call." in text
    assert 'value="kept"' in text
    assert (_calls(session), _ledger_calls(session, loan)) == (0, [])
    assert _rows(web) == [row]


@pytest.mark.parametrize(("who", "outside"), [("officer", "b"), ("officer", "c"), ("manager", "c")])
def test_a_borrower_of_another_branch_is_not_found(
    web: TestClient,
    portfolio: Portfolio,
    session: Session,
    clock: Clock,
    who: str,
    outside: str,
) -> None:
    branch = portfolio.b if outside == "b" else portfolio.c
    theirs = promiser(session, branch, portfolio.admin, clock)
    token = signed_in_as(web, who)

    refused = _call(web, theirs, token, "c-11", outcome="answered")
    missing = web.post(
        "/console/borrowers/999999/call",
        data={"csrf_token": token, "nonce": "c-12", "loan": str(theirs.id), "outcome": "answered"},
    )

    assert (refused[0], missing.status_code) == (404, 404)
    assert refused[1] == missing.text
    assert (_calls(session), _ledger_calls(session, theirs)) == (0, [])
