"""``kopa kpis``: portfolio and contact KPIs at a day, as tables or JSON.

The labels are plain English, as in the other operator commands (``kopa cases``, ``kopa notify
plan``); the figures come from :func:`api.kpis.service.kpi_report`, whose docstrings state
each formula.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import typer
from rich.table import Table

if TYPE_CHECKING:
    from api.kpis.schemas import KpiReport


def _rate(value: Decimal | None) -> str:
    """A ratio as a percentage with two decimals; "-" when there was nothing to divide by."""
    return "-" if value is None else f"{value * 100:.2f} %"


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def kpi_tables(report: KpiReport) -> list[Table]:
    """The report as rich tables: one per figure, money per currency."""
    scope = f"branch {report.branch}" if report.branch else "all branches"
    period = f"{report.period_start} to {report.period_end}"
    tables = []

    par = Table(title=f"Portfolio at risk at the end of {report.as_of} ({scope})")
    for column in ("currency", "loans", "gross principal", "PAR1", "PAR30", "PAR90"):
        par.add_column(column, justify="left" if column == "currency" else "right")
    for p in report.portfolio_at_risk:
        par.add_row(
            p.currency,
            str(p.loans),
            _money(p.gross_principal, p.currency),
            *(
                f"{_rate(rate)} ({_money(amount, p.currency)})"
                for rate, amount in (
                    (p.par1, p.par1_principal),
                    (p.par30, p.par30_principal),
                    (p.par90, p.par90_principal),
                )
            ),
        )
    tables.append(par)

    collection = Table(title=f"Collection, {period}")
    for column in (
        "currency",
        "due",
        "paid on time",
        "paid by as-of day",
        "arrears at start",
        "arrears collected",
        "on time",
        "with arrears",
    ):
        collection.add_column(column, justify="left" if column == "currency" else "right")
    for c in report.collection:
        collection.add_row(
            c.currency,
            *(
                _money(amount, c.currency)
                for amount in (
                    c.due,
                    c.paid_on_time,
                    c.paid_by_as_of,
                    c.arrears_at_start,
                    c.arrears_collected,
                )
            ),
            _rate(c.on_time_rate),
            _rate(c.with_arrears_rate),
        )
    tables.append(collection)

    roll = report.roll_rates
    ends = [*roll.counts, "repaid"]
    rolls = Table(title=f"Roll rates, loans from {roll.from_date} to {roll.to_date} (days late)")
    rolls.add_column("from \\ to")
    for end in ends:
        rolls.add_column(end, justify="right")
    for start, row in roll.counts.items():
        shares = roll.rates[start]
        rolls.add_row(
            start, *(f"{row[end]} ({_rate(shares[end])})" if end in row else "" for end in ends)
        )
    tables.append(rolls)

    rates = Table(title=f"Rates, {period}")
    for column in ("figure", "count", "out of", "rate"):
        rates.add_column(column, justify="left" if column == "figure" else "right")
    promises = report.promises
    judged = promises.kept + promises.partially_kept + promises.broken
    conversion = report.reminder_conversion
    for figure, count, out_of, rate in (
        (
            f"promises kept (grace {promises.grace_days} days; partially kept "
            f"{promises.partially_kept}, broken {promises.broken})",
            promises.kept,
            judged,
            promises.kept_rate,
        ),
        (
            f"cure: loans late at {roll.from_date} current at {roll.to_date}",
            roll.cured,
            roll.past_due_at_start,
            roll.cure_rate,
        ),
        (
            f"reminders sent to {conversion.sent_through} followed by a payment within "
            f"{conversion.window_days} days",
            conversion.converted,
            conversion.reminders,
            conversion.rate,
        ),
        (
            "borrowers reached who opted out",
            report.opt_out.borrowers,
            report.opt_out.reached,
            report.opt_out.rate,
        ),
        (
            "borrowers reached who complained",
            report.complaints.borrowers,
            report.complaints.reached,
            report.complaints.rate,
        ),
    ):
        rates.add_row(figure, str(count), str(out_of), _rate(rate))
    tables.append(rates)

    delivery = Table(title=f"Delivery outcomes, {period}")
    outcomes = sorted({o for d in report.delivery for o in d.outcomes})
    receipts = sorted({r for d in report.delivery for r in d.receipts})
    delivery.add_column("channel")
    for column in [*outcomes, *(f"receipt: {r}" for r in receipts)]:
        delivery.add_column(column, justify="right")
    for d in report.delivery:
        delivery.add_row(
            d.channel,
            *(str(d.outcomes.get(o, 0)) for o in outcomes),
            *(str(d.receipts.get(r, 0)) for r in receipts),
        )
    tables.append(delivery)
    tables += contact_tables(report)
    return tables


def contact_tables(report: KpiReport) -> list[Table]:
    """Right-party contact per channel, SLA breaches per officer, the holdout lift."""
    rpc = report.right_party_contact
    contact = Table(
        title=f"Right-party contact: sent {report.period_start} to {rpc.sent_through}, read or "
        f"replied within {rpc.window_hours} h"
    )
    for column in ("channel", "sent", "read", "replied", "reached", "rate"):
        contact.add_column(column, justify="left" if column == "channel" else "right")
    for c in rpc.channels:
        contact.add_row(c.channel, *map(str, (c.sent, c.read, c.replied, c.reached)), _rate(c.rate))
    contact.add_row("all", str(rpc.sent), "", "", str(rpc.reached), _rate(rpc.rate))

    sla = Table(title=f"Case SLA deadlines, {report.period_start} to {report.period_end}")
    for column in ("officer", "deadlines", "breached", "still open", "breach rate"):
        sla.add_column(column, justify="left" if column == "officer" else "right")
    for o in report.sla_breaches.officers:
        sla.add_row(
            o.officer or "(unassigned)",
            str(o.due),
            str(o.breached),
            str(o.still_open),
            _rate(o.rate),
        )

    lift = report.holdout_lift
    share = f"{lift.share * 100:g} %" if lift.share else "off"
    arms = Table(
        title=f"Causal lift of reminders (holdout {share}): installments due {lift.counted_from} "
        f"to {report.period_end} paid in full by their due date"
    )
    for column in ("arm", "installments", "on time", "rate", "95 % interval (Wilson)"):
        arms.add_column(column, justify="left" if column == "arm" else "right")
    for name, arm in (("reminded", lift.reminded), ("holdout", lift.holdout)):
        arms.add_row(
            name,
            str(arm.installments),
            str(arm.on_time),
            _rate(arm.rate),
            _interval(arm.low, arm.high),
        )
    arms.add_row(
        "lift (reminded - holdout)",
        "",
        "",
        _points(lift.lift),
        _interval(lift.lift_low, lift.lift_high, points=True),
    )
    arms.caption = (
        "95 % interval of the lift by Newcombe's hybrid score method. With few installments an "
        "arm the interval is wide: an interval that includes 0 shows no effect either way."
    )
    return [contact, sla, arms]


def _points(value: Decimal | None) -> str:
    """A difference of rates in percentage points, signed."""
    return "-" if value is None else f"{value * 100:+.2f} pp"


def _interval(low: Decimal | None, high: Decimal | None, *, points: bool = False) -> str:
    if low is None or high is None:
        return "-"
    show = _points if points else _rate
    return f"{show(low)} to {show(high)}"


def kpis(
    at: str = typer.Option(..., "--at", help="the day, YYYY-MM-DD (each branch's calendar)"),
    branch: str | None = typer.Option(None, "--branch", help="a branch code (default: all)"),
    as_json: bool = typer.Option(
        False, "--json", help="one JSON object; amounts and rates as decimal strings"
    ),
) -> None:
    """Portfolio at risk, collection, promises, roll and cure rates, reminder conversion,
    opt-outs, complaints, delivery outcomes, right-party contact, case SLA breaches per officer
    and the causal lift of reminders (holdout) at the end of AT."""
    from rich.console import Console

    from api.core.db import session_scope
    from api.kpis import service
    from api.kpis.exceptions import UnknownBranch

    try:
        day = date.fromisoformat(at)
    except ValueError as exc:
        raise typer.BadParameter("a day, e.g. 2026-11-30", param_hint="--at") from exc
    with session_scope() as session:
        try:
            report = service.kpi_report(session=session, as_of=day, branch=branch)
        except UnknownBranch as exc:
            raise typer.BadParameter(f"no branch has the code {branch!r}") from exc
        session.rollback()  # read only
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    console = Console()
    for table in kpi_tables(report):
        console.print(table)
