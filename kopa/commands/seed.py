"""``kopa seed``: a synthetic portfolio for load tests and demos, or the fixed demo portfolio."""

from __future__ import annotations

from datetime import UTC, date, datetime

import typer

app = typer.Typer(help="Fill a database with borrowers, loans and their histories.")


def _parse_day(value: str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--today") from exc


@app.callback(invoke_without_command=True)
def seed(
    borrowers: int = typer.Option(1000, "--borrowers", "-n", min=1, help="how many borrowers"),
    seed: int = typer.Option(1, "--seed", "-s", help="same seed and day give the same data"),
    database_url: str | None = typer.Option(
        None, "--database-url", help="defaults to KOPA_DATABASE_URL"
    ),
    today: str | None = typer.Option(None, "--today", help="reference day YYYY-MM-DD (UTC today)"),
    demo: bool = typer.Option(False, "--demo", help="seed the small fixed demo portfolio instead"),
) -> None:
    """Migrate the database, then seed it (one transaction: all or nothing)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from api.core.config import get_settings
    from portfolio.synthetic.seed import AlreadySeeded, seed_portfolio

    settings = get_settings()
    url = database_url or settings.database_url
    pepper = settings.hash_pepper.get_secret_value()
    day = _parse_day(today)
    console = Console()
    if demo:
        from portfolio.demo import print_demo_portfolio
        from portfolio.seeding import seed_demo

        print_demo_portfolio(seed_demo(url, today=day, pepper=pepper), console)
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("borrowers", total=borrowers)
        try:
            report = seed_portfolio(
                url,
                borrowers=borrowers,
                seed=seed,
                today=day,
                pepper=pepper,
                progress=lambda n: progress.advance(task, n),
            )
        except AlreadySeeded as exc:
            console.print(f"[red]{exc}[/red]: seed an empty database")
            raise typer.Exit(1) from exc
    table = Table(title=f"Seeded in {report.seconds:.1f} s (seed {seed}, today {day})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    table.add_row("total", f"{report.rows:,}")
    console.print(table)
