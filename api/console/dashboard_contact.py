"""The dashboard's contact, case-deadline and holdout figures (:mod:`api.console.dashboard`).

Like the rest of the dashboard, nothing here computes a KPI: the right-party-contact rate, the
SLA breaches per officer and the holdout lift are :func:`api.kpis.service.kpi_report`'s; this
module only turns them into chart series and the reader's numbers.

- ``reach``: a monthly line chart, the right-party-contact rate per channel and in all.
- ``sla``: a bar chart of the as-of month, per officer, deadlines missed and met.
- ``holdout``: a bar chart of the on-time payment rate of the two arms, each with its 95 %
  interval drawn as a floating bar (``[low, high]``), which Chart.js draws without a plugin.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import i18n
from api.kpis.contacts import PHONE
from api.kpis.intervals import CONFIDENCE
from api.kpis.schemas import HoldoutLift, KpiReport, SlaBreaches

ALL_CHANNELS = "all"


def confidence(locale: str) -> str:
    """The intervals' confidence level as the reader writes it ("95%", "95 %")."""
    return i18n.format_percent(Decimal(str(CONFIDENCE)), locale)


def _percent(rate: Decimal | None, locale: str) -> str:
    if rate is None:
        return i18n.render("console.dashboard.no_data", locale)
    return i18n.format_percent(rate, locale)


def _value(rate: Decimal | None) -> float | None:
    return None if rate is None else float(rate)


def reach_series(history: Sequence[KpiReport], locale: str) -> list[dict[str, Any]]:
    """Per channel seen in ``history`` and for all channels, the monthly contact rate."""
    channels = sorted({c.channel for r in history for c in r.right_party_contact.channels})
    series = []
    for channel in [*channels, ALL_CHANNELS]:
        rates = [_channel_rate(r, channel) for r in history]
        label = channel_label(channel, locale)
        series.append(
            {
                "label": label,
                "values": [_value(r) for r in rates],
                "texts": [_percent(r, locale) for r in rates],
            }
        )
    return series


def channel_label(channel: str, locale: str) -> str:
    """What a channel's contact rate is called: officers' calls are answered, not read."""
    if channel == ALL_CHANNELS:
        return i18n.render("console.dashboard.rpc_all", locale)
    if channel == PHONE:
        return i18n.render("console.dashboard.rpc_phone", locale)
    return i18n.render("console.dashboard.rpc_channel", locale, channel=channel)


def _channel_rate(report: KpiReport, channel: str) -> Decimal | None:
    rpc = report.right_party_contact
    if channel == ALL_CHANNELS:
        return rpc.rate
    return next((c.rate for c in rpc.channels if c.channel == channel), None)


def officer_name(name: str | None, locale: str) -> str:
    return name if name is not None else i18n.render("console.dashboard.unassigned", locale)


def sla_chart(sla: SlaBreaches, locale: str) -> dict[str, Any]:
    """Deadlines missed and met per officer, as counts."""

    def counts(label_key: str, values: list[int]) -> dict[str, Any]:
        return {
            "label": i18n.render(label_key, locale),
            "values": values,
            "texts": [i18n.format_arg(Decimal(v), locale) for v in values],
        }

    return {
        "id": "sla",
        "title": i18n.render("console.dashboard.chart.sla", locale),
        "axis": "count",
        "labels": [officer_name(o.officer, locale) for o in sla.officers],
        "series": [
            counts("console.dashboard.sla_breached", [o.breached for o in sla.officers]),
            counts("console.dashboard.sla_in_time", [o.due - o.breached for o in sla.officers]),
        ],
    }


def holdout_chart(lift: HoldoutLift, locale: str) -> dict[str, Any]:
    """The two arms' on-time rates and their 95 % intervals."""
    arms = (lift.reminded, lift.holdout)
    intervals = [
        None if a.low is None or a.high is None else [float(a.low), float(a.high)] for a in arms
    ]
    return {
        "id": "holdout",
        "title": i18n.render(
            "console.dashboard.chart.holdout", locale, confidence=confidence(locale)
        ),
        "axis": "percent",
        "labels": [
            i18n.render("console.dashboard.arm.reminded", locale),
            i18n.render("console.dashboard.arm.holdout", locale),
        ],
        "series": [
            {
                "label": i18n.render("console.dashboard.rate_series", locale),
                "values": [_value(a.rate) for a in arms],
                "texts": [_percent(a.rate, locale) for a in arms],
            },
            {
                "label": i18n.render(
                    "console.dashboard.interval", locale, confidence=confidence(locale)
                ),
                "interval": True,
                "values": intervals,
                "texts": [interval(a.low, a.high, locale) for a in arms],
            },
        ],
    }


def bar_charts(report: KpiReport, locale: str) -> list[dict[str, Any]]:
    """The as-of month's bar charts: case deadlines per officer (when any fell), and the
    holdout comparison (when a holdout is configured)."""
    charts = []
    if report.sla_breaches.officers:
        charts.append(sla_chart(report.sla_breaches, locale))
    if report.holdout_lift.share > 0:
        charts.append(holdout_chart(report.holdout_lift, locale))
    return charts


def interval(low: Decimal | None, high: Decimal | None, locale: str) -> str:
    """A 95 % interval of a rate, "6.15% to 79.23%"; "no data" when there is none."""
    if low is None or high is None:
        return i18n.render("console.dashboard.no_data", locale)
    return i18n.render(
        "console.dashboard.interval_value",
        locale,
        low=i18n.format_percent(low, locale),
        high=i18n.format_percent(high, locale),
    )


def points(value: Decimal | None, locale: str) -> str:
    """A difference of two rates in percentage points, "33.33 percentage points"."""
    if value is None:
        return i18n.render("console.dashboard.no_data", locale)
    return i18n.render("console.dashboard.points", locale, points=value * 100)


def points_interval(low: Decimal | None, high: Decimal | None, locale: str) -> str:
    """The lift's 95 % interval, "-29.05 to 79.23 percentage points"."""
    if low is None or high is None:
        return i18n.render("console.dashboard.no_data", locale)
    return i18n.render("console.dashboard.points_interval", locale, low=low * 100, high=high * 100)
