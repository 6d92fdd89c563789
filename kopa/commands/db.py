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


@app.command("rasa-store")
def rasa_store() -> None:
    """Create the Rasa replicas' shared tracker database (``<db>_rasa`` beside a PostgreSQL
    KOPA_DATABASE_URL) if missing: once, before the replicas start."""
    from api.core.config import get_settings
    from kopa.stack import prepare_tracker_database, rasa_tracker_database_url

    url = rasa_tracker_database_url(get_settings().database_url)
    if url is None:
        typer.echo("KOPA_DATABASE_URL is not PostgreSQL: Rasa keeps its trackers in memory")
        raise typer.Exit(code=2)
    prepare_tracker_database(url)
    typer.echo("the Rasa tracker database exists")
