"""Turn the payloads Rasa answers (message keys + tagged args) into channel-ready messages.

Every bot message is ``{"custom": {"key", "args", "locale", "buttons", "lines",
"request_contact"}}`` (see ``docs/contracts.md``); ``lines`` are further ``{"key", "args"}``
rendered one per line under the first. The locale is the payload's when it names a supported
language; otherwise (an action that named none) the caller's fallback, the chat's last language
or the channel's hint, is used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot.channels.base import Button, OutboundMessage
from i18n import SUPPORTED_LOCALES, render

logger = logging.getLogger(__name__)

CONTACT_BUTTON_KEY = "conv.share_contact_button"


def payload_locale(payload: Mapping[str, Any], fallback: str) -> str:
    """The language to render ``payload`` in: its own when supported, else ``fallback``."""
    value = payload.get("locale")
    if isinstance(value, str) and value.lower() in SUPPORTED_LOCALES:
        return value.lower()
    return fallback


def render_reply(
    reply: Mapping[str, Any], *, channel: str, recipient: str, fallback_locale: str
) -> OutboundMessage | None:
    """Render one Rasa REST reply, or ``None`` when it carries no message key.

    Plain ``text`` replies are dropped on purpose: words reach borrowers only from the catalogs.
    """
    payload = reply.get("custom")
    if not isinstance(payload, Mapping) or not isinstance(payload.get("key"), str):
        logger.warning("dropped a Rasa reply without a message key")
        return None
    locale = payload_locale(payload, fallback_locale)
    key = payload["key"]
    args = payload.get("args") or {}
    try:
        text = render(key, locale, **args)
        # Lists (schedule, payments, payment channels) travel as one message of several lines
        # so that a chat gets one message, not one per line.
        for line in payload.get("lines") or ():
            text += "\n" + render(line["key"], locale, **(line.get("args") or {}))
        buttons = tuple(
            Button(
                title=render(button["key"], locale, **(button.get("args") or {})),
                payload=str(button["payload"]),
            )
            for button in payload.get("buttons") or ()
        )
    except (KeyError, ValueError, IndexError):
        logger.exception("cannot render message key %s", key)
        return None
    request_contact = bool(payload.get("request_contact"))
    return OutboundMessage(
        channel=channel,
        recipient=recipient,
        text=text,
        buttons=buttons,
        request_contact=request_contact,
        contact_button_title=render(CONTACT_BUTTON_KEY, locale) if request_contact else None,
    )
