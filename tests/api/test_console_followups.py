"""Follow-ups due in the queue: broken promises and calls to follow up appear when due, leave
when paid or handled, follow the queue's order and filters, and stay in the officer's scope."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.cases import service as case_service
from api.cases.models import Case, CaseKind, CaseNote
from api.loans.models import Loan, LoanStatus
from api.payments import service as payment_service
from api.promises.models import PromiseToPay
from api.risk.models import RiskScore, RiskScorecard
from tests.api.conftest import Clock
from tests.api.console_pages import (
    PROMISED,
    Portfolio,
    cheap_hashing,
    portfolio,
    promise_on,
    promiser,
    record_promise_form,
    shown_cases,
    signed_in_as,
)

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__, portfolio.__name__)

_ROW = re.compile(r'id="follow-up-([a-z_]+)-(\d+)"')


def _score(session: Session, loan: Loan, probability: str) -> None:
    card = session.scalars(select(RiskScorecard)).first()
    if card is None:
        card = RiskScorecard(
            fitted_from=date(2026, 6, 30), fitted_through=PROMISED, snapshots=0, events=0, card={}
        )
        session.add(card)
        session.flush()
    session.add(
        RiskScore(
            loan_id=loan.id,
            scorecard_id=card.id,
            as_of=PROMISED,
            points=60,
            probability=Decimal(probability),
            reasons=[{"feature": "broken_promises", "bin": "2+", "points": 25}],
            features={},
        )
    )
    session.commit()


def _follow_ups(web: TestClient, who: str = "officer", **filters: str) -> list[tuple[str, int]]:
    """Sign in again (the clock moved past the session's idle time) and read the queue's
    follow-ups, in the page's order."""
    signed_in_as(web, who)
    page = web.get("/console/queue", params=filters)
    assert page.status_code == 200, page.text
    return [(kind, int(item)) for kind, item in _ROW.findall(page.text)]


def test_a_broken_promise_is_due_after_its_grace_and_leaves_once_paid(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    loan = promiser(session, portfolio.a, portfolio.officer, clock)
    promise = promise_on(session, loan, clock)
    clock.advance(hours=2 * 24 + 10)  # 4 December, 23:00 in Nairobi: the last grace day

    assert _follow_ups(web) == []

    clock.advance(hours=1)  # midnight in Nairobi: the chance is over, nothing paid
    assert _follow_ups(web) == [("broken_promise", promise.id)]
    page = web.get("/console/queue").text
    assert "Promise not kept" in page
    assert "Promised Ksh1,000.00 by Wednesday, 2 December 2026; Ksh0.00 paid" in page
    assert f'href="/console/borrowers/{loan.borrower_id}#promise-form"' in page

    payment_service.record_payment(
        session=session,
        loan=loan,
        amount=Decimal("1000.00"),
        currency="KES",
        external_reference="MPESA-LATE-1",
        received_at=clock.now,
        method="mobile_money",
    )
    session.commit()
    assert _follow_ups(web) == []


def test_a_part_paid_promise_stays_due_and_an_open_case_takes_it_over(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    loan = promiser(session, portfolio.a, portfolio.officer, clock)
    promise = promise_on(session, loan, clock)
    payment_service.record_payment(
        session=session,
        loan=loan,
        amount=Decimal("400.00"),
        currency="KES",
        external_reference="MPESA-PART-1",
        received_at=clock.now + timedelta(hours=1),
        method="mobile_money",
    )
    session.commit()
    clock.advance(days=3)

    assert _follow_ups(web) == [("broken_promise", promise.id)]
    assert "Ksh400.00 paid" in web.get("/console/queue").text

    case_service.open_case(
        session=session,
        borrower=session.get_one(Borrower, loan.borrower_id),
        kind=CaseKind.hardship,
        now=clock.now,
        channel="telegram",
        loan=loan,
    )
    session.commit()
    assert _follow_ups(web) == []


def _promise_again(session: Session, loan: Loan, clock: Clock) -> None:
    promise_on(session, loan, clock, on=date(2026, 12, 10))


def _write_off(session: Session, loan: Loan, clock: Clock) -> None:
    loan.status = LoanStatus.written_off
    session.commit()


@pytest.mark.parametrize("handled", [_promise_again, _write_off])
def test_a_new_promise_or_a_loan_no_longer_collected_ends_the_follow_up(
    web: TestClient,
    portfolio: Portfolio,
    session: Session,
    clock: Clock,
    handled: Callable[[Session, Loan, Clock], None],
) -> None:
    loan = promiser(session, portfolio.a, portfolio.officer, clock)
    promise_on(session, loan, clock)
    clock.advance(days=3)
    assert [kind for kind, _ in _follow_ups(web)] == ["broken_promise"]

    handled(session, loan, clock)

    assert _follow_ups(web) == []


def _call(web: TestClient, case: Case, token: str, outcome: str, nonce: str) -> None:
    answer = web.post(
        f"/console/cases/{case.reference}/call",
        data={"csrf_token": token, "outcome": outcome, "nonce": nonce},
    )
    assert answer.status_code == 200, answer.text


def _latest_call(session: Session, case: Case) -> CaseNote:
    query = select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.id.desc())
    note = session.scalars(query).first()
    assert note is not None
    return note


def test_a_call_that_reached_nobody_is_due_again_a_day_later_until_the_next_call(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    case = portfolio.cases["a_new"]
    _call(web, case, signed_in_as(web, "officer"), "no_answer", "f-1")
    note = _latest_call(session, case)

    assert _follow_ups(web) == []
    clock.advance(hours=24)
    assert _follow_ups(web) == [("call_back", note.id)]
    page = web.get("/console/queue").text
    assert f"Case {case.reference}: No answer" in page
    assert f'href="/console/cases/{case.reference}">Open case {case.reference}' in page

    _call(web, case, signed_in_as(web, "officer"), "answered", "f-2")
    assert _follow_ups(web) == []


def test_a_promise_made_on_the_phone_is_due_until_it_is_recorded(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    case = portfolio.cases["a_new"]
    _call(web, case, signed_in_as(web, "officer"), "promise_to_pay", "f-3")
    note = _latest_call(session, case)

    assert _follow_ups(web) == [("record_promise", note.id)]

    record_promise_form(web, case.borrower_id, case.loan_id, "f-4", "2026-12-04")
    assert _follow_ups(web) == []


def test_late_follow_ups_come_first_then_the_riskiest_then_unscored(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    loans = {n: promiser(session, portfolio.a, portfolio.officer, clock) for n in "wxyz"}
    late = promise_on(session, loans["w"], clock)  # over at the start of 5 December
    clock.advance(days=1)
    today = {n: promise_on(session, loans[n], clock, on=date(2026, 12, 3)) for n in "xyz"}
    _score(session, loans["w"], "0.10")
    _score(session, loans["x"], "0.20")
    _score(session, loans["y"], "0.70")
    clock.advance(days=2, hours=12)  # 6 December, 01:00 in Nairobi

    assert _follow_ups(web) == [
        ("broken_promise", late.id),
        ("broken_promise", today["y"].id),
        ("broken_promise", today["x"].id),
        ("broken_promise", today["z"].id),
    ]
    page = web.get("/console/queue").text
    assert f'id="follow-up-broken_promise-{late.id}" class="missed"' in page


def test_the_queue_filters_narrow_follow_ups_too(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    mine = promise_on(session, promiser(session, portfolio.a, portfolio.officer, clock), clock)
    colleague = promiser(session, portfolio.a, portfolio.colleague, clock)
    theirs = promise_on(session, colleague, clock)
    in_b = promise_on(session, promiser(session, portfolio.b, portfolio.manager, clock), clock)
    clock.advance(days=3)

    everything = _follow_ups(web, "manager")
    assert sorted(everything) == sorted(("broken_promise", p.id) for p in (mine, theirs, in_b))
    assert _follow_ups(web, "manager", branch=portfolio.b.code) == [("broken_promise", in_b.id)]
    assert _follow_ups(web, "manager", officer=str(portfolio.colleague.id)) == [
        ("broken_promise", theirs.id)
    ]
    assert sorted(_follow_ups(web, "manager", bucket="1-30")) == sorted(everything)
    assert _follow_ups(web, "manager", bucket="31-60") == []
    assert _follow_ups(web, "manager", kind="hardship") == []

    only = web.get("/console/queue", params={"kind": "broken_promise"}).text
    assert shown_cases(only, portfolio) == []
    assert sorted((k, int(i)) for k, i in _ROW.findall(only)) == sorted(everything)
    assert _follow_ups(web, "manager", kind="call_back") == []
    assert web.get("/console/queue", params={"kind": "nonsense"}).status_code == 404


def test_another_branchs_follow_ups_are_out_of_sight_and_out_of_reach(
    web: TestClient, portfolio: Portfolio, session: Session, clock: Clock
) -> None:
    in_c = promiser(session, portfolio.c, portfolio.admin, clock)
    theirs = promise_on(session, in_c, clock)
    clock.advance(days=3)

    assert _follow_ups(web, "officer") == []
    assert _follow_ups(web, "manager") == []
    assert ("broken_promise", theirs.id) in _follow_ups(web, "admin")

    token = signed_in_as(web, "officer")
    page = web.get(f"/console/borrowers/{in_c.borrower_id}")
    missing = web.get("/console/borrowers/999999")
    assert (page.status_code, missing.status_code) == (404, 404)
    assert page.text == missing.text
    assert web.get("/console/queue", params={"branch": portfolio.c.code}).status_code == 404
    refused = web.post(
        f"/console/borrowers/{in_c.borrower_id}/promise",
        data={
            "csrf_token": token,
            "nonce": "bola-1",
            "loan": str(in_c.id),
            "amount": "100",
            "promised_date": "2026-12-06",
        },
    )
    assert (refused.status_code, refused.text) == (404, missing.text)
    promises = session.scalars(select(PromiseToPay).where(PromiseToPay.loan_id == in_c.id))
    assert [p.id for p in promises] == [theirs.id]
