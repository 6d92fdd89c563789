"""``kopa kpis``: the same figures as the service, as JSON (amounts as strings with their
currency) and as tables, on the hand-computed portfolio of ``tests/api/kpi_portfolio.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.core import db
from api.core.migrate import upgrade
from kopa.cli import app
from tests.api.kpi_portfolio import Portfolio, build
from tests.cli.app_caches import clear_app_caches


@pytest.fixture
def portfolio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Portfolio]:
    url = f"sqlite:///{tmp_path / 'kpis.db'}"
    upgrade(url)
    engine = db.build_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        built = build(session)
        session.commit()
    engine.dispose()
    monkeypatch.setenv("KOPA_DATABASE_URL", url)
    monkeypatch.setenv("KOPA_PROMISES__GRACE_DAYS", "2")
    clear_app_caches()
    yield built
    clear_app_caches()


def _kopa(*args: str) -> str:
    result = CliRunner().invoke(app, ["kpis", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_json_carries_decimal_strings_and_currency_codes(portfolio: Portfolio) -> None:
    report = json.loads(_kopa("--at", "2026-11-30", "--json"))

    assert (report["as_of"], report["branch"], report["period_start"]) == (
        "2026-11-30",
        None,
        "2026-11-01",
    )
    # The figures of tests/api/test_kpis.py, worked out there.
    kes, ugx = report["portfolio_at_risk"]
    assert kes == {
        "currency": "KES",
        "loans": 7,
        "gross_principal": "13650.00",
        "par1_principal": "8250.00",
        "par30_principal": "6750.00",
        "par90_principal": "750.00",
        "par1": "0.6044",
        "par30": "0.4945",
        "par90": "0.0549",
    }
    assert (ugx["currency"], ugx["gross_principal"], ugx["par30"]) == (
        "UGX",
        "200000.00",
        "1.0000",
    )
    assert [(c["currency"], c["on_time_rate"]) for c in report["collection"]] == [
        ("KES", "0.1562"),
        ("UGX", "0.0000"),
    ]
    assert report["promises"]["kept_rate"] == "0.5000"
    assert report["roll_rates"]["cure_rate"] == "0.2500"
    assert report["reminder_conversion"]["rate"] == "0.4000"


def test_the_branch_option_and_the_tables(portfolio: Portfolio) -> None:
    by_json = json.loads(_kopa("--at", "2026-11-30", "--branch", portfolio.a.code, "--json"))
    assert [p["currency"] for p in by_json["portfolio_at_risk"]] == ["KES"]
    assert by_json["collection"][0]["with_arrears_rate"] == "0.3748"

    tables = _kopa("--at", "2026-11-30", "--branch", portfolio.a.code)
    assert f"branch {portfolio.a.code}" in tables
    # PAR1 of the KES book, its amount and currency; the on-time collection rate.
    assert "60.44 % (8,250.00 KES)" in tables
    assert "15.62 %" in tables
    assert "UGX" not in tables
    assert "promises kept (grace 2 days" in tables


def test_an_unknown_branch_or_a_bad_day_is_refused(portfolio: Portfolio) -> None:
    unknown = CliRunner().invoke(app, ["kpis", "--at", "2026-11-30", "--branch", "NOPE"])
    assert unknown.exit_code == 2
    assert "NOPE" in unknown.output
    bad_day = CliRunner().invoke(app, ["kpis", "--at", "30/11/2026"])
    assert bad_day.exit_code == 2


def test_the_new_kpis_in_json_and_tables(
    portfolio: Portfolio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOPA_HOLDOUT__SHARE", "0.5")
    clear_app_caches()
    report = json.loads(_kopa("--at", "2026-11-30", "--branch", portfolio.a.code, "--json"))

    # The portfolio's cases (tests/api/test_kpis_contacts.py): two unassigned deadlines in
    # November, neither taken; no message in the outbox.
    assert report["sla_breaches"]["officers"] == [
        {
            "officer_id": None,
            "officer": None,
            "due": 2,
            "breached": 2,
            "still_open": 2,
            "rate": "1.0000",
        }
    ]
    assert (report["right_party_contact"]["sent"], report["right_party_contact"]["rate"]) == (
        0,
        None,
    )
    lift = report["holdout_lift"]
    assert lift["share"] == 0.5
    assert lift["reminded"]["installments"] + lift["holdout"]["installments"] == 6
    assert set(lift) >= {"lift", "lift_low", "lift_high"}

    tables = _kopa("--at", "2026-11-30", "--branch", portfolio.a.code)
    assert "Causal lift of reminders (holdout 50 %)" in tables
    assert "(unassigned)" in tables
    assert "100.00 %" in tables
