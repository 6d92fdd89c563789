"""``kopa chat``: talk to the running stack as a borrower, from the terminal or a script."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import httpx
import typer

from kopa.i18n import SUPPORTED_LOCALES

DEFAULT_RASA_URL = "http://127.0.0.1:5005"
DEFAULT_API_URL = "http://127.0.0.1:8000"


def _rasa_is_up(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url.rstrip("/") + "/webhooks/rest/", timeout=2.0).status_code == 200
    return False


@contextlib.contextmanager
def _stack(start: bool, rasa_url: str) -> Iterator[tuple[str, str]]:
    """The Rasa and loan API URLs of a running stack (started here with ``start``)."""
    if not start:
        yield rasa_url, os.environ.get("KOPA_API_URL", DEFAULT_API_URL)
        return
    from api.core.config import get_settings
    from api.core.migrate import upgrade
    from kopa.stack import running_stack

    database_url = get_settings().database_url
    upgrade(database_url)
    typer.echo("starting the loan API, the action server and Rasa (Rasa takes ~30 s)...", err=True)
    with running_stack(database_url) as stack:
        assert stack.rasa_url is not None and stack.api_url is not None
        yield stack.rasa_url, stack.api_url


def chat(
    phone: str = typer.Option(..., help="the borrower's phone, taken as proven by the channel"),
    lang: str | None = typer.Option(None, help="the chat's language hint: en, fr, es or sw"),
    start: bool = typer.Option(False, "--start", help="start the API, actions and Rasa first"),
    rasa_url: str = typer.Option(
        os.environ.get("KOPA_RASA_URL", DEFAULT_RASA_URL), help="a running Rasa server"
    ),
) -> None:
    """Chat with Kopa as the borrower with this phone; one line per message (stdin works)."""
    from bot.channels.terminal import TerminalChat, TerminalGateway
    from bot.conversation import ChatRegistry, ConversationService
    from bot.rasa_client import RasaClient

    if not phone.startswith("+") or len(phone) < 8:
        raise typer.BadParameter("give the phone in international form, e.g. +254700000001")
    if lang is not None and lang not in SUPPORTED_LOCALES:
        raise typer.BadParameter(f"choose one of {', '.join(SUPPORTED_LOCALES)}")
    if not start and not _rasa_is_up(rasa_url):
        typer.echo(
            f"Rasa is not answering at {rasa_url}. Start everything with `kopa chat --start` "
            "(loan API on KOPA_DATABASE_URL, action server, Rasa), or point --rasa-url / "
            "KOPA_RASA_URL at a running Rasa whose action server reaches the loan API.",
            err=True,
        )
        raise typer.Exit(code=2)

    async def converse(url: str, api_url: str) -> None:
        # The terminal registers its chat with the loan API as the gateway does.
        token = os.environ.get("KOPA_SERVICE_TOKEN", "dev-service-token")
        service = ConversationService(RasaClient(url), ChatRegistry(api_url, token))
        try:
            await TerminalChat(service, TerminalGateway(), phone=phone, locale=lang).run()
        finally:
            await service.aclose()

    with _stack(start, rasa_url) as (url, api_url):
        if start:
            typer.echo("ready: type a message (Ctrl-D or /quit to end)", err=True)
        asyncio.run(converse(url, api_url))
