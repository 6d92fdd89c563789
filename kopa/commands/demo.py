"""``kopa demo`` (``make demo``): the loan API on SQLite with the demo portfolio.

The steps are functions so that the chat demo can reuse them: :func:`prepare_demo` migrates and
seeds (idempotently) and gives the demo staff their console password, :func:`try_it_lines`
builds the commands to paste, :func:`console_lines` says how to sign in to the officers' console
(the other half of the product: a hardship message in the chat opens a case in its queue),
:func:`serve_api` runs the API until Ctrl-C.
"""

from __future__ import annotations

import functools
import os
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from kopa.paths import VAR_DIR
from portfolio.demo import DemoLoanView

if TYPE_CHECKING:
    from api.console.auth import NewStaff

DEMO_DATABASE = VAR_DIR / "demo.db"
STAFF_PASSWORD_ENV = "KOPA_DEMO_STAFF_PASSWORD"  # noqa: S105 - the variable's name


@dataclass(frozen=True)
class DemoSetup:
    """What :func:`prepare_demo` left in the database: the borrowers and the console's staff."""

    views: list[DemoLoanView]
    staff: tuple[NewStaff, ...]
    staff_password: str


def demo_database_url() -> str:
    return f"sqlite:///{DEMO_DATABASE}"


def prepare_demo(database_url: str) -> DemoSetup:
    """Migrate ``database_url``, make sure the demo borrowers are in it, and give the demo staff
    accounts the password of ``KOPA_DEMO_STAFF_PASSWORD``, else a new random one (every run:
    nobody else knows it then). Raises WeakPassword."""
    from api.core.config import get_settings
    from portfolio.seeding import seed_demo, seed_demo_staff

    settings = get_settings()
    pepper = settings.hash_pepper.get_secret_value()
    views = seed_demo(database_url, today=datetime.now(UTC).date(), pepper=pepper)
    password = os.environ.get(STAFF_PASSWORD_ENV) or secrets.token_urlsafe(12)
    staff = seed_demo_staff(database_url, password=password, policy=settings.console)
    return DemoSetup(views, staff, password)


def console_lines(
    setup: DemoSetup, api_url: str | None, chat_branch: str | None = None
) -> list[str]:
    """How to sign in to the console of the API at ``api_url`` (None: not started here); with
    ``chat_branch`` (the chatting borrower's branch), what to try in the chat to see a case
    arrive there."""
    from portfolio.demo_staff import DEMO_MANAGER, officer_of

    where = f"{api_url}/console" if api_url else "/console of the loan API on this database"
    lines = [f"Officers' web console: {where}. Demo staff, one password for all:"]
    lines += [f"  {s.email}  {s.role.value} of {', '.join(s.branch_codes)}" for s in setup.staff]
    lines.append(f"  password: {setup.staff_password}")
    if chat_branch is not None:
        officer = officer_of(chat_branch).email
        lines.append(
            "Type 'I lost my job', then 'talk to a person' in the chat: the hardship case shows in "
            f"the console queue of {officer} and of {DEMO_MANAGER.email} (who may claim it)."
        )
    return lines


def try_it_lines(views: list[DemoLoanView], base_url: str) -> list[str]:
    """curl commands that verify the first demo borrower on the terminal channel and read."""
    from api.borrowers.verification import offered_factors
    from api.core.config import get_settings

    settings = get_settings()
    token = settings.service_token.get_secret_value()
    if not views:
        return []
    spec = views[0].borrower
    factor = offered_factors(settings)[0].value
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


def print_todays_plan(database_url: str, console: Console) -> None:
    """Show what the notifier would send today to the demo portfolio (a dry run)."""
    from sqlalchemy.orm import Session

    from api.core.db import build_engine
    from kopa.commands.notify import plan_table

    engine = build_engine(database_url)
    try:
        with Session(engine) as session:
            console.print(plan_table(session, datetime.now(UTC)))
    finally:
        engine.dispose()


def chat_as(
    database_url: str,
    phone: str,
    lang: str | None,
    console: Console,
    console_help: Callable[[str], list[str]],
) -> None:
    """Start the API, action server and Rasa on the demo database, then chat as ``phone``; once
    the stack is up, print ``console_help`` of the started API's URL."""
    from kopa.commands.chat import talk

    os.environ["KOPA_DATABASE_URL"] = database_url
    from api.core import config

    config.get_settings.cache_clear()

    def ready(api_url: str) -> None:
        console.print()
        for line in console_help(api_url):
            console.print(line, markup=False, highlight=False)
        console.print(
            f"\nChatting as {phone}. Try: hello · what is my balance · when is my next payment · "
            "how do I pay · I will pay 500 next friday · I lost my job · talk to a person · "
            "parle français · STOP. Ctrl-D ends.\n",
            markup=False,
            highlight=False,
        )

    talk(phone=phone, lang=lang, start=True, rasa_url="", api_url="", on_ready=ready)


def demo(
    host: str = typer.Option("127.0.0.1", help="address the API listens on (with --api-only)"),
    port: int = typer.Option(8000, help="port the API listens on (with --api-only)"),
    database_url: str | None = typer.Option(
        None, "--database-url", help="defaults to var/demo.db (SQLite)"
    ),
    phone: str | None = typer.Option(
        None, help="chat as this seeded borrower (default: the first demo borrower)"
    ),
    lang: str | None = typer.Option(None, help="the chat's language hint"),
    api_only: bool = typer.Option(False, "--api-only", help="serve the loan API, no chat"),
    serve: bool = typer.Option(True, help="start the chat (or the API) after seeding"),
) -> None:
    """Seed the demo portfolio, show today's reminder plan, then chat as a seeded borrower."""
    from api.core.errors import DomainError
    from portfolio.demo import print_demo_portfolio

    url = database_url or demo_database_url()
    console = Console()
    try:
        setup = prepare_demo(url)
    except DomainError as exc:  # a KOPA_DEMO_STAFF_PASSWORD too short for the console
        typer.echo(f"error: {exc.detail} ({STAFF_PASSWORD_ENV})", err=True)
        raise typer.Exit(code=2) from exc
    views = setup.views
    print_demo_portfolio(views, console)
    console.print("\nToday's reminder and incentive plan for this portfolio (dry run):")
    print_todays_plan(url, console)
    if api_only:
        base_url = f"http://{host}:{port}"
        console.print(f"\nLoan API on {base_url} (OpenAPI at {base_url}/docs). Try:\n")
        for line in [*try_it_lines(views, base_url), "", *console_lines(setup, base_url)]:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        if serve:
            console.print("\nCtrl-C stops the API.")
            serve_api(url, host, port)
        return
    if not serve or not views:
        # The password just changed: say it even when nothing starts.
        console.print()
        for line in console_lines(setup, None):
            console.print(line, markup=False, highlight=False)
        return
    chosen = next((v.borrower for v in views if v.borrower.phone == phone), views[0].borrower)
    # A phone that is not a demo borrower's belongs to no demo branch: no hint for it.
    branch = chosen.branch if phone in (None, chosen.phone) else None
    # The channel's language hint: a phone's own app language, here the borrower's.
    chat_as(
        url,
        phone or chosen.phone,
        lang or chosen.language,
        console,
        functools.partial(console_lines, setup, chat_branch=branch),
    )
