"""``kopa risk``: fit the risk scorecard on the portfolio's history and score the open loans.

The scores are for officers (they order the queue); borrowers never see them, and no conduct
rule reads them. The rules live in :mod:`api.risk`; these commands only run them and print.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Risk prioritisation of open loans (officers only).", no_args_is_help=True)


def _day(value: str | None, option: str) -> date:
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("a day, e.g. 2026-11-30", param_hint=option) from exc


@app.command()
def fit(
    through: str | None = typer.Option(
        None, "--through", help="the last day of history to learn from (default: today)"
    ),
) -> None:
    """Fit a new scorecard on month-end snapshots of the portfolio and store it."""
    from api.core.db import session_scope
    from api.risk import service
    from api.risk.fit import NotEnoughHistory
    from api.risk.scorecard import Scorecard

    day = _day(through, "--through")
    with session_scope() as session:
        try:
            stored = service.fit(session=session, through=day)
        except NotEnoughHistory as exc:
            raise typer.BadParameter(str(exc), param_hint="--through") from exc
        table = Table(
            title=f"Scorecard {stored.id}: {stored.snapshots} snapshots from "
            f"{stored.fitted_from} to {stored.fitted_through}, {stored.events} went wrong"
        )
        for column in ("feature", "bin", "points"):
            table.add_column(column, justify="right" if column == "points" else "left")
        for row in Scorecard.from_json(stored.card).table():
            table.add_row(row[0], row[1], str(row[2]))
    Console().print(table)


@app.command()
def score(
    at: str | None = typer.Option(None, "--at", help="the day, YYYY-MM-DD (default: today)"),
    top: int = typer.Option(20, "--top", help="how many of the riskiest loans to print"),
) -> None:
    """Score every open loan at the end of AT with the latest scorecard (replacing that day's)."""
    from api.core.db import session_scope
    from api.loans.models import Loan
    from api.risk import service

    day = _day(at, "--at")
    with session_scope() as session:
        try:
            scores = service.score_open_loans(session=session, at=day)
        except service.NoScorecard as exc:
            raise typer.BadParameter(str(exc), param_hint="--at") from exc
        table = Table(title=f"{len(scores)} open loans scored at the end of {day}")
        for column in ("loan", "points", "probability", "reasons"):
            table.add_column(column, justify="left" if column in {"loan", "reasons"} else "right")
        for s in sorted(scores, key=lambda s: (-s.points, s.loan_id))[:top]:
            reasons = ", ".join(f"{r['feature']} {r['bin']} (+{r['points']})" for r in s.reasons)
            loan = session.get_one(Loan, s.loan_id)
            table.add_row(loan.account_reference, str(s.points), f"{s.probability}", reasons)
    Console().print(table)
