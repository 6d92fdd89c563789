"""The managers' dashboard: the KPIs of :mod:`api.kpis` for the branches a manager oversees.

Every figure is :func:`api.kpis.service.kpi_report`'s, narrowed to the signed-in manager's
branch scope (:func:`api.branches.service.branch_scope`; an admin's is every branch): the page
has no formulas of its own, it only formats them in the reader's language. The table shows the
last complete day; the charts the last :data:`MONTHS` month-ends up to it, one report each, so
the page costs a handful of reports however old the portfolio is. Officers, and a branch outside
the scope, get "not found", as everywhere in the console.

The charts' data reaches the page as JSON in a ``<script type="application/json">`` block and
is drawn by ``static/dashboard.js``: no inline script, so the console's CSP stays strict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

import i18n
from api.branches.models import Officer, StaffRole
from api.branches.service import branch_scope
from api.console import dashboard_contact as contact_view
from api.console import queue
from api.console.exceptions import OutsideScope
from api.console.router import FilterField, SignedInDep, redirect_to
from api.console.templating import page
from api.core.deps import NowDep, SessionDep
from api.kpis import service as kpi_service
from api.kpis.exceptions import UnknownBranch
from api.kpis.schemas import BUCKETS, REPAID, KpiReport

router = APIRouter(prefix="/console", include_in_schema=False)

MONTHS = 6
ROLL_TO = (*BUCKETS, REPAID)
PAR_LEVELS = ("par1", "par30", "par90")
COLLECTION_RATES = ("on_time_rate", "with_arrears_rate")


@dataclass(frozen=True)
class Dashboard:
    """The report at ``as_of`` and those at the month-ends before it, oldest first."""

    as_of: date
    branch: str | None
    report: KpiReport
    history: list[KpiReport]


def month_ends(as_of: date, count: int = MONTHS) -> list[date]:
    """The last ``count`` month-ends on or before ``as_of``, oldest first."""
    following = as_of + timedelta(days=1)
    end = as_of if following.day == 1 else as_of.replace(day=1) - timedelta(days=1)
    ends = [end]
    while len(ends) < count:
        ends.append(ends[-1].replace(day=1) - timedelta(days=1))
    return ends[::-1]


def dashboard(session: Session, officer: Officer, *, as_of: date, branch: str | None) -> Dashboard:
    """The KPIs of ``officer``'s branches (or of ``branch`` among them) at ``as_of``.

    Raises:
        OutsideScope: ``officer`` is no manager or admin, or ``branch`` is not theirs.
    """
    if officer.role is StaffRole.officer:
        raise OutsideScope()
    scope = branch_scope(session, officer)
    reports: dict[date, KpiReport] = {}
    try:
        for day in [*month_ends(as_of), as_of]:
            if day not in reports:
                reports[day] = kpi_service.kpi_report(
                    session=session, as_of=day, branch=branch, within=scope
                )
    except UnknownBranch:
        raise OutsideScope() from None
    history = [reports[day] for day in month_ends(as_of)]
    return Dashboard(as_of=as_of, branch=branch, report=reports[as_of], history=history)


# -- what the page shows --------------------------------------------------------------------


def percent(rate: Decimal | None, locale: str) -> str:
    """A rate as a percentage in ``locale`` ("12.34%", "12,34 %"); "no data" when None."""
    if rate is None:
        return i18n.render("console.dashboard.no_data", locale)
    return i18n.format_percent(rate, locale)


Rate = Callable[[KpiReport], Decimal | None]


def _series(label: str, reports: Sequence[KpiReport], rate: Rate, locale: str) -> dict[str, Any]:
    rates = [rate(report) for report in reports]
    return {
        "label": label,
        "values": [None if r is None else float(r) for r in rates],
        "texts": [percent(r, locale) for r in rates],
    }


def _currencies(reports: Sequence[KpiReport]) -> list[str]:
    par = {row.currency for r in reports for row in r.portfolio_at_risk}
    return sorted(par | {row.currency for r in reports for row in r.collection})


def _rate_of(report: KpiReport, *, rows: str, currency: str, field: str) -> Decimal | None:
    """``field`` of the ``currency`` row of the report's ``rows`` (PAR or collection)."""
    rates = (getattr(row, field) for row in getattr(report, rows) if row.currency == currency)
    return next(rates, None)


