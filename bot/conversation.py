"""The message pipeline between a channel and Rasa: inbound message in, rendered replies out.

Channels (Telegram, WhatsApp, the terminal) hand an :class:`InboundMessage` to
:meth:`ConversationService.handle`. It first registers the chat with the loan API
(:class:`ChatRegistry`: the real chat id and any phone the channel just proved stay there), then
forwards the text to Rasa's REST channel under the chat's pseudonym (``tg:p3f9…``), with metadata
that carries no phone number and no chat id: the channel, a locale hint, ``phone_proven`` and a
``message_id`` derived from the channel's own id of the message (the idempotency key of what the
turn creates). It renders every payload in its locale and never raises: when the loan API, Rasa
or the action server is down or slow, the borrower gets ``common.try_again_shortly`` in their
language within the client's timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from typing import Any

import httpx

from bot.channels.base import InboundMessage, OutboundMessage
from bot.http import POOL_LIMITS
from bot.rasa_client import TURN_SECONDS, RasaSender, RasaUnavailable
from bot.rasa_pool import QUEUE_SECONDS
from bot.render import payload_locale, render_reply
from i18n import normalize_locale, render
from i18n.messages.common import TRY_AGAIN_KEY

logger = logging.getLogger(__name__)

SENDER_PREFIXES = {"telegram": "tg", "whatsapp": "wa", "terminal": "cli"}

_REMEMBERED_LOCALES = 10_000
# Telegram and WhatsApp cap a message at 4096 characters; a longer text was forged or pasted,
# and Rasa's featurizers need no more to classify it.
MAX_TEXT_TO_RASA = 4096


_REMEMBERED_CHATS = 50_000


def sender_id(channel: str, pseudonym: str) -> str:
    """The Rasa conversation id of a chat, e.g. ``tg:p3f9…`` (see docs/contracts.md)."""
    return f"{SENDER_PREFIXES[channel]}:{pseudonym}"


def message_key(conversation: str, channel_message_id: str) -> str:
    """A stable id of one inbound message for Rasa: the conversation and a digest of the
    channel's id (a WhatsApp ``wamid`` encodes the sender's number, so it never goes as is)."""
    digest = hashlib.sha256(channel_message_id.encode()).hexdigest()[:24]
    return f"{conversation}:{digest}"


# A down API is known in 2 s (no connection); a busy one is waited for, as the turn is: giving
# up on a slow answer would turn a burst of replies into "try again" for the borrower.
REGISTRY_TIMEOUT = httpx.Timeout(30.0, connect=2.0)


class RegistryUnavailable(Exception):
    """The loan API did not register the chat (down, slow or refusing)."""


class ChatRegistry:
    """Register chats with the loan API (``PUT /v1/identities/{channel}/{user}/alias``).

    The API keeps the real chat id and the phone the channel proved, and answers the pseudonym
    Rasa may know the chat by. A chat is registered once per process, and again whenever its
    channel proves a phone this process has not registered for it.
    """

    def __init__(
        self,
        api_url: str,
        service_token: str,
        *,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_url.rstrip("/") + "/v1",
            headers={"Authorization": f"Bearer {service_token}"},
            timeout=timeout or REGISTRY_TIMEOUT,
            transport=transport,
            limits=POOL_LIMITS,
        )
        self._known: OrderedDict[tuple[str, str], tuple[str, str | None]] = OrderedDict()

    async def pseudonym(self, channel: str, user: str, phone: str | None) -> str:
        """The chat's pseudonym, registering the chat (and ``phone``) first when needed.

        Raises:
            RegistryUnavailable: the loan API did not answer with a pseudonym.
        """
        key = (channel, user)
        known = self._known.get(key)
        if known is not None and (phone is None or phone == known[1]):
            self._known.move_to_end(key)
            return known[0]
        try:
            response = await self._client.put(
                f"/identities/{channel}/{user}/alias", json={"phone": phone}
            )
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(type(exc).__name__) from exc
        if response.status_code != 200:
            raise RegistryUnavailable(f"status {response.status_code}")
        try:
            pseudonym = str(response.json()["pseudonym"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryUnavailable("unexpected answer") from exc
        registered_phone = phone if phone is not None else (known[1] if known else None)
        self._known[key] = (pseudonym, registered_phone)
        self._known.move_to_end(key)
        while len(self._known) > _REMEMBERED_CHATS:
            self._known.popitem(last=False)
        return pseudonym

    async def aclose(self) -> None:
        await self._client.aclose()


class ConversationService:
    """Forward chat messages to Rasa and render its answers for the channel."""

    def __init__(
        self,
        rasa: RasaSender,
        registry: ChatRegistry,
        *,
        deadline_seconds: float = TURN_SECONDS + QUEUE_SECONDS,
    ) -> None:
        self._rasa = rasa
        self._registry = registry
        self._deadline = deadline_seconds
        # The language a chat last got an answer in, so that "try again shortly" during an
        # outage reaches the borrower in the language they chose, not the device's.
        self._last_locale: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def handle(self, inbound: InboundMessage) -> list[OutboundMessage]:
        """Answer one inbound message with the rendered bot replies (never raises)."""
        chat = (inbound.channel, inbound.sender)
        fallback = self._last_locale.get(chat) or normalize_locale(inbound.locale_hint)
        try:
            replies = await asyncio.wait_for(self._forward(inbound), self._deadline)
        except (RasaUnavailable, RegistryUnavailable, TimeoutError) as exc:
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
        self._remember(chat, fallback)
        if not messages:
            return [self._try_again(inbound, fallback)]
        return messages

    async def _forward(self, inbound: InboundMessage) -> list[dict[str, Any]]:
        pseudonym = await self._registry.pseudonym(
            inbound.channel, inbound.sender, inbound.proven_phone
        )
        conversation = sender_id(inbound.channel, pseudonym)
        metadata: dict[str, Any] = {
            "channel": inbound.channel,
            "locale": normalize_locale(inbound.locale_hint),
            # The number itself stays with the loan API, registered just now.
            "phone_proven": inbound.proven_phone is not None,
            "message_id": message_key(conversation, inbound.message_id),
        }
        text = (inbound.text or "")[:MAX_TEXT_TO_RASA]
        return await self._rasa.send(conversation, text, metadata)

    def _remember(self, chat: tuple[str, str], locale: str) -> None:
        self._last_locale[chat] = locale
        self._last_locale.move_to_end(chat)
        while len(self._last_locale) > _REMEMBERED_LOCALES:
            self._last_locale.popitem(last=False)

    @staticmethod
    def _try_again(inbound: InboundMessage, locale: str) -> OutboundMessage:
        return OutboundMessage(
            channel=inbound.channel, recipient=inbound.chat_id, text=render(TRY_AGAIN_KEY, locale)
        )

    async def aclose(self) -> None:
        await self._rasa.aclose()
        await self._registry.aclose()
