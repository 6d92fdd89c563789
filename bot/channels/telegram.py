"""Telegram through python-telegram-bot 22, behind our own web app (webhook) or polling.

Inbound: updates arrive at ``POST /telegram/webhook`` (``bot.app`` checks the secret header, reads
the JSON and stores it in the durable inbox before answering 200) or through PTB's Updater in
polling mode (:meth:`TelegramGateway._on_update` stores them the same way). Either way they are
answered from the inbox: :meth:`TelegramGateway.interpret` turns a stored update into an
:class:`InboundMessage` for the conversation, or into the gateway's own short answer.

Account questions are answered in private chats only. In a group or supergroup the bot answers at
most one generic line ("message me privately") to the message, forwards nothing (so nothing is
disclosed and no verification starts) and never sends a reply meant for one person to the group;
in a channel it says nothing at all, since a line there reaches every subscriber.

A phone number counts as proven only when the user shared their *own* contact with the
``request_contact`` button: ``contact.user_id == from.id`` in a private chat. Anyone's contact
card can be forwarded, so a contact with another (or no) user id is refused, and digits typed as
text stay text.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import phonenumbers
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.constants import ChatType, MessageLimit
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.channels.base import (
    InboundMessage,
    OutboundMessage,
    SendOutcome,
    SendResult,
)
from bot.channels.ptb_aiohttp import NOT_SENT_ERRORS, AiohttpRequest
from bot.config import TelegramSettings
from i18n import render

logger = logging.getLogger(__name__)

# Seconds between getMe attempts when the Bot API cannot be reached or answers too late: about
# 15 s for a network, a proxy or a local Bot API server that is still coming up (or a host so
# busy that the first answer missed its read timeout) before a process gives up on its start.
START_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)

CHANNEL = "telegram"
MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # 4096
# Sent to Rasa when a user shares their own contact: an answer to the "share your phone"
# question, with the number itself in metadata["proven_phone"] (docs/contracts.md).
CONTACT_SHARED_TEXT = "/inform"
CONTACT_REFUSED_KEY = "channels.contact_not_yours"
UNSUPPORTED_KEY = "channels.unsupported_message"
PRIVATE_ONLY_KEY = "channels.private_only"

# Stores one update (its JSON) in the durable inbox; used in polling mode.
UpdateSink = Callable[[dict[str, Any]], Awaitable[None]]
# What a stored update asks for: forward a message, send the gateway's own line, or nothing.
Interpretation = InboundMessage | OutboundMessage | None


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, preferring paragraph, line and
    word boundaries so that no sentence is cut mid-word when it can be helped."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            if cut > limit // 2:
                break
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def normalize_phone(raw: str) -> str | None:
    """E.164 from a Telegram contact number, which may lack the leading ``+``."""
    candidate = raw.strip()
    if not candidate.startswith("+"):
        candidate = "+" + candidate.lstrip("0")
    try:
        parsed = phonenumbers.parse(candidate, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# Forbidden descriptions that mean this recipient will not receive from the bot: an opt-out
# (RapidPro's courier treats the same two as "contact stopped"). Any other 403 (a group that
# removed the bot, a user who never started it) is not the borrower's choice to stop.
BLOCKED_DESCRIPTIONS = ("bot was blocked by the user", "user is deactivated")


def classify(error: TelegramError) -> SendResult:
    """Map a PTB error to what the caller may do next (see ``SendOutcome``).

    Only a blocked or deactivated user is ``blocked`` (an opt-out). A wrong or revoked token
    (401/404), a bad request (400), a migrated chat and any error PTB does not name are
    ``channel_error``: they say something is wrong with the bot or what it sends, which a retry
    or an opt-out cannot mend. The error text kept is the error's type and Telegram's
    description, never the token (``InvalidToken`` raised at start-up quotes it).
    """
    name = type(error).__name__
    if isinstance(error, RetryAfter):
        with warnings.catch_warnings():
            # PTB 22 warns that the int form is deprecated; _seconds takes either form.
            warnings.simplefilter("ignore")
            wait = _seconds(error.retry_after)
        return SendResult(SendOutcome.rate_limited, retry_after=wait, error=name)
    if isinstance(error, Forbidden):
        description = error.message.lower()
        if any(reason in description for reason in BLOCKED_DESCRIPTIONS):
            return SendResult(SendOutcome.blocked, error=f"{name}: {error.message}")
        return SendResult(SendOutcome.channel_error, error=f"{name}: {error.message}")
    if isinstance(error, InvalidToken):
        return SendResult(SendOutcome.channel_error, error=name)
    if isinstance(error, BadRequest | ChatMigrated):
        return SendResult(SendOutcome.channel_error, error=f"{name}: {error.message}")
    if isinstance(error, TimedOut):
        cause = error.__cause__
        if cause is None or isinstance(cause, NOT_SENT_ERRORS):
            # A connect or pool timeout (or PTB's own bare TimedOut): the request never left.
            return SendResult(SendOutcome.retryable, error=name)
        return SendResult(SendOutcome.unknown, error=name)
    if isinstance(error, NetworkError):
        cause = error.__cause__
        if cause is None or isinstance(cause, NOT_SENT_ERRORS):
            # 5xx answers carry no cause; a refused connection never reached Telegram.
            return SendResult(SendOutcome.retryable, error=f"{name}: {error.message}")
        return SendResult(SendOutcome.unknown, error=name)
    return SendResult(SendOutcome.channel_error, error=name)


def _chat_id(recipient: str) -> int | str:
    return int(recipient) if recipient.lstrip("-").isdigit() else recipient


class TelegramGateway:
    """The Telegram adapter: PTB Application for receiving, its Bot for sending."""

    name = CHANNEL

    def __init__(self, settings: TelegramSettings, *, polling: bool = False) -> None:
        self._settings = settings
        self._polling = polling
        request = AiohttpRequest(
            connection_pool_size=max(8, settings.concurrent_updates),
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            pool_timeout=settings.connect_timeout,
        )
        builder = (
            Application.builder()
            .token(settings.token.get_secret_value())
            .base_url(settings.api_base_url)
            .request(request)
            .concurrent_updates(settings.concurrent_updates)
        )
        if not polling:
            # Our FastAPI app receives the webhook; PTB must not run a server of its own.
            builder = builder.updater(None)
        else:
            builder = builder.get_updates_request(
                AiohttpRequest(connect_timeout=settings.connect_timeout, read_timeout=30.0)
            )
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self._sink: UpdateSink | None = None
        self._started = False

    def bind(self, sink: UpdateSink) -> None:
        """Where polled updates are stored (the webhook route stores its own)."""
        self._sink = sink

    async def start(self, *, receive: bool = True) -> None:
        """Initialise the bot (getMe); with ``receive``, process updates (and poll if asked)."""
        await self._initialize()
        if not receive:
            return
        await self.application.start()
        self._started = True
        if self._polling and self.application.updater is not None:
            await self.application.updater.start_polling(
                poll_interval=0.0, timeout=timedelta(seconds=10), allowed_updates=Update.ALL_TYPES
            )
        elif self._settings.webhook_url:
            await self.application.bot.set_webhook(
                url=self._settings.webhook_url,
                secret_token=self._settings.webhook_secret.get_secret_value(),
                allowed_updates=Update.ALL_TYPES,
            )

    async def _initialize(self) -> None:
        """``getMe``, tried again after a network error or a timeout (``START_RETRY_DELAYS``);
        a refused token (``InvalidToken``) is not a network error and ends the start at once."""
        for delay in (*START_RETRY_DELAYS, None):
            try:
                await self.application.initialize()
                return
            except NetworkError as exc:
                if delay is None:
                    raise
                logger.warning(
                    "telegram getMe failed (%s); trying again in %.1f s", type(exc).__name__, delay
                )
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._started:
            if self.application.updater is not None and self.application.updater.running:
                await self.application.updater.stop()
            await self.application.stop()
            self._started = False
        await self.application.shutdown()

    def parse(self, data: dict[str, Any]) -> Update:
        """The Update in a webhook body; raises ValueError when it is not one."""
        update = Update.de_json(data, self.application.bot)
        if update is None:
            raise ValueError("not an update")
        return update

    @staticmethod
    def chat_key(update: Update) -> str | None:
        """The conversation an update belongs to (``tg:<chat id>``); None: nothing to answer."""
        if update.callback_query is not None:
            query = update.callback_query
            chat = query.message.chat.id if query.message is not None else query.from_user.id
            return f"tg:{chat}"
        message = update.message or update.channel_post
        if message is None:
            return None  # edits, member updates, polls: nothing a borrower asked
        return f"tg:{message.chat.id}"

    # -- inbound ---------------------------------------------------------------------------
    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # Polling mode only: store, and let the inbox answer it like a webhook update.
        if self._sink is not None:
            await self._sink(update.to_dict())

    async def interpret(self, data: dict[str, Any]) -> Interpretation:
        """What to do with a stored update (answers a button press's spinner on the way)."""
        update = self.parse(data)
        if update.callback_query is not None:
            return await self._on_callback(update)
        message = update.message
        if message is None or message.from_user is None:
            return None  # channel posts, edits, member updates: nothing a borrower asked
        sender = message.from_user
        locale = sender.language_code
        chat_id = str(message.chat.id)
        if message.chat.type != ChatType.PRIVATE:
            return self._private_only(message.chat.type, chat_id, locale)
        base: dict[str, Any] = {
            "channel": CHANNEL,
            "sender": str(sender.id),
            "chat_id": chat_id,
            "message_id": str(message.message_id),
            "locale_hint": locale,
        }
        if message.contact is not None:
            contact = message.contact
            own = contact.user_id is not None and contact.user_id == sender.id
            phone = normalize_phone(contact.phone_number) if own else None
            if phone is None:
                logger.info("refused a shared contact that is not the sender's own")
                return self._line(chat_id, CONTACT_REFUSED_KEY, locale)
            return InboundMessage(text=CONTACT_SHARED_TEXT, proven_phone=phone, **base)
        if message.text is None:
            return self._line(chat_id, UNSUPPORTED_KEY, locale)
        return InboundMessage(text=message.text, **base)

    @staticmethod
    def _line(chat_id: str, key: str, locale: str | None) -> OutboundMessage:
        return OutboundMessage(channel=CHANNEL, recipient=chat_id, text=render(key, locale))

    def _private_only(self, chat_type: str, chat_id: str, locale: str | None) -> Interpretation:
        if chat_type == ChatType.CHANNEL:
            return None
        logger.info("answered a %s chat with the private-chat notice only", chat_type)
        return self._line(chat_id, PRIVATE_ONLY_KEY, locale)

    async def _on_callback(self, update: Update) -> Interpretation:
        query = update.callback_query
        assert query is not None
        try:
            # Stops the client's loading spinner; must come within seconds of the press.
            await query.answer()
        except TelegramError as exc:
            logger.warning("answerCallbackQuery failed: %s", type(exc).__name__)
        locale = query.from_user.language_code
        if query.message is not None and query.message.chat.type != ChatType.PRIVATE:
            return self._private_only(query.message.chat.type, str(query.message.chat.id), locale)
        chat = query.message.chat.id if query.message is not None else query.from_user.id
        return InboundMessage(
            channel=CHANNEL,
            sender=str(query.from_user.id),
            chat_id=str(chat),
            text=query.data or "",
            message_id=f"cb:{query.id}",
            locale_hint=locale,
            callback_id=query.id,
        )

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # The exception type only: messages and tracebacks may quote what the borrower wrote.
        logger.error("telegram update handling failed: %s", type(context.error).__name__)

    # -- outbound --------------------------------------------------------------------------
    @staticmethod
    def _markup(message: OutboundMessage) -> Any:
        if message.request_contact:
            title = message.contact_button_title or "📱"
            return ReplyKeyboardMarkup(
                [[KeyboardButton(title, request_contact=True)]],
                one_time_keyboard=True,
                resize_keyboard=True,
            )
        if message.buttons:
            return InlineKeyboardMarkup(
                [[InlineKeyboardButton(b.title, callback_data=b.payload)] for b in message.buttons]
            )
        return None

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send text (split under 4096 characters) with its keyboard on the last piece.

        The pieces before ``message.first_part`` went in an earlier attempt and are skipped; a
        failure answers how many pieces have gone (``parts_sent``), so a retry sends the rest.
        """
        pieces = split_text(message.text, MAX_TEXT)
        markup = self._markup(message)
        chat_id = _chat_id(message.recipient)
        last_id: str | None = None
        for index in range(min(message.first_part, len(pieces) - 1), len(pieces)):
            last = index == len(pieces) - 1
            reply_markup = markup if last else None
            try:
                last_id = await self._send_message(chat_id, pieces[index], reply_markup)
            except TelegramError as exc:
                result = replace(classify(exc), parts_sent=index)
                logger.warning("telegram send %s: %s", result.outcome, type(exc).__name__)
                return result
        return SendResult(SendOutcome.sent, provider_message_id=last_id, parts_sent=len(pieces))

    async def _send_message(
        self,
        chat_id: int | str,
        text: str,
        reply_markup: InlineKeyboardMarkup | ReplyKeyboardMarkup | None,
    ) -> str:
        """``sendMessage`` through the Bot's own request path (its defaults, timeouts and
        ``TelegramError`` types, exactly as ``Bot.send_message``), keeping only the message id.

        ``Bot.send_message`` also builds the whole ``Message`` it gets back (its chat, its sender,
        its entities): a fifth of a notifier worker's event-loop CPU per send, which made its
        sends late for their slots (``bench/notify``). This gateway uses no arbitrary callback data,
        the one thing ``ExtBot.send_message`` adds on top.
        """
        data: dict[str, Any] = {"chat_id": chat_id, "text": text, "reply_markup": reply_markup}
        result = await self.application.bot._post("sendMessage", data)
        return str(result["message_id"])