def _per_currency(
    history: Sequence[KpiReport], locale: str, rows: str, fields: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        _series(
            i18n.render(f"console.dashboard.{field}", locale, currency=currency),
            history,
            partial(_rate_of, rows=rows, currency=currency, field=field),
            locale,
        )
        for currency in _currencies(history)
        for field in fields
    ]


def chart_data(board: Dashboard, locale: str) -> dict[str, Any]:
    """The charts' labels and series, JSON-ready: rates as fractions (None where a month had
    nothing to count) and as the reader's percentages. ``charts`` are month by month (lines);
    ``bars`` are of the as-of month, each with its own category ``labels``."""
    history = board.history
    t = i18n.render
    par = _per_currency(history, locale, "portfolio_at_risk", PAR_LEVELS)
    collection = _per_currency(history, locale, "collection", COLLECTION_RATES)
    behaviour = [
        _series(t("console.dashboard.kept_rate", locale), history, _kept_rate, locale),
        _series(t("console.dashboard.cure_rate", locale), history, _cure_rate, locale),
        _series(t("console.dashboard.conversion", locale), history, _conversion, locale),
    ]
    contact = [
        _series(t("console.dashboard.opt_out", locale), history, _opt_out, locale),
        _series(t("console.dashboard.complaints", locale), history, _complaints, locale),
    ]
    charts = {
        "par": par,
        "collection": collection,
        "behaviour": behaviour,
        "contact": contact,
        "reach": contact_view.reach_series(history, locale),
    }
    return {
        "locale": locale.replace("_", "-"),
        "labels": [i18n.format_month(r.as_of, locale) for r in history],
        "charts": [
            {"id": name, "title": t(f"console.dashboard.chart.{name}", locale), "series": series}
            for name, series in charts.items()
        ],
        "bars": contact_view.bar_charts(board.report, locale),
    }


def _kept_rate(report: KpiReport) -> Decimal | None:
    return report.promises.kept_rate


def _cure_rate(report: KpiReport) -> Decimal | None:
    return report.roll_rates.cure_rate


def _conversion(report: KpiReport) -> Decimal | None:
    return report.reminder_conversion.rate


def _opt_out(report: KpiReport) -> Decimal | None:
    return report.opt_out.rate


def _complaints(report: KpiReport) -> Decimal | None:
    return report.complaints.rate


def last_complete_day(now_day: date) -> date:
    """The as-of day: yesterday, the last day whose payments are all in."""
    return now_day - timedelta(days=1)


@router.get("/dashboard")
def dashboard_page(
    signed: SignedInDep, session: SessionDep, now: NowDep, branch: FilterField = None
) -> Response:
    """The KPIs of the manager's branches as a table and charts; officers are not found."""
    if signed is None:
        return redirect_to("/console/login")
    officer = signed.officer
    chosen = branch.strip() if branch and branch.strip() else None
    try:
        board = dashboard(session, officer, as_of=last_complete_day(now.date()), branch=chosen)
    except OutsideScope:
        return page("not_found.html", locale=officer.locale, status_code=404)
    session.commit()  # the session's last request time
    language = i18n.normalize_locale(officer.locale)
    return page(
        "dashboard.html",
        locale=officer.locale,
        officer=officer,
        csrf_token=signed.csrf_token,
        board=board,
        branches=queue.scope_branches(session, officer),
        chart_data=chart_data(board, language),
        percent=lambda rate: percent(rate, language),
        number=lambda count: i18n.format_arg(Decimal(count), language),
        roll_to=ROLL_TO,
        buckets=BUCKETS,
        confidence=contact_view.confidence(language),
        channel_label=lambda channel: contact_view.channel_label(channel, language),
        officer_name=lambda name: contact_view.officer_name(name, language),
        interval=lambda low, high: contact_view.interval(low, high, language),
        points=lambda value: contact_view.points(value, language),
        points_interval=lambda low, high: contact_view.points_interval(low, high, language),
    )
