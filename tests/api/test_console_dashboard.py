"""The managers' dashboard: the KPIs of api.kpis for the manager's scope, as a table and charts.

The portfolio is the KPI tests' (``tests/api/kpi_portfolio.py``: branch A in KES, branch B in
UGX); the test clock's morning of December 1 makes November 30, the portfolio's as-of day, the
dashboard's last complete day.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import i18n
from api.branches.models import StaffRole
from api.console.dashboard import month_ends
from api.console.templating import STATIC
from api.core.config import get_settings
from api.kpis import service as kpis
from api.kpis.schemas import KpiReport
from tests.api.console_pages import cheap_hashing, make_staff, sign_in
from tests.api.kpi_contacts import add_cases, add_messages
from tests.api.kpi_portfolio import AS_OF, Portfolio, build

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__)

_DATA = re.compile(r'<script type="application/json" id="dashboard-data">(.*?)</script>', re.S)
CHARTS = ["par", "collection", "behaviour", "contact", "reach"]


@pytest.fixture
def kpi_portfolio(session: Session) -> Portfolio:
    """The KPI portfolio; a manager, an officer and an admin of branch A (the manager's only)."""
    p = build(session)
    make_staff(session, [p.a], role=StaffRole.manager, email="manager@mfi.example")
    make_staff(session, [p.a], email="officer@mfi.example")
    make_staff(session, [p.a], role=StaffRole.admin, email="admin@mfi.example")
    make_staff(session, [p.a], role=StaffRole.manager, email="gerante@mfi.example", locale="fr")
    session.commit()
    return p


def _report(session: Session, branch: str | None) -> KpiReport:
    return kpis.kpi_report(session=session, as_of=AS_OF, branch=branch)


def _chart_data(page_text: str) -> dict[str, Any]:
    found = _DATA.search(page_text)
    assert found is not None, page_text
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _series(data: dict[str, Any], chart: str) -> dict[str, list[float | None]]:
    shown = next(c for c in data["charts"] if c["id"] == chart)
    return {s["label"]: s["values"] for s in shown["series"]}


def _dashboard_of(web: TestClient, email: str) -> httpx.Response:
    """The dashboard as the member of staff signed in with ``email`` sees it."""
    sign_in(web, email)
    page = web.get("/console/dashboard")
    assert page.status_code == 200
    return page


def _rate(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def test_month_ends_are_the_last_six_up_to_the_as_of_day() -> None:
    assert month_ends(date(2026, 11, 30)) == [
        date(2026, 6, 30),
        date(2026, 7, 31),
        date(2026, 8, 31),
        date(2026, 9, 30),
        date(2026, 10, 31),
        date(2026, 11, 30),
    ]
    assert month_ends(date(2026, 3, 15), count=2) == [date(2026, 1, 31), date(2026, 2, 28)]


def test_a_manager_sees_the_figures_of_their_branches_only(
    web: TestClient, session: Session, kpi_portfolio: Portfolio
) -> None:
    page = _dashboard_of(web, "manager@mfi.example")
    expected = _report(session, kpi_portfolio.a.code)
    (par,) = expected.portfolio_at_risk
    text = html.unescape(page.text)
    assert i18n.format_percent(par.par30 or Decimal(0), "en") in text
    assert i18n.format_money(par.par30_principal, "KES", "en") in text
    assert "UGX" not in text  # branch B is not the manager's
    data = _chart_data(page.text)
    assert data["labels"][-1] == "Nov 2026"
    assert _series(data, "par")["Portfolio at risk over 30 days (KES)"][-1] == _rate(par.par30)
    assert _series(data, "behaviour")["Promises kept"][-1] == _rate(expected.promises.kept_rate)
    assert 'href="/console/dashboard"' in page.text


def test_a_branch_outside_the_managers_scope_is_not_found(
    web: TestClient, kpi_portfolio: Portfolio
) -> None:
    sign_in(web, "manager@mfi.example")
    assert web.get(f"/console/dashboard?branch={kpi_portfolio.b.code}").status_code == 404
    assert web.get("/console/dashboard?branch=NOPE").status_code == 404


def test_an_admin_sees_every_branch_and_can_narrow_to_one(
    web: TestClient, session: Session, kpi_portfolio: Portfolio
) -> None:
    sign_in(web, "admin@mfi.example")
    everything = _chart_data(web.get("/console/dashboard").text)
    assert {"Portfolio at risk over 1 day (KES)", "Portfolio at risk over 1 day (UGX)"} <= set(
        _series(everything, "par")
    )
    page = web.get(f"/console/dashboard?branch={kpi_portfolio.b.code}")
    assert page.status_code == 200
    (par,) = _report(session, kpi_portfolio.b.code).portfolio_at_risk
    shown = _series(_chart_data(page.text), "par")
    assert {label: values[-1] for label, values in shown.items()} == {
        "Portfolio at risk over 1 day (UGX)": _rate(par.par1),
        "Portfolio at risk over 30 days (UGX)": _rate(par.par30),
        "Portfolio at risk over 90 days (UGX)": _rate(par.par90),
    }


def test_an_officer_is_refused_and_not_offered_the_dashboard(
    web: TestClient, kpi_portfolio: Portfolio
) -> None:
    sign_in(web, "officer@mfi.example")
    assert web.get("/console/dashboard").status_code == 404
    assert 'href="/console/dashboard"' not in web.get("/console/queue").text


def test_signed_out_readers_are_sent_to_sign_in(web: TestClient) -> None:
    page = web.get("/console/dashboard", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/console/login")


def test_the_data_block_carries_every_series_month_by_month(
    web: TestClient, session: Session, kpi_portfolio: Portfolio
) -> None:
    sign_in(web, "manager@mfi.example")
    data = _chart_data(web.get("/console/dashboard").text)
    expected = _report(session, kpi_portfolio.a.code)
    assert data["locale"] == "en"
    assert len(data["labels"]) == 6
    assert [c["id"] for c in data["charts"]] == CHARTS
    for chart in data["charts"]:
        for series in chart["series"]:
            assert len(series["values"]) == len(series["texts"]) == 6, series
    (collection,) = expected.collection
    last = {label: values[-1] for chart in CHARTS for label, values in _series(data, chart).items()}
    assert last == {
        "Portfolio at risk over 1 day (KES)": _rate(expected.portfolio_at_risk[0].par1),
        "Portfolio at risk over 30 days (KES)": _rate(expected.portfolio_at_risk[0].par30),
        "Portfolio at risk over 90 days (KES)": _rate(expected.portfolio_at_risk[0].par90),
        "Collected on time (KES)": _rate(collection.on_time_rate),
        "Collected with arrears (KES)": _rate(collection.with_arrears_rate),
        "Promises kept": _rate(expected.promises.kept_rate),
        "Late loans cured": _rate(expected.roll_rates.cure_rate),
        "Reminders followed by a payment within 3 days": _rate(expected.reminder_conversion.rate),
        "Borrowers reached who opted out": _rate(expected.opt_out.rate),
        "Borrowers reached who complained": _rate(expected.complaints.rate),
        "Read or answered within 24 hours (all channels)": _rate(expected.right_party_contact.rate),
    }


def test_the_dashboard_reads_in_french(
    web: TestClient, session: Session, kpi_portfolio: Portfolio
) -> None:
    page = _dashboard_of(web, "gerante@mfi.example")
    text = html.unescape(page.text)
    (par,) = _report(session, kpi_portfolio.a.code).portfolio_at_risk
    assert '<html lang="fr">' in text
    assert "Tableau de bord des agences" in text
    assert i18n.format_percent(par.par1 or Decimal(0), "fr") in text
    data = _chart_data(page.text)
    assert data["labels"][-1] == "nov. 2026"
    assert "Portefeuille à risque à plus de 30 jours (KES)" in _series(data, "par")


def test_the_vendored_chart_js_is_served_as_recorded(web: TestClient) -> None:
    notice = (STATIC / "NOTICE.md").read_text()
    recorded = re.search(r"SHA-256 of `chart.umd.min.js`: `([0-9a-f]{64})`", notice)
    assert recorded is not None
    served = web.get("/console/static/chart.umd.min.js")
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == recorded.group(1)
    assert web.get("/console/static/dashboard.js").status_code == 200


@pytest.fixture
def with_contacts(
    session: Session, kpi_portfolio: Portfolio, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Portfolio]:
    """The portfolio with the messages and cases of ``tests/api/kpi_contacts.py``, and a
    holdout of half the borrowers configured as an operator would."""
    add_messages(session, kpi_portfolio)
    add_cases(session, kpi_portfolio)
    session.commit()
    monkeypatch.setenv("KOPA_HOLDOUT__SHARE", "0.5")
    get_settings.cache_clear()
    yield kpi_portfolio
    monkeypatch.delenv("KOPA_HOLDOUT__SHARE")
    get_settings.cache_clear()


def _bars(data: dict[str, Any], chart: str) -> dict[str, Any]:
    shown: dict[str, Any] = next(c for c in data["bars"] if c["id"] == chart)
    return shown


def test_the_contact_deadline_and_holdout_charts_carry_the_reports_figures(
    web: TestClient, session: Session, with_contacts: Portfolio
) -> None:
    page = _dashboard_of(web, "manager@mfi.example")
    expected = _report(session, with_contacts.a.code)
    data = _chart_data(page.text)

    # Right-party contact month by month (tests/api/test_kpis_contacts.py: November's calls
    # 1 of 2, telegram 1 of 2, whatsapp 3 of 3, in all 5 of 7).
    reach = _series(data, "reach")
    assert {label: values[-1] for label, values in reach.items()} == {
        "Officers' calls answered": 0.5,
        "Read or answered within 24 hours (telegram)": 0.5,
        "Read or answered within 24 hours (whatsapp)": 1.0,
        "Read or answered within 24 hours (all channels)": 0.7143,
    }
    # Case deadlines of November per officer: missed and met.
    sla = _bars(data, "sla")
    assert sla["labels"] == ["Amina Njeri", "Baraka Otieno", "Nobody assigned"]
    assert [s["values"] for s in sla["series"]] == [[2, 2, 2], [1, 0, 0]]
    # The holdout: each arm's on-time rate and its 95% interval as a [low, high] bar.
    lift = expected.holdout_lift
    holdout = _bars(data, "holdout")
    assert holdout["labels"] == ["Reminded", "Holdout (no reminders)"]
    rates, intervals = holdout["series"]
    assert rates["values"] == [_rate(lift.reminded.rate), _rate(lift.holdout.rate)]
    assert intervals["interval"] is True
    assert intervals["values"] == [
        [_rate(arm.low), _rate(arm.high)] for arm in (lift.reminded, lift.holdout)
    ]
    assert lift.reminded.installments + lift.holdout.installments == 6

    text = html.unescape(page.text)
    assert 'id="sla-table"' in text and "Amina Njeri" in text
    assert "Messages read or answered within 24 hours" in text
    assert i18n.format_percent(Decimal("0.7143"), "en") in text
    assert "50% of borrowers, set aside by a fixed draw" in text
    assert "The 95% interval is the range of differences" in text
    assert "percentage points" in text


def test_the_new_figures_read_in_french(web: TestClient, with_contacts: Portfolio) -> None:
    page = _dashboard_of(web, "gerante@mfi.example")
    text = html.unescape(page.text)
    data = _chart_data(page.text)
    assert "Délais des dossiers ce mois-ci, par agent" in text
    assert "L'intervalle à 95\u00a0% est la plage des écarts" in text
    assert _bars(data, "sla")["labels"][-1] == "Non attribué"
    assert _bars(data, "holdout")["labels"] == ["Relancés", "Groupe témoin (sans rappels)"]
    assert "Lus ou avec réponse sous 24 heures (tous les canaux)" in _series(data, "reach")


def test_without_a_holdout_the_page_says_so_and_draws_no_comparison(
    web: TestClient, kpi_portfolio: Portfolio
) -> None:
    page = _dashboard_of(web, "manager@mfi.example")
    text = html.unescape(page.text)
    assert "No holdout is set, so the effect of reminders cannot be measured." in text
    assert [c["id"] for c in _chart_data(page.text)["bars"]] == ["sla"]
