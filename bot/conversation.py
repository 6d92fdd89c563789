"""The message pipeline between a channel and Rasa: inbound message in, rendered replies out.

Channels (Telegram, WhatsApp, the terminal) hand an :class:`InboundMessage` to
:meth:`ConversationService.handle`; it namespaces the sender by channel, forwards the text and
the contract metadata to Rasa's REST channel, and renders every payload in its locale. It never
raises: when Rasa, the action server or the loan API is down or slow, the borrower gets
``common.try_again_shortly`` in their language within the client's timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from bot.channels.base import InboundMessage, OutboundMessage
from bot.rasa_client import RasaClient, RasaUnavailable
from bot.render import payload_locale, render_reply
from kopa.i18n import normalize_locale, render

logger = logging.getLogger(__name__)

SENDER_PREFIXES = {"telegram": "tg", "whatsapp": "wa", "terminal": "cli"}
TRY_AGAIN_KEY = "common.try_again_shortly"
_REMEMBERED_LOCALES = 10_000


def sender_id(channel: str, user: str) -> str:
    """The Rasa conversation id of a channel user, e.g. ``tg:12345`` (see docs/contracts.md)."""
    return f"{SENDER_PREFIXES[channel]}:{user}"


class ConversationService:
    """Forward chat messages to Rasa and render its answers for the channel."""

    def __init__(self, rasa: RasaClient, *, deadline_seconds: float = 10.0) -> None:
        self._rasa = rasa
        self._deadline = deadline_seconds
        # The language a chat last got an answer in, so that "try again shortly" during an
        # outage reaches the borrower in the language they chose, not the device's.
        self._last_locale: OrderedDict[str, str] = OrderedDict()

    async def handle(self, inbound: InboundMessage) -> list[OutboundMessage]:
        """Answer one inbound message with the rendered bot replies (never raises)."""
        conversation = sender_id(inbound.channel, inbound.sender)
        fallback = self._last_locale.get(conversation) or normalize_locale(inbound.locale_hint)
        metadata: dict[str, Any] = {
            "channel": inbound.channel,
            "locale": normalize_locale(inbound.locale_hint),
            "proven_phone": inbound.proven_phone,
        }
        try:
            replies = await asyncio.wait_for(
                self._rasa.send(conversation, inbound.text or "", metadata), self._deadline
            )
        except (RasaUnavailable, TimeoutError) as exc:
            logger.warning("conversation unavailable for a %s chat: %s", inbound.channel, exc)
            return [self._try_again(inbound, fallback)]
        except Exception:
            logger.exception("unexpected error forwarding a %s message", inbound.channel)
            return [self._try_again(inbound, fallback)]
        messages: list[OutboundMessage] = []
        for reply in replies:
            message = render_reply(
                reply, channel=inbound.channel, recipient=inbound.chat_id, fallback_locale=fallback
            )
            if message is not None:
                messages.append(message)
            custom = reply.get("custom")
            if isinstance(custom, dict):
                fallback = payload_locale(custom, fallback)
        self._remember(conversation, fallback)
        if not messages:
            return [self._try_again(inbound, fallback)]
        return messages

    def _remember(self, conversation: str, locale: str) -> None:
        self._last_locale[conversation] = locale
        self._last_locale.move_to_end(conversation)
        while len(self._last_locale) > _REMEMBERED_LOCALES:
            self._last_locale.popitem(last=False)

    @staticmethod
    def _try_again(inbound: InboundMessage, locale: str) -> OutboundMessage:
        return OutboundMessage(
            channel=inbound.channel, recipient=inbound.chat_id, text=render(TRY_AGAIN_KEY, locale)
        )

    async def aclose(self) -> None:
        await self._rasa.aclose()
