"""``kopa stack up``: the production topology on this machine, without Docker.

The loan API (several uvicorn workers), the action server, N Rasa replicas, M gateway
processes and W notifier workers, each a process of its own with its log in ``var/stack``.
On PostgreSQL and Redis when ``KOPA_DATABASE_URL`` names PostgreSQL and ``KOPA_REDIS_URL`` is
set (Rasa's trackers in ``<db>_rasa``, its locks in Redis); on SQLite with one of each
otherwise. Without provider tokens in the environment the gateways and workers talk to local
fakes of the Telegram Bot API and WhatsApp Cloud API, started here too: ``POST
<fake whatsapp>/_fake/deliver`` with ``{"from": "2547...", "text": "hi"}`` is a borrower
writing, and ``GET <fake whatsapp>/_fake/sent`` shows what the bot sent.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from bot.fakes.runner import ServerThread
    from bot.fakes.whatsapp import FakeWhatsApp

app = typer.Typer(help="Run the whole product on this machine.", no_args_is_help=True)


def _start_fakes() -> tuple[dict[str, str], dict[str, ServerThread], FakeWhatsApp]:
    """Fake Telegram and WhatsApp servers, and the settings that point the gateways at them."""
    from bot.config import BotSettings
    from bot.fakes.runner import ServerThread
    from bot.fakes.telegram import create_app as telegram_app
    from bot.fakes.whatsapp import FakeWhatsApp

    secret = BotSettings().whatsapp.app_secret.get_secret_value()
    whatsapp = FakeWhatsApp(app_secret=secret)
    servers = {
        "fake telegram": ServerThread(telegram_app()).start(),
        "fake whatsapp": ServerThread(whatsapp.app).start(),
    }
    env = {
        "KOPA_TELEGRAM__API_BASE_URL": f"{servers['fake telegram'].url}/bot",
        "KOPA_WHATSAPP__GRAPH_BASE_URL": servers["fake whatsapp"].url,
    }
    return env, servers, whatsapp


@app.command("up")
def up(
    rasa_replicas: int = typer.Option(
        None,
        "--rasa-replicas",
        help="Rasa servers (else KOPA_RASA_REPLICAS, else 1; several need PostgreSQL and Redis)",
    ),
    gateways: int = typer.Option(1, "--gateways", help="gateway processes (kopa serve bot)"),
    api_workers: int = typer.Option(2, "--api-workers", help="uvicorn workers of the loan API"),
    notifier_workers: int = typer.Option(1, "--notifier-workers", help="kopa notify worker"),
    fakes: bool | None = typer.Option(
        None, help="local provider fakes (default: when KOPA_TELEGRAM__TOKEN is not set)"
    ),
    log_dir: str | None = typer.Option(None, help="where each part logs (else var/stack)"),
) -> None:
    """Start every part, print where each runs, and stop them all on Ctrl-C."""
    from api.core.config import get_settings
    from api.core.migrate import upgrade
    from kopa.paths import VAR_DIR
    from kopa.stack import (
        StackError,
        rasa_replicas_from_environment,
        rasa_stores_from_environment,
        running_stack,
        start_gateway,
        start_process,
    )

    database_url = get_settings().database_url
    redis_url = os.environ.get("KOPA_REDIS_URL")
    stores = rasa_stores_from_environment(database_url)
    rasa_replicas = rasa_replicas or rasa_replicas_from_environment()
    if rasa_replicas > 1 and not stores.shared:
        typer.echo(
            "Several Rasa replicas share their conversations through PostgreSQL and Redis: set "
            "KOPA_DATABASE_URL to a PostgreSQL database and KOPA_REDIS_URL, or run one replica.",
            err=True,
        )
        raise typer.Exit(code=2)
    if not stores.shared:
        gateways, notifier_workers, api_workers = 1, min(notifier_workers, 1), 1
    logs = Path(log_dir) if log_dir else VAR_DIR / "stack"
    logs.mkdir(parents=True, exist_ok=True)
    upgrade(database_url)
    console = Console(stderr=True)
    use_fakes = fakes if fakes is not None else not os.environ.get("KOPA_TELEGRAM__TOKEN")
    provider_env, fake_servers, fake_whatsapp = _start_fakes() if use_fakes else ({}, {}, None)
    console.print(f"starting {rasa_replicas} Rasa replica(s) and the rest (Rasa takes a while)")
    try:
        with running_stack(
            database_url,
            log_dir=logs,
            rasa_replicas=rasa_replicas,
            rasa_stores=stores,
            api_workers=api_workers,
        ) as stack:
            assert stack.api_url is not None
            shared = {
                **provider_env,
                "KOPA_DATABASE_URL": database_url,
                "KOPA_API_URL": stack.api_url,
                "KOPA_RASA_URL": ",".join(stack.rasa_urls),
                **({"KOPA_REDIS_URL": redis_url} if redis_url else {}),
            }
            for n in range(gateways):
                stack.services.append(start_gateway(f"gateway-{n}", shared, logs))
            if fake_whatsapp is not None:
                # The fake delivers what `POST /_fake/deliver` sends it to the first gateway.
                fake_whatsapp.webhook_url = f"{stack.service('gateway-0').url}/whatsapp/webhook"
            for n in range(notifier_workers):
                worker = start_process(
                    f"notifier-{n}",
                    [sys.executable, "-m", "kopa.cli", "notify", "worker", "--worker-id",
                     f"stack-{n}"],
                    None,
                    None,
                    shared,
                    logs,
                )  # fmt: skip
                stack.services.append(worker)
            table = Table(title="Kopa is running (Ctrl-C stops everything)")
            for column in ("part", "address", "pid", "log"):
                table.add_column(column)
            for service in stack.services:
                table.add_row(
                    service.name, service.url, str(service.process.pid), str(service.log_path)
                )
            for name, server in fake_servers.items():
                table.add_row(name, server.url, str(os.getpid()), "")
            console.print(table)
            print("ready", flush=True)
            _wait_for_a_signal()
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from exc
    finally:
        for server in fake_servers.values():
            server.stop()


def _wait_for_a_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
