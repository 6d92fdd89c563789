"""A promise to pay recorded from the console for a borrower: the chat's rules, once, audited,
the borrower told in their language, refusals shown on the form with nothing written."""

from __future__ import annotations

import html
from datetime import date
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import i18n
from api.borrowers.models import Borrower
from api.cases.models import Case
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage
from api.promises.models import PromiseStatus, PromiseToPay
from tests.api.console_pages import (
    Portfolio,
    cheap_hashing,
    csrf_token,
    make_staff,
    portfolio,
    sign_in,
    signed_in_as,
)

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__, portfolio.__name__)

# It is 2 December in Nairobi; the policy allows promises up to 30 days ahead. The case's loan
# owes 1,650.00 KES.
TODAY = date(2026, 12, 2)


def _send(web: TestClient, case: Case, token: str | None, **form: str) -> httpx.Response:
    data = {"loan": str(case.loan_id), "nonce": "p-1", **form}
    if token is not None:
        data["csrf_token"] = token
    return web.post(f"/console/borrowers/{case.borrower_id}/promise", data=data)


def _written(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(PromiseToPay)) or 0,
        session.scalar(select(func.count()).select_from(ContactEvent)) or 0,
        session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
    )


def test_a_promise_is_recorded_once_audited_and_the_borrower_told_in_their_language(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    case = portfolio.cases["a_new"]
    borrower = session.get_one(Borrower, case.borrower_id)
    borrower.preferred_language = "sw"
    session.commit()
    token = signed_in_as(web, "officer")
    case_page = web.get(f"/console/cases/{case.reference}").text
    assert f'href="/console/borrowers/{case.borrower_id}#promise-form"' in case_page

    answers = [
        _send(web, case, token, amount="1,200.50", promised_date="2026-12-09") for _ in range(2)
    ]

    assert [a.status_code for a in answers] == [200, 200]
    assert (
        "Promise recorded: Ksh1,200.50 by Wednesday, 9 December 2026. The borrower is told."
        in html.unescape(answers[0].text)
    )
    [promise] = session.scalars(select(PromiseToPay).where(PromiseToPay.loan_id == case.loan_id))
    assert (promise.amount, promise.currency, promise.promised_date) == (
        Decimal("1200.50"),
        "KES",
        date(2026, 12, 9),
    )
    assert (promise.status, promise.channel) == (PromiseStatus.pending, "console")
    [event] = session.scalars(select(ContactEvent).where(ContactEvent.kind == "promise"))
    assert (event.decision, event.rule, event.borrower_id, event.loan_id) == (
        "recorded",
        "officer:officer",
        borrower.id,
        case.loan_id,
    )
    assert event.detail == {
        "officer_id": portfolio.officer.id,
        "promise_id": promise.id,
        "via": "console",
    }
    [told] = session.scalars(select(OutboxMessage).where(OutboxMessage.promise_id == promise.id))
    assert (told.message_key, told.locale, told.purpose) == (
        "console.promise.borrower_told",
        "sw",
        "promise_recorded",
    )
    assert i18n.render(told.message_key, told.locale, **told.args) == (
        f"{portfolio.officer.name} amerekodi ahadi yako ya kulipa "
        f"{i18n.format_money(Decimal('1200.50'), 'KES', 'sw')} kufikia "
        "Jumatano, 9 Desemba 2026. Asante."
    )


def test_an_officer_writes_the_amount_as_numbers_are_written_in_their_language(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    make_staff(session, [portfolio.a], email="agent.fr@mfi.example", locale="fr")
    session.commit()
    sign_in(web, "agent.fr@mfi.example")
    token = csrf_token(web.get("/console/queue"))
    case = portfolio.cases["a_colleague"]

    answer = _send(web, case, token, amount="999,50", promised_date="2026-12-03")

    assert answer.status_code == 200, answer.text
    assert "Promesse enregistrée : 999,50" in html.unescape(answer.text)
    promise = session.scalar(select(PromiseToPay).where(PromiseToPay.loan_id == case.loan_id))
    assert promise is not None and promise.amount == Decimal("999.50")


@pytest.mark.parametrize(
    ("amount", "promised_date", "said"),
    [
        (
            "500",
            "2027-01-02",
            "That day is too far ahead: choose a day no later than Friday, 1 January 2027.",
        ),
        ("500", "2026-12-01", "That day has passed: choose today or a later day."),
        ("500", "", "Choose the day the borrower will pay by."),
        ("0", "2026-12-09", "The amount must be more than zero."),
        ("-5", "2026-12-09", "The amount must be more than zero."),
        (
            "1650.01",
            "2026-12-09",
            "The amount is more than the Ksh1,650.00 still owed on this loan.",
        ),
        ("12.345", "2026-12-09", "Write the amount as a number in KES, with at most 2 decimal"),
        ("KES 500", "2026-12-09", "Write the amount as a number in KES, with at most 2 decimal"),
        ("1e3", "2026-12-09", "Write the amount as a number in KES, with at most 2 decimal"),
    ],
)
def test_a_promise_against_the_rules_is_shown_on_the_form_and_nothing_is_written(
    web: TestClient,
    portfolio: Portfolio,
    session: Session,
    amount: str,
    promised_date: str,
    said: str,
) -> None:
    token = signed_in_as(web, "officer")
    before = _written(session)

    answer = _send(web, portfolio.cases["a_new"], token, amount=amount, promised_date=promised_date)

    assert answer.status_code == 422
    assert said in html.unescape(answer.text)
    assert f'value="{amount}"' in answer.text  # what the officer typed stays in the form
    assert _written(session) == before


def test_a_refusal_reads_in_the_officers_language(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    make_staff(session, [portfolio.a], email="agent.es@mfi.example", locale="es")
    session.commit()
    sign_in(web, "agent.es@mfi.example")
    token = csrf_token(web.get("/console/queue"))

    answer = _send(web, portfolio.cases["a_new"], token, amount="5000", promised_date="2026-12-09")

    assert answer.status_code == 422
    assert "El monto supera los KES1,650.00 que aún se deben" in html.unescape(answer.text)


def test_a_promise_without_the_form_token_is_refused_and_nothing_is_written(
    web: TestClient, portfolio: Portfolio, session: Session
) -> None:
    signed_in_as(web, "officer")
    before = _written(session)

    without = _send(web, portfolio.cases["a_new"], None, amount="500", promised_date="2026-12-09")
    wrong = _send(web, portfolio.cases["a_new"], "forged", amount="500", promised_date="2026-12-09")

    assert (without.status_code, wrong.status_code) == (403, 403)
    assert "This form has expired" in without.text
    assert _written(session) == before
