"""Rasa's REST channel without the borrower's words in Rasa's log.

Rasa 3.6's ``RestInput`` logs the user's text at error level when a turn is cancelled (the
gateway gave up waiting and closed the connection) or fails: a typed ID number or date of birth
would land in the log. This channel is the same REST channel (same name, same URL,
``POST /webhooks/rest/webhook``, same body and answer) and logs only what happened and the
text's length. Configured in ``credentials.yml``.
"""

from __future__ import annotations

import logging
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)


class QuietRestInput(RestInput):
    """``RestInput`` whose failures are logged without the message text (no streaming: the
    gateways never ask for it)."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            collector = CollectingOutputChannel()
            message = UserMessage(
                text,
                collector,
                sender_id,
                input_channel=self._extract_input_channel(request),
                metadata=self.get_metadata(request),
            )
            try:
                await on_new_message(message)
            except CancelledError:
                logger.error("turn cancelled: the caller left (%d characters)", len(text or ""))
            except Exception as exc:  # noqa: BLE001 - as Rasa's: answer what was collected
                logger.error(
                    "turn failed: %s (%d characters)", type(exc).__name__, len(text or "")
                )
            return response.json(collector.messages)

        return webhook
