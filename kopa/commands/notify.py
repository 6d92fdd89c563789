"""``kopa notify``: plan campaigns (dry run), run them once, or run the delivery worker."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime

import typer
from rich.table import Table
from sqlalchemy.orm import Session

app = typer.Typer(help="Reminder and incentive campaigns.", no_args_is_help=True)


def _parse_at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise typer.BadParameter("give a UTC offset, e.g. 2026-12-01T09:00:00+03:00")
    return at


def plan_table(session: Session, at: datetime) -> Table:
    """The dry-run plan at ``at`` as a table of counts (``kopa notify plan``, ``kopa demo``)."""
    from bot.notifier.planner import Planner

    result = Planner().plan(session, at, write=False)
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


@app.command()
def plan(
    at: str = typer.Option(None, "--at", help="ISO 8601 instant with offset (default: now)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line per candidate"),
) -> None:
    """Dry run: which messages would be planned or suppressed at AT, and why."""
    from rich.console import Console

    from api.core.db import session_scope
    from bot.notifier.planner import Planner

    instant = _parse_at(at)
    with session_scope() as session:
        if as_json:
            for candidate in Planner().plan(session, instant, write=False).candidates:
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
    from bot.notifier.planner import Planner
    from bot.notifier.worker import run_worker

    instant = _parse_at(at)
    with session_scope() as session:
        inserted = Planner().plan(session, instant, write=True).inserted
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
            stats = asyncio.run(run_worker(once=True))
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

    from bot.notifier.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request URL at INFO, and a Telegram URL carries the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        totals = runner.run(run_worker(worker_id=worker_id))
    typer.echo(json.dumps({"worker": worker_id, **totals.__dict__}))
