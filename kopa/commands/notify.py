"""``kopa notify``: plan campaigns (dry run), run them once, or run the delivery worker."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from notifier.planner import Planner

app = typer.Typer(help="Reminder and incentive campaigns.", no_args_is_help=True)


def _parse_at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise typer.BadParameter("give a UTC offset, e.g. 2026-12-01T09:00:00+03:00")
    return at


def planner() -> Planner:
    """The campaign planner as Kopa runs it: high-risk loans, by the officers' risk scores
    (refreshed daily), get the policy's earlier first reminder. The score reaches the notifier
    only as loan ids, from here: the notifier does not import api.risk."""
    from api.risk.service import high_risk_loans
    from notifier.planner import Planner

    return Planner(high_risk=high_risk_loans)


def plan_table(session: Session, at: datetime) -> Table:
    """The dry-run plan at ``at`` as a table of counts (``kopa notify plan``, ``kopa demo``)."""
    result = planner().plan(session, at, write=False)
    counts = Counter(
        (c.step, c.channel or "-", c.status, c.reason if c.status == "suppressed" else "")
        for c in result.candidates
    )
    table = Table(title=f"Plan at {at.isoformat()} ({len(result.candidates)} candidates)")
    for column in ("step", "channel", "status", "suppressed by", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for (step, channel, status, reason), count in sorted(counts.items()):
        table.add_row(step, channel, status, reason, str(count))
    return table


def dead_letter_table(session: Session, *, include_resolved: bool = False) -> Table:
    """What the notifier could not deliver, newest first: halted channels (with why) and
    messages whose retries ran out (``kopa notify dead-letters``, ``kopa cases``)."""
    from sqlalchemy import select

    from api.outbox.models import DeadLetter

    query = select(DeadLetter).order_by(DeadLetter.at.desc(), DeadLetter.id.desc()).limit(200)
    if not include_resolved:
        query = query.where(DeadLetter.resolved_at.is_(None))
    rows = list(session.scalars(query))
    table = Table(title=f"Notifier dead letters ({len(rows)})")
    for column in ("at (UTC)", "channel", "reason", "error", "outbox row", "state", "worker"):
        table.add_column(column)
    for row in rows:
        if row.resolved_at is not None:
            when = row.resolved_at.astimezone(UTC)
            state = f"resolved {when:%Y-%m-%d %H:%M} by {row.resolved_by}"
        elif row.halts_channel:
            state = "CHANNEL HALTED"
        else:
            state = "open"
        table.add_row(
            f"{row.at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
            row.channel,
            str(row.reason),
            row.error or "",
            str(row.outbox_id or "-"),
            state,
            row.worker or "",
            style="bold red" if row.halts_channel and row.resolved_at is None else "",
        )
    return table


@app.command("dead-letters")
def dead_letters(
    include_resolved: bool = typer.Option(False, "--all", help="resolved ones too"),
) -> None:
    """Halted channels and messages whose retries ran out, newest first."""
    from rich.console import Console

    from api.core.db import session_scope

    with session_scope() as session:
        Console().print(dead_letter_table(session, include_resolved=include_resolved))


@app.command()
def resume(
    channel: str = typer.Argument(..., help="telegram or whatsapp"),
    by: str = typer.Option(..., "--by", help="who resumes it (recorded on the dead letter)"),
) -> None:
    """Resume a channel halted by a provider error, once its cause is fixed (a new token, a
    corrected template): its waiting messages are claimed, and judged, again."""
    from api.core.db import session_scope
    from notifier.outbox import resume_channel

    with session_scope() as session:
        count = resume_channel(session, channel, at=datetime.now(UTC), by=by)
    typer.echo(f"{channel}: {count} halt(s) resolved" if count else f"{channel} was not halted")


@app.command()
def plan(
    at: str = typer.Option(None, "--at", help="ISO 8601 instant with offset (default: now)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line per candidate"),
) -> None:
    """Dry run: which messages would be planned or suppressed at AT, and why."""
    from rich.console import Console

    from api.core.db import session_scope

    instant = _parse_at(at)
    with session_scope() as session:
        if as_json:
            for candidate in planner().plan(session, instant, write=False).candidates:
                typer.echo(json.dumps(candidate.as_json(), ensure_ascii=False))
        else:
            Console().print(plan_table(session, instant))
        session.rollback()


@app.command()
def run(
    at: str = typer.Option(None, "--at", help="plan as of this instant (default: now)"),
) -> None:
    """Plan now and deliver everything due, once, with a progress bar."""
    from rich.progress import Progress
    from sqlalchemy import func, select

    from api.core.db import session_scope
    from api.outbox.models import OutboxMessage, OutboxStatus
    from api.risk.service import high_risk_loans
    from notifier.worker import run_worker

    instant = _parse_at(at)
    with session_scope() as session:
        inserted = planner().plan(session, instant, write=True).inserted
    typer.echo(f"planned {inserted} new outbox rows")

    def due() -> int:
        with session_scope() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.retry]),
                        OutboxMessage.send_at <= datetime.now(UTC),
                    )
                )
                or 0
            )

    total = due()
    with Progress() as progress:
        task = progress.add_task("delivering", total=total)
        done = 0
        while done < total:
            stats = asyncio.run(run_worker(once=True, high_risk=high_risk_loans))
            if stats.claimed == 0:
                break
            done += stats.claimed
            progress.update(task, completed=min(done, total))
    typer.echo(f"processed {done} of {total} due messages")


@app.command()
def worker(
    worker_id: str = typer.Option(None, help="name in claims (default host:pid)"),
) -> None:
    """Run the delivery worker until SIGTERM/SIGINT."""
    import logging

    import uvloop

    from api.risk.service import high_risk_loans
    from notifier.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request URL at INFO, and a Telegram URL carries the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        totals = runner.run(run_worker(worker_id=worker_id, high_risk=high_risk_loans))
    typer.echo(json.dumps({"worker": worker_id, **totals.__dict__}))
