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

    typer.echo(f"fake Telegram Bot API on http://{host}:{port}/bot<token>/<method>")
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

    fake = FakeWhatsApp(webhook_url=webhook_url, app_secret=app_secret, auto_status=auto_status)
    typer.echo(f"fake WhatsApp Cloud API on http://{host}:{port}/<version>/<phone id>/messages")
    uvicorn.run(fake.app, host=host, port=port, log_level="warning", access_log=False)
