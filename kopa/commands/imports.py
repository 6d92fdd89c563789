"""``kopa import PATH``: load a folder of CSV files (see docs/import-format.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def import_command(
    path: Annotated[Path, typer.Argument(help="folder with borrowers.csv, loans.csv, ...")],
    database_url: str | None = typer.Option(
        None, "--database-url", help="defaults to KOPA_DATABASE_URL"
    ),
    migrate: bool = typer.Option(True, help="apply database migrations first"),
) -> None:
    """Import borrowers, loans, schedules and payments; any error imports nothing."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from api.core.config import get_settings
    from api.core.migrate import upgrade
    from portfolio.importer import ImportFailed, run_import

    settings = get_settings()
    url = database_url or settings.database_url
    console = Console()
    if migrate:
        upgrade(url)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:

        class _Bar:
            task: object = None

            def start(self, phase: str, total: int) -> None:
                self.task = progress.add_task(phase, total=total)

            def advance(self, count: int) -> None:
                if self.task is not None:
                    progress.advance(self.task, count)  # type: ignore[arg-type]

        try:
            report = run_import(
                path,
                database_url=url,
                pepper=settings.hash_pepper.get_secret_value(),
                reporter=_Bar(),
            )
        except ImportFailed as failed:
            progress.stop()
            table = Table(title=f"{len(failed.issues)} problem(s): nothing was imported")
            for column in ("file", "line", "reason"):
                table.add_column(column)
            for issue in failed.issues:
                table.add_row(issue.file, str(issue.line), issue.reason)
            console.print(table)
            raise typer.Exit(1) from None
    table = Table(title=f"Imported {path}")
    for column in ("rows", "created", "updated", "unchanged"):
        table.add_column(column, justify="right" if column != "rows" else "left")
    for kind in report.created:
        table.add_row(
            kind,
            str(report.created[kind]),
            str(report.updated.get(kind, 0)),
            str(report.unchanged.get(kind, 0)),
        )
    console.print(table)
