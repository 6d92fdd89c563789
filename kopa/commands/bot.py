"""``kopa serve bot``, ``kopa cases`` and ``kopa fake telegram|whatsapp``."""

from __future__ import annotations

import typer

fake_app = typer.Typer(
    help="Local fake provider servers (tests, demo, benchmarks).", no_args_is_help=True
)


@fake_app.command("telegram")
def fake_telegram(
    host: str = typer.Option("127.0.0.1", help="address to bind"),
    port: int = typer.Option(8081, help="port to bind"),
) -> None:
    """Serve a fake Telegram Bot API (point KOPA_TELEGRAM__API_BASE_URL at it)."""
    import uvicorn

    from bot.fakes.telegram import create_app
    from bot.runtime import tune_gc

    typer.echo(f"fake Telegram Bot API on http://{host}:{port}/bot<token>/<method>")
    tune_gc()
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", access_log=False)


@fake_app.command("whatsapp")
def fake_whatsapp(
    host: str = typer.Option("127.0.0.1", help="address to bind"),
    port: int = typer.Option(8082, help="port to bind"),
    webhook_url: str | None = typer.Option(None, help="the gateway's POST /whatsapp/webhook"),
    app_secret: str | None = typer.Option(
        None, envvar="KOPA_WHATSAPP__APP_SECRET", help="signs delivered webhooks"
    ),
    auto_status: bool = typer.Option(False, help="send sent/delivered status webhooks"),
) -> None:
    """Serve a fake WhatsApp Cloud API (point KOPA_WHATSAPP__GRAPH_BASE_URL at it)."""
    import uvicorn

    from bot.fakes.whatsapp import FakeWhatsApp
    from bot.runtime import tune_gc

    fake = FakeWhatsApp(webhook_url=webhook_url, app_secret=app_secret, auto_status=auto_status)
    typer.echo(f"fake WhatsApp Cloud API on http://{host}:{port}/<version>/<phone id>/messages")
    tune_gc()
    uvicorn.run(fake.app, host=host, port=port, log_level="warning", access_log=False)


def serve_bot(
    host: str | None = typer.Option(None, help="address to bind (else KOPA_GATEWAY_HOST)"),
    port: int | None = typer.Option(None, help="port to bind (else KOPA_GATEWAY_PORT)"),
    telegram_polling: bool = typer.Option(
        False, help="poll Telegram (getUpdates) instead of receiving its webhook"
    ),
) -> None:
    """Serve the channel gateway: Telegram and WhatsApp webhooks, officer buttons."""
    import logging

    import uvicorn

    from bot.app import create_app, install_log_redaction
    from bot.config import get_bot_settings

    settings = get_bot_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_redaction(settings)
    app = create_app(settings, telegram_polling=telegram_polling)
    uvicorn.run(
        app,
        host=host or settings.gateway_host,
        port=port or settings.gateway_port,
        log_level="info",
        access_log=False,
    )


def cases() -> None:
    """List the notifier's open dead letters (from the database) and open cases by SLA
    deadline (from the loan API at KOPA_API_URL)."""
    import asyncio
    from datetime import UTC, datetime

    import httpx
    from rich.console import Console
    from rich.table import Table

    from bot.config import get_bot_settings
    from bot.officers import OfficerDesk

    settings = get_bot_settings()

    async def fetch() -> list[dict[str, object]]:
        desk = OfficerDesk(settings.api_url, settings.service_token.get_secret_value())
        try:
            return await desk.open_cases()
        finally:
            await desk.aclose()

    console = Console()
    # The notifier's dead letters first, from the database: a halted channel is a case for an
    # operator too, and shows even when the loan API is down.
    from sqlalchemy.exc import SQLAlchemyError

    from api.core.db import session_scope
    from kopa.commands.notify import dead_letter_table

    try:
        with session_scope() as session:
            console.print(dead_letter_table(session))
    except SQLAlchemyError as exc:
        # The open cases below come from the API and still matter when this machine cannot
        # read the notifier's database (another host, or not migrated here).
        console.print(
            f"[yellow]dead letters: the database at KOPA_DATABASE_URL could not be read "
            f"({type(exc).__name__}); run `kopa notify dead-letters` where it can be"
        )
    try:
        rows = asyncio.run(fetch())
    except httpx.HTTPError as exc:
        console.print(
            f"[red]the loan API at {settings.api_url} did not answer: {type(exc).__name__}"
        )
        raise typer.Exit(1) from exc
    table = Table(title=f"Open cases ({len(rows)})")
    for column in (
        "SLA due",
        "Reference",
        "Kind",
        "Status",
        "Borrower",
        "Phone",
        "Officer",
        "Branch",
    ):
        table.add_column(column)
    now = datetime.now(UTC)
    for row in rows:
        due = datetime.fromisoformat(str(row["sla_due_at"])).astimezone(UTC)
        left = due - now
        hours = left.total_seconds() / 3600
        style = (
            "bold red" if row.get("sla_missed") or hours < 0 else ("yellow" if hours < 4 else "")
        )
        when = f"{due:%Y-%m-%d %H:%M} UTC ({hours:+.0f} h)"
        officer = row.get("escalated_to_name") or row.get("assigned_officer_name") or "—"
        table.add_row(
            when,
            str(row["reference"]),
            str(row["kind"]),
            str(row["status"]),
            str(row.get("borrower_first_name", "")),
            str(row.get("borrower_phone_masked", "")),
            str(officer),
            str(row.get("branch_code", "")),
            style=style,
        )
    console.print(table)
