"""The console's borrower page: one timeline of the borrower's own history, in the officer's
language, and nothing of anyone else (group members by name only); scoped like cases."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, Channel, Consent
from api.branches.models import BorrowerGroup
from api.cases.models import Case
from api.loans.models import Loan
from api.payments.models import Payment
from api.promises.models import PromiseStatus, PromiseToPay
from i18n import format_day, format_money
from tests.api.conftest import Clock
from tests.api.console_pages import Portfolio, cheap_hashing, portfolio, signed_in_as
from tests.api.factories import make_borrower, make_loan

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__, portfolio.__name__)


@dataclass
class History:
    borrower: Borrower
    loan: Loan
    case: Case
    neighbour: Borrower
    neighbour_loan: Loan


def _promise(
    session: Session, loan: Loan, clock: Clock, amount: str, status: PromiseStatus, paid: str
) -> None:
    session.add(
        PromiseToPay(
            loan_id=loan.id,
            borrower_id=loan.borrower_id,
            amount=Decimal(amount),
            currency=loan.currency,
            promised_date=date(2026, 11, 25),
            channel="telegram",
            status=status,
            amount_paid=Decimal(paid),
            created_at=clock.now,
        )
    )


@pytest.fixture
def history(session: Session, portfolio: Portfolio, clock: Clock) -> History:
    """The borrower of case ``a_new``, in a group with a neighbour who is deep in arrears."""
    case = portfolio.cases["a_new"]
    borrower = session.get_one(Borrower, case.borrower_id)
    group = BorrowerGroup(
        branch_id=borrower.branch_id, name="Umoja", meeting_weekday=1, meeting_time=time(9)
    )
    session.add(group)
    session.flush()
    neighbour = make_borrower(session, portfolio.a, full_name="Zawadi Achieng Otieno")
    neighbour_loan = make_loan(
        session, neighbour, schedule=[(date(2026, 10, 1), "98765.00", "4321.00", "0")]
    )
    borrower.group_id = neighbour.group_id = group.id
    loan = session.get_one(Loan, case.loan_id)
    session.add(
        Payment(
            loan_id=loan.id,
            amount=Decimal("700.00"),
            currency=loan.currency,
            method="mobile_money",
            external_reference="MPESA-1",
            received_at=clock.now,
        )
    )
    _promise(session, loan, clock, "1200.00", PromiseStatus.kept, "1200.00")
    _promise(session, loan, clock, "900.00", PromiseStatus.broken, "0.00")
    session.add(
        Consent(
            borrower_id=borrower.id,
            channel=Channel.telegram,
            opted_in=False,
            opted_in_at=clock.now,
            opted_out_at=clock.now,
        )
    )
    session.commit()
    return History(borrower, loan, case, neighbour, neighbour_loan)


def _page_text(web: TestClient, borrower: Borrower) -> str:
    page = web.get(f"/console/borrowers/{borrower.id}")
    assert page.status_code == 200, page.text
    return html.unescape(page.text)


def test_the_timeline_shows_the_borrowers_history_and_nothing_of_the_group(
    web: TestClient, history: History, portfolio: Portfolio, session: Session
) -> None:
    token = signed_in_as(web, "officer")
    reference = history.case.reference
    data = {"csrf_token": token}
    web.post(f"/console/cases/{reference}/note", data={**data, "words": "Visited the shop"})
    web.post(f"/console/cases/{reference}/call", data={**data, "outcome": "wrong_number"})
    web.post(f"/console/cases/{reference}/resolve", data={**data, "outcome": "payment_holiday"})

    text = _page_text(web, history.borrower)

    currency = history.loan.currency
    assert history.borrower.full_name in text
    assert f"Installment 1 of {history.loan.account_reference} due" in text
    assert f"Payment of {format_money('700.00', currency, 'en')} received" in text
    assert f"Promise to pay {format_money('1200.00', currency, 'en')}" in text
    assert "kept" in text and "broken" in text
    assert f"Case {reference} opened: hardship request" in text
    assert f"Case {reference} resolved: Payment holiday" in text
    assert f"Grace Otieno wrote on case {reference}\n<q>Visited the shop</q>" in text
    assert f"Grace Otieno called about case {reference}: Wrong number" in text
    # What the borrower was told, with its delivery status, and the ledger's own entries.
    assert f"Your request {reference} is now closed: you have a break from payments." in text
    assert "waiting" in text and "From the borrower: case" in text
    assert "Agreed to messages on telegram" in text and "Opted out of messages on telegram" in text
    # The group member by name; nothing of their loan, debt or cases.
    assert "Zawadi Achieng Otieno" in text
    assert history.neighbour_loan.account_reference not in text
    assert format_money("98765.00", currency, "en") not in text
    assert "103,086" not in text and "98,765" not in text
    # Nor anything of another borrower of the branch.
    other = portfolio.cases["a_colleague"]
    other_loan = session.get_one(Loan, other.loan_id)
    assert other.reference not in text and other_loan.account_reference not in text


@pytest.mark.parametrize(
    ("who", "case", "visible"),
    [
        ("officer", "a_colleague", True),
        ("officer", "b", False),
        ("officer", "c", False),
        ("manager", "b", True),
        ("manager", "c", False),
        ("admin", "c", True),
    ],
)
def test_a_borrower_outside_ones_branches_is_not_found(
    web: TestClient, portfolio: Portfolio, who: str, case: str, visible: bool
) -> None:
    signed_in_as(web, who)
    borrower_id = portfolio.cases[case].borrower_id

    page = web.get(f"/console/borrowers/{borrower_id}")
    missing = web.get("/console/borrowers/987654321")

    assert missing.status_code == 404
    if visible:
        assert page.status_code == 200
    else:
        assert (page.status_code, page.text) == (404, missing.text)


def test_the_borrower_page_needs_a_session(web: TestClient, history: History) -> None:
    page = web.get(f"/console/borrowers/{history.borrower.id}", follow_redirects=False)

    assert (page.status_code, page.headers["location"]) == (303, "/console/login")


def test_the_borrower_page_speaks_french(
    web: TestClient, portfolio: Portfolio, history: History, session: Session
) -> None:
    portfolio.officer.locale = "fr"
    session.commit()
    signed_in_as(web, "officer")

    text = _page_text(web, history.borrower)

    currency = history.loan.currency
    assert '<html lang="fr">' in text
    assert "Historique" in text and "Jours de retard" in text
    assert f"Paiement de {format_money('700.00', currency, 'fr')} reçu" in text
    assert format_day(date(2026, 11, 25), "fr") in text  # the promised date, in words
    assert "tenue" in text and "non tenue" in text
    assert "Timeline" not in text and "Payment of" not in text


def test_what_the_borrower_was_told_reads_in_their_language_not_the_officers(
    web: TestClient, portfolio: Portfolio, history: History, session: Session
) -> None:
    portfolio.officer.locale = "fr"
    history.borrower.preferred_language = "sw"
    session.commit()
    token = signed_in_as(web, "officer")
    reference = history.case.reference
    web.post(
        f"/console/cases/{reference}/resolve", data={"csrf_token": token, "outcome": "plan_agreed"}
    )

    text = _page_text(web, history.borrower)

    assert f"Ombi lako {reference} limefungwa: tumekubaliana mpango wa kulipa. Asante." in text
    assert "Historique" in text and f"Votre demande {reference}" not in text


@pytest.mark.parametrize(
    ("locale", "timeline", "record_call"),
    [("es", "Historial", "Registrar una llamada"), ("sw", "Historia", "Rekodi simu")],
)
def test_the_pages_render_in_spanish_and_swahili(
    web: TestClient,
    portfolio: Portfolio,
    history: History,
    session: Session,
    locale: str,
    timeline: str,
    record_call: str,
) -> None:
    portfolio.officer.locale = locale
    session.commit()
    signed_in_as(web, "officer")

    borrower_page = _page_text(web, history.borrower)
    case_page = html.unescape(web.get(f"/console/cases/{history.case.reference}").text)

    assert timeline in borrower_page and "Timeline" not in borrower_page
    assert record_call in case_page and "Record a call" not in case_page
