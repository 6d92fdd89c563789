"""``kopa db``: schema migrations."""

from __future__ import annotations

import typer

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply Alembic migrations to KOPA_DATABASE_URL (SQLite by default)."""
    from api.core.config import get_settings
    from api.core.migrate import upgrade as run_upgrade

    run_upgrade(get_settings().database_url, revision)
    typer.echo("database is at the latest schema")
