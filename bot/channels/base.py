"""The one small interface every channel implements (Telegram, WhatsApp, the terminal).

Inbound: an adapter turns a channel's webhook or update into :class:`InboundMessage`.
Outbound: the gateway (chat replies) and the notifier (campaigns, officer alerts) hand an
:class:`OutboundMessage` of already-rendered text to :meth:`ChannelGateway.send`, which answers a
:class:`SendResult` whose ``outcome`` tells the caller what may happen next.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


class SendOutcome(enum.StrEnum):
    sent = "sent"
    retryable = "retryable"  # connect error, 5xx: try again later with backoff
    rate_limited = "rate_limited"  # 429: nothing to this channel before retry_after
    # Only this recipient is over its limit (WhatsApp pair rate 131056): back off that chat
    # alone for retry_after; every other recipient goes on.
    recipient_rate_limited = "recipient_rate_limited"
    # The recipient blocked the bot or cannot receive (Telegram 403 "bot was blocked by the user"
    # / "user is deactivated", WhatsApp 131026 / 131050): an opt-out from this channel.
    blocked = "blocked"
    # The channel cannot send as configured: a revoked or wrong token, a bad request, a template
    # error, a code we do not know. Nobody is opted out; the channel's campaign stops until an
    # operator resumes it.
    channel_error = "channel_error"
    unknown = "unknown"  # timed out after the request left: never resend automatically
    outside_window = "outside_window"  # WhatsApp free-form outside 24 h: use a template


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Template:
    """A WhatsApp approved template: name, language code and body parameters in order."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class InboundMessage:
    channel: str
    sender: str  # the channel's user id
    chat_id: str
    text: str | None
    message_id: str
    locale_hint: str | None = None
    proven_phone: str | None = None
    # Set when the user pressed an inline button; ``text`` then holds its payload.
    callback_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    channel: str
    recipient: str  # chat id / WhatsApp id
    text: str
    buttons: tuple[Button, ...] = ()
    template: Template | None = None  # WhatsApp: send this instead of free text
    request_contact: bool = False  # Telegram: a keyboard button that shares the user's phone
    contact_button_title: str | None = None
    # A text sent in parts whose first parts went in an earlier attempt: start at this part.
    first_part: int = 0


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_message_id: str | None = None
    retry_after: float | None = None
    error: str | None = None
    # Of a message sent in parts: how many parts went before this outcome (a retry sends the
    # rest only).
    parts_sent: int = 0


class ChannelGateway(Protocol):
    name: str

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one message and classify the outcome; never raises for provider errors."""
        ...
