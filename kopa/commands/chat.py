"""``kopa chat``: talk to the running stack as a borrower, from the terminal or a script."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator

import httpx
import typer

from i18n import SUPPORTED_LOCALES

DEFAULT_RASA_URL = "http://127.0.0.1:5005"
DEFAULT_API_URL = "http://127.0.0.1:8000"


def _rasa_is_up(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url.rstrip("/") + "/webhooks/rest/", timeout=2.0).status_code == 200
    return False


def _api_is_up(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url.rstrip("/") + "/health", timeout=2.0).status_code == 200
    return False


@contextlib.contextmanager
def _stack(start: bool, rasa_url: str, api_url: str) -> Iterator[tuple[str, str]]:
    """The Rasa and loan API URLs of a running stack (started here with ``start``)."""
    if not start:
        yield rasa_url, api_url
        return
    from api.core.config import get_settings
    from api.core.migrate import upgrade
    from kopa.stack import (
        rasa_replicas_from_environment,
        rasa_stores_from_environment,
        running_stack,
    )

    database_url = get_settings().database_url
    upgrade(database_url)
    replicas = rasa_replicas_from_environment()
    stores = rasa_stores_from_environment(database_url)
    if replicas > 1 and not stores.shared:
        typer.echo(
            "KOPA_RASA_REPLICAS > 1 needs KOPA_DATABASE_URL on PostgreSQL and KOPA_REDIS_URL "
            "(the replicas share conversations there); starting one.",
            err=True,
        )
        replicas = 1
    typer.echo(
        f"starting the loan API, the action server and {replicas} Rasa server(s) "
        "(Rasa takes ~30 s each)...",
        err=True,
    )
    with running_stack(database_url, rasa_replicas=replicas, rasa_stores=stores) as stack:
        assert stack.api_url is not None
        yield ",".join(stack.rasa_urls), stack.api_url


def chat(
    phone: str = typer.Option(..., help="the borrower's phone, taken as proven by the channel"),
    lang: str | None = typer.Option(None, help="the chat's language hint: en, fr, es or sw"),
    start: bool = typer.Option(False, "--start", help="start the API, actions and Rasa first"),
    rasa_url: str = typer.Option(
        os.environ.get("KOPA_RASA_URL", DEFAULT_RASA_URL), help="a running Rasa server"
    ),
    api_url: str = typer.Option(
        os.environ.get("KOPA_API_URL", DEFAULT_API_URL),
        help="the loan API of that stack (the chat is registered there, as the gateway does)",
    ),
) -> None:
    """Chat with Kopa as the borrower with this phone; one line per message (stdin works)."""
    talk(phone=phone, lang=lang, start=start, rasa_url=rasa_url, api_url=api_url)


def announce_console(api_url: str) -> None:
    """Where officers see what the chat opens: the API just started serves their console."""
    typer.echo(f"the officers' web console: {api_url}/console", err=True)


def talk(
    *,
    phone: str,
    lang: str | None,
    start: bool,
    rasa_url: str,
    api_url: str,
    on_ready: Callable[[str], None] = announce_console,
) -> None:
    """:func:`chat`; with ``start``, ``on_ready`` gets the started API's URL before the chat."""
    from bot.channels.terminal import TerminalChat, TerminalGateway
    from bot.conversation import ChatRegistry, ConversationService
    from bot.rasa_pool import RasaPool, rasa_urls

    if not phone.startswith("+") or len(phone) < 8:
        raise typer.BadParameter("give the phone in international form, e.g. +254700000001")
    if lang is not None and lang not in SUPPORTED_LOCALES:
        raise typer.BadParameter(f"choose one of {', '.join(SUPPORTED_LOCALES)}")
    if not start and not any(_rasa_is_up(url) for url in rasa_urls(rasa_url)):
        typer.echo(
            f"Rasa is not answering at {rasa_url}. Start everything with `kopa chat --start` "
            "(loan API on KOPA_DATABASE_URL, action server, Rasa), or point --rasa-url / "
            "KOPA_RASA_URL at a running Rasa whose action server reaches the loan API.",
            err=True,
        )
        raise typer.Exit(code=2)
    if not start and not _api_is_up(api_url):
        typer.echo(
            f"The loan API is not answering at {api_url}. Point --api-url / KOPA_API_URL at the "
            "API of the stack that Rasa's action server uses, or use `kopa chat --start`.",
            err=True,
        )
        raise typer.Exit(code=2)

    async def converse(url: str, api_url: str) -> None:
        # The terminal registers its chat with the loan API as the gateway does.
        token = os.environ.get("KOPA_SERVICE_TOKEN", "dev-service-token")
        service = ConversationService(RasaPool(rasa_urls(url)), ChatRegistry(api_url, token))
        try:
            await TerminalChat(service, TerminalGateway(), phone=phone, locale=lang).run()
        finally:
            await service.aclose()

    with _stack(start, rasa_url, api_url) as (url, api_url):
        if start:
            on_ready(api_url)
            typer.echo("ready: type a message (Ctrl-D or /quit to end)", err=True)
        asyncio.run(converse(url, api_url))
