"""The queue as "whom to call first and why": risk order, reason codes, filters, scope."""

from __future__ import annotations

import html
import json
from datetime import date
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

import i18n
from api.cases.models import Case
from api.loans.models import Installment
from api.outbox.models import OutboxMessage
from api.risk.models import RiskScore, RiskScorecard
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

EARLIER, LATEST = date(2026, 11, 30), date(2026, 12, 1)
HIGH_REASONS = [
    {"feature": "days_past_due", "bin": "8-30", "points": 40},
    {"feature": "broken_promises", "bin": "2+", "points": 25},
    {"feature": "unanswered_reminders", "bin": "1", "points": 10},
]


def _score(
    session: Session, case: Case, probability: str, *, as_of: date = LATEST, points: int = 75
) -> None:
    card = session.scalars(select(RiskScorecard)).first()
    if card is None:
        card = RiskScorecard(
            fitted_from=date(2026, 6, 30), fitted_through=as_of, snapshots=0, events=0, card={}
        )
        session.add(card)
        session.flush()
    assert case.loan_id is not None
    session.add(
        RiskScore(
            loan_id=case.loan_id,
            scorecard_id=card.id,
            as_of=as_of,
            points=points,
            probability=Decimal(probability),
            reasons=HIGH_REASONS,
            features={},
        )
    )
    session.flush()


@pytest.fixture
def scored(session: Session, portfolio: Portfolio) -> Portfolio:
    """The missed case scores lowest, a_colleague highest; a_new's earlier score was higher
    than its latest; a_old has no score."""
    cases = portfolio.cases
    _score(session, cases["a_missed"], "0.0500", points=5)
    _score(session, cases["a_colleague"], "0.6000")
    _score(session, cases["a_new"], "0.9000", as_of=EARLIER)
    _score(session, cases["a_new"], "0.2000", points=30)
    _score(session, cases["b"], "0.3000")
    session.commit()
    return portfolio


def _due_on(session: Session, case: Case, day: date) -> None:
    for installment in session.scalars(
        select(Installment).where(Installment.loan_id == case.loan_id)
    ):
        installment.due_date = day
    session.commit()


def test_missed_deadlines_first_then_the_latest_score_then_age_unscored_last(
    web: TestClient, scored: Portfolio
) -> None:
    sign_in(web, "officer@mfi.example")

    page = web.get("/console/queue")

    assert page.status_code == 200
    assert shown_cases(page.text, scored) == ["a_missed", "a_colleague", "a_new", "a_old"]
    assert "high risk" in page.text and "medium risk" in page.text and "not scored" in page.text


def test_reason_codes_are_words_in_the_officers_language(
    web: TestClient, scored: Portfolio, session: Session
) -> None:
    make_staff(session, [scored.a], email="agent@mfi.example", locale="fr")
    session.commit()
    sign_in(web, "agent@mfi.example")

    text = html.unescape(web.get("/console/queue").text)

    assert "risque élevé" in text and "75 points" in text
    assert "jours de retard : 8-30" in text
    assert "promesses de paiement non tenues : 2+" in text
    assert "rappels restés sans réponse : 1" in text
    assert "days_past_due" not in text and "high risk" not in text


@pytest.mark.parametrize(
    ("who", "query", "expected"),
    [
        ("manager", {"branch": "B"}, ["b"]),
        ("manager", {"branch": "A", "kind": "complaint"}, ["a_old"]),
        ("officer", {"kind": "hardship"}, ["a_colleague", "a_new"]),
        ("officer", {"bucket": "0"}, ["a_old"]),
        ("officer", {"bucket": "1-30"}, ["a_missed", "a_colleague"]),
        ("officer", {"bucket": "61-90"}, ["a_new"]),
        ("officer", {"bucket": "90+"}, []),
        (
            "officer",
            {"branch": "", "officer": "", "bucket": "", "kind": ""},
            ["a_missed", "a_colleague", "a_new", "a_old"],
        ),
    ],
)
def test_each_filter_narrows_the_queue(
    web: TestClient,
    scored: Portfolio,
    session: Session,
    who: str,
    query: dict[str, str],
    expected: list[str],
) -> None:
    _due_on(session, scored.cases["a_old"], date(2026, 12, 20))  # not yet due: bucket 0
    _due_on(session, scored.cases["a_new"], date(2026, 10, 1))  # 62 days late
    codes = {"A": scored.a.code, "B": scored.b.code}
    sign_in(web, f"{who}@mfi.example")

    page = web.get("/console/queue", params={k: codes.get(v, v) for k, v in query.items()})

    assert page.status_code == 200, (page.request.url, page.text[:3000])
    assert shown_cases(page.text, scored) == expected


def test_the_officer_filter_shows_that_officers_cases(web: TestClient, scored: Portfolio) -> None:
    sign_in(web, "officer@mfi.example")

    page = web.get("/console/queue", params={"officer": str(scored.colleague.id)})

    assert shown_cases(page.text, scored) == ["a_colleague"]
    assert f'<option value="{scored.colleague.id}" selected>' in page.text


@pytest.mark.parametrize(
    ("who", "query"),
    [
        ("officer", {"branch": "B"}),
        ("officer", {"branch": "C"}),
        ("manager", {"branch": "C"}),
        ("manager", {"branch": "NOSUCH"}),
        ("officer", {"officer": "C"}),
        ("officer", {"bucket": "7-9"}),
        ("officer", {"kind": "nonsense"}),
    ],
)
def test_a_filter_outside_ones_scope_is_not_found(
    web: TestClient, scored: Portfolio, who: str, query: dict[str, str]
) -> None:
    outside_officer = scored.cases["c"].assigned_officer_id
    values = {"B": scored.b.code, "C": scored.c.code}
    params = {
        key: str(outside_officer) if key == "officer" else values.get(value, value)
        for key, value in query.items()
    }
    sign_in(web, f"{who}@mfi.example")

    response = web.get("/console/queue", params=params)

    assert response.status_code == 404
    assert scored.cases["c"].reference not in response.text


def test_nothing_of_the_score_reaches_the_borrower(
    web: TestClient, scored: Portfolio, session: Session
) -> None:
    token = signed_in_as(web, "admin")
    case = scored.cases["a_colleague"]

    claimed = web.post(f"/console/cases/{case.reference}/claim", data={"csrf_token": token})

    assert claimed.status_code == 200
    told = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.borrower_id == case.borrower_id, OutboxMessage.officer_id.is_(None)
        )
    ).all()
    assert [m.message_key for m in told] == ["cases.update.acknowledged"]
    for message in told:
        text = i18n.render(message.message_key, message.locale, **message.args)
        said = " ".join([text, json.dumps(message.args), json.dumps(message.buttons)])
        staff_only = [
            i18n.render(key, message.locale, bin="8-30", points=75)
            for key in ("risk.band.high", "risk.points", "risk.reason.days_past_due")
        ]
        for word in ["risk", "score", "probability", *staff_only]:
            assert word not in said.lower(), (word, said)
