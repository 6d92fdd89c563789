"""``kopa demo`` (``make demo``): the loan API on SQLite with the demo portfolio.

The steps are functions so that the chat demo can reuse them: :func:`prepare_demo` migrates and
seeds (idempotently), :func:`try_it_lines` builds the commands to paste, :func:`serve_api` runs
the API until Ctrl-C.
"""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime

import typer
from rich.console import Console

from kopa.paths import VAR_DIR
from kopa.portfolio.demo import DemoLoanView

DEMO_DATABASE = VAR_DIR / "demo.db"


def demo_database_url() -> str:
    return f"sqlite:///{DEMO_DATABASE}"


def prepare_demo(database_url: str) -> list[DemoLoanView]:
    """Migrate ``database_url`` and make sure the demo borrowers are in it."""
    from api.core.config import get_settings
    from kopa.portfolio.seeding import seed_demo

    pepper = get_settings().hash_pepper.get_secret_value()
    return seed_demo(database_url, today=datetime.now(UTC).date(), pepper=pepper)


def try_it_lines(views: list[DemoLoanView], base_url: str) -> list[str]:
    """curl commands that verify the first demo borrower on the terminal channel and read."""
    from api.borrowers.service import choose_factor
    from api.core.config import get_settings

    settings = get_settings()
    token = settings.service_token.get_secret_value()
    if not views:
        return []
    spec = views[0].borrower
    factor = choose_factor(settings.hash_pepper.get_secret_value(), spec.phone).value
    value = spec.dob.isoformat() if factor == "dob" else spec.national_id_last4
    identity = f"{base_url}/v1/identities/terminal/{spec.phone.lstrip('+')}"
    auth = f"-H {shlex.quote('Authorization: Bearer ' + token)}"
    json_type = "-H 'Content-Type: application/json'"
    start_body = shlex.quote(f'{{"phone": "{spec.phone}"}}')
    complete_body = shlex.quote(f'{{"factor": "{factor}", "value": "{value}"}}')
    return [
        f"curl -s {base_url}/health",
        f"curl -s {auth} {json_type} -d {start_body} {identity}/verification/start",
        f"curl -s {auth} {json_type} -d {complete_body} {identity}/verification/complete",
        f"curl -s {auth} {identity}/loans",
        f"curl -s {auth} {identity}/payment-instructions",
    ]


def serve_api(database_url: str, host: str, port: int) -> None:
    """Run the loan API on ``database_url`` in this process until Ctrl-C."""
    import uvicorn

    from api.core import config, db

    os.environ["KOPA_DATABASE_URL"] = database_url
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db.get_sessionmaker.cache_clear()
    uvicorn.run("api.main:app", host=host, port=port, log_level="warning", access_log=False)


def demo(
    host: str = typer.Option("127.0.0.1", help="address the API listens on"),
    port: int = typer.Option(8000, help="port the API listens on"),
    database_url: str | None = typer.Option(
        None, "--database-url", help="defaults to var/demo.db (SQLite)"
    ),
    serve: bool = typer.Option(True, help="start the API after seeding"),
) -> None:
    """Seed the demo portfolio, start the loan API and print what to try."""
    from kopa.portfolio.demo import print_demo_portfolio

    url = database_url or demo_database_url()
    console = Console()
    views = prepare_demo(url)
    print_demo_portfolio(views, console)
    base_url = f"http://{host}:{port}"
    console.print(f"\nLoan API on {base_url} (OpenAPI at {base_url}/docs). Try:\n")
    for line in try_it_lines(views, base_url):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if serve:
        console.print("\nCtrl-C stops the API.")
        serve_api(url, host, port)
