"""``kopa risk fit`` then ``kopa risk score``: a stored scorecard, then one score per open loan
of the KPI portfolio (``tests/api/kpi_portfolio.py``)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.core import db
from api.risk.models import RiskScore, RiskScorecard
from kopa.cli import app
from tests.api.kpi_portfolio import Portfolio
from tests.cli.test_kpis_cli import portfolio  # noqa: F401 - the fixture


@pytest.fixture
def database(request: pytest.FixtureRequest) -> tuple[str, Portfolio]:
    """The KPI CLI tests' database (SQLite, migrated, the portfolio committed)."""
    built: Portfolio = request.getfixturevalue("portfolio")
    return os.environ["KOPA_DATABASE_URL"], built


def _kopa(*args: str) -> str:
    result = CliRunner().invoke(app, ["risk", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_score_before_fit_is_refused(database: tuple[str, Portfolio]) -> None:
    result = CliRunner().invoke(app, ["risk", "score", "--at", "2026-11-30"])

    assert result.exit_code != 0
    assert "kopa risk fit" in result.output


def test_fit_then_score_writes_one_score_per_open_loan(database: tuple[str, Portfolio]) -> None:
    url, p = database

    fitted = _kopa("fit", "--through", "2026-11-30")
    scored = _kopa("score", "--at", "2026-11-30", "--top", "3")

    assert "days_past_due" in fitted
    # L1-L6, L9 and L10 are open; L7 is repaid and L8 written off.
    assert "8 open loans scored at the end of 2026-11-30" in scored
    references = {loan.account_reference for loan in p.loans.values()}
    assert sum(reference in scored for reference in references) == 3  # --top 3
    engine = db.build_engine(url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(RiskScorecard)) == 1
        loans = session.scalars(select(RiskScore.loan_id).order_by(RiskScore.loan_id)).all()
    engine.dispose()
    open_names = ("L1", "L2", "L3", "L4", "L5", "L6", "L9", "L10")
    assert loans == sorted(p.loans[n].id for n in open_names)
