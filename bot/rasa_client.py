"""Async client of Rasa's REST channel (``POST /webhooks/rest/webhook``).

Rasa's REST channel logs and swallows exceptions raised while handling a message (an action
server that is down, an action that failed) and still answers 200 with whatever it collected, so
an empty answer to a user message is reported as :class:`RasaUnavailable` too: in Kopa every user
message gets at least one reply.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import httpx

from bot.http import POOL_LIMITS

logger = logging.getLogger(__name__)

# How long a turn Rasa has taken is waited for (see :func:`turn_timeout` for why it is long).
TURN_SECONDS = 120.0


def turn_timeout(reply_deadline_seconds: float) -> httpx.Timeout:
    """How long one turn may take at Rasa: the gateway's reply deadline. A turn cut off sooner
    is cancelled at Rasa (the connection drops) before or after its actions ran: the message is
    missing from the tracker, or its effects are there without the reply, and the borrower hears
    "try again" for a turn that was under way."""
    return httpx.Timeout(reply_deadline_seconds, connect=2.0)


DEFAULT_TIMEOUT = turn_timeout(TURN_SECONDS)


class RasaUnavailable(Exception):
    """Rasa did not answer usefully in time (down, slow, error status or no reply at all)."""


class RasaUnreachable(RasaUnavailable):
    """The connection was refused or dropped before an answer: the server is down or died
    mid-turn (not merely slow), so another replica may take the turn."""


# Errors that mean no server is there (any more), as opposed to a slow one (a timeout).
_UNREACHABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class RasaSender(Protocol):
    """What the gateway needs of Rasa: one server (:class:`RasaClient`) or several replicas
    (:class:`bot.rasa_pool.RasaPool`)."""

    async def send(
        self, sender: str, message: str, metadata: dict[str, Any]
    ) -> list[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


class RasaClient:
    """Send one user message to Rasa and return the bot's messages (the REST answer)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            limits=POOL_LIMITS,
        )

    async def send(
        self, sender: str, message: str, metadata: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Post ``message`` for the conversation ``sender``.

        Args:
            sender: the namespaced conversation id (``tg:…``, ``wa:…``, ``cli:…``).
            message: the user's text or a button payload.
            metadata: channel, locale hint and proven phone, stored on the user event.

        Returns:
            The bot messages Rasa answered, each a dict with ``custom`` and/or ``text``.

        Raises:
            RasaUnreachable: connection refused or dropped (the server is down).
            RasaUnavailable: timeout, non-200 answer or no reply.
        """
        body = {"sender": sender, "message": message, "metadata": metadata}
        try:
            response = await self._client.post("/webhooks/rest/webhook", json=body)
        except _UNREACHABLE as exc:
            raise RasaUnreachable(type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise RasaUnavailable(type(exc).__name__) from exc
        if response.status_code != 200:
            raise RasaUnavailable(f"status {response.status_code}")
        try:
            replies = response.json()
        except ValueError as exc:
            raise RasaUnavailable("answer is not JSON") from exc
        if not isinstance(replies, list) or not replies:
            raise RasaUnavailable("no reply")
        return [reply for reply in replies if isinstance(reply, dict)]

    async def healthy(self) -> bool:
        try:
            response = await self._client.get("/webhooks/rest/")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._client.aclose()
