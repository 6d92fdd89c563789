"""Staff accounts, a signed-in client and a portfolio of three branches for the console's tests."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Branch, Officer, StaffRole
from api.cases import service as case_service
from api.cases.models import Case, CaseKind
from api.console import auth
from api.core.config import get_settings
from api.loans.models import Loan
from api.promises import service as promise_service
from api.promises.models import PromiseToPay
from tests.api.conftest import Clock
from tests.api.factories import (
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
    make_verified_identity,
)

PASSWORD = "correct horse battery"
# After the portfolio is built it is 2 December, 13:00 in Nairobi; a promise for that day
# is over at midnight after 4 December (two grace days).
PROMISED = date(2026, 12, 2)
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def make_staff(
    session: Session,
    branches: Sequence[Branch],
    *,
    role: StaffRole = StaffRole.officer,
    email: str | None = None,
    locale: str = "en",
    name: str = "Grace Otieno",
) -> Officer:
    """A member of staff who signs in with :data:`PASSWORD`."""
    staff = auth.NewStaff(
        email=email or f"{role.value}.{branches[0].code.lower()}@mfi.example",
        name=name,
        role=role,
        branch_codes=tuple(b.code for b in branches),
        locale=locale,
    )
    return auth.add_officer(
        session=session, staff=staff, password=PASSWORD, policy=get_settings().console
    )


def csrf_token(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def sign_in(
    web: TestClient, email: str | None, password: str = PASSWORD, **headers: str
) -> httpx.Response:
    form = web.get("/console/login", headers=headers)
    return web.post(
        "/console/login",
        data={"email": email or "", "password": password, "csrf_token": csrf_token(form)},
        headers=headers,
        follow_redirects=False,
    )


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with the smallest costs: the tests check the flow, not the hash's strength (a
    default-cost hash takes up to a second on a busy test machine)."""
    monkeypatch.setattr(auth, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@dataclass
class Portfolio:
    """Branches A and B (a manager oversees both) and C; an officer of A; an admin."""

    a: Branch
    b: Branch
    c: Branch
    officer: Officer
    colleague: Officer
    manager: Officer
    admin: Officer
    cases: dict[str, Case]  # by name: a_old, a_missed, a_new, a_colleague, b, c


def _case(session: Session, clock: Clock, branch: Branch, officer: Officer, kind: CaseKind) -> Case:
    borrower = make_borrower(session, branch, officer=officer, full_name="Wanjiku Njeri")
    loan = make_loan(session, borrower, schedule=[(date(2026, 11, 20), "1500.00", "150.00", "0")])
    make_verified_identity(session, borrower, at=clock.now)
    opened = case_service.open_case(
        session=session, borrower=borrower, kind=kind, now=clock.now, channel="telegram", loan=loan
    )
    return opened.case


@pytest.fixture
def portfolio(session: Session, clock: Clock) -> Portfolio:
    return build_portfolio(session, clock)


def build_portfolio(session: Session, clock: Clock) -> Portfolio:
    """The console's portfolio, committed; ``clock`` ends 27 hours after it started."""
    a, b, c = make_branch(session), make_branch(session), make_branch(session)
    officer = make_staff(session, [a], email="officer@mfi.example")
    colleague = make_officer(session, a, name="Peter Kamau")
    manager = make_staff(session, [a, b], role=StaffRole.manager, email="manager@mfi.example")
    admin = make_staff(session, [c], role=StaffRole.admin, email="admin@mfi.example")
    cases = {"a_old": _case(session, clock, a, officer, CaseKind.complaint)}
    clock.advance(hours=1)
    # Hardship's deadline (48 h) is the longest: the case opened second misses its deadline
    # before the complaint opened first does (72 h), and comes first in the queue.
    cases["a_missed"] = _case(session, clock, a, officer, CaseKind.officer_request)
    clock.advance(hours=1)
    cases["a_new"] = _case(session, clock, a, officer, CaseKind.hardship)
    cases["a_colleague"] = _case(session, clock, a, colleague, CaseKind.hardship)
    cases["b"] = _case(session, clock, b, make_officer(session, b), CaseKind.hardship)
    cases["c"] = _case(session, clock, c, make_officer(session, c), CaseKind.hardship)
    clock.advance(hours=25)  # past the officer request's 24 hours only
    session.commit()
    return Portfolio(a, b, c, officer, colleague, manager, admin, cases)


def shown_cases(page_text: str, portfolio: Portfolio) -> list[str]:
    """The names of the portfolio's cases the page lists, in the page's order."""
    places = [
        (page_text.find(f'id="case-{c.reference}"'), name) for name, c in portfolio.cases.items()
    ]
    return [name for at, name in sorted(places) if at >= 0]


def signed_in_as(web: TestClient, who: str) -> str:
    """Sign in as ``who`` (officer, manager, admin) and answer the session's form token."""
    sign_in(web, f"{who}@mfi.example")
    return csrf_token(web.get("/console/queue"))


def promiser(session: Session, branch: Branch, officer: Officer, clock: Clock) -> Loan:
    """A borrower in arrears (1,650 due on 20 November) with no case, and their loan."""
    borrower = make_borrower(session, branch, officer=officer, full_name="Akinyi Odhiambo")
    make_verified_identity(session, borrower, at=clock.now)
    return make_loan(
        session,
        borrower,
        schedule=[
            (date(2026, 11, 20), "1500.00", "150.00", "0"),
            (date(2026, 12, 20), "1500.00", "150.00", "0"),
        ],
    )


def promise_on(
    session: Session, loan: Loan, clock: Clock, on: date = PROMISED, amount: str = "1000"
) -> PromiseToPay:
    """The borrower's promise on ``loan``, made on their chat (by default 1,000 by 2 December)."""
    promise = promise_service.create_promise(
        session=session,
        borrower=session.get_one(Borrower, loan.borrower_id),
        loan=loan,
        amount=Decimal(amount),
        promised_date=on,
        channel="telegram",
        now=clock.now,
    ).promise
    session.commit()
    return promise


def record_promise_form(
    web: TestClient, borrower_id: int, loan_id: int | None, nonce: str, promised_date: str
) -> None:
    """Record a promise of 500 on the borrower's page, as the officer, and check it was taken."""
    recorded = web.post(
        f"/console/borrowers/{borrower_id}/promise",
        data={
            "csrf_token": signed_in_as(web, "officer"),
            "nonce": nonce,
            "loan": str(loan_id),
            "amount": "500",
            "promised_date": promised_date,
        },
    )
    assert recorded.status_code == 200, recorded.text
