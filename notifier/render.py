"""Turn an outbox row into the :class:`OutboundMessage` a gateway sends.

Campaign messages (reminders, incentives) always name the way to complain (rule C-9) and end with
the opt-out line of their language (rule C-4); to a channel not verified as the borrower's they
shrink to the limited text (C-6); on WhatsApp outside the customer-service window they go as the
approved template of their locale (C-11), or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from bot.channels.base import Button, OutboundMessage, Template
from i18n import format_arg, normalize_locale, render, template_strings
from notifier.config import TemplateConfig
from notifier.rules import CAMPAIGN_PURPOSES

OPT_OUT_KEY = "common.opt_out_line"
COMPLAINT_KEY = "common.complaint_line"
LIMITED_KEY = "notify.reminder.limited"


def campaign_text(message_key: str, locale: str, args: Mapping[str, Any]) -> str:
    """A campaign message with its complaint line and, last, its opt-out line, in ``locale``."""
    body = render(message_key, locale, **args)
    return f"{body}\n\n{render(COMPLAINT_KEY, locale)}\n\n{render(OPT_OUT_KEY, locale)}"


@lru_cache(maxsize=1024)
def template_version(message_key: str, locale: str, *, limited: bool, campaign: bool) -> str:
    """The version of the text a message is rendered from, for the ledger (rule C-10): a digest
    of its catalog entries in ``locale`` (source and translation), with the complaint and
    opt-out lines of a campaign message; the limited text's when ``limited``. A reviewed change
    of any of their words gives a new version."""
    key = LIMITED_KEY if limited else message_key
    keys = (key, COMPLAINT_KEY, OPT_OUT_KEY) if campaign else (key,)
    language = normalize_locale(locale)
    digest = hashlib.sha256()
    for part in keys:
        for text in template_strings(part, language):
            digest.update(text.encode())
            digest.update(b"\0")
    return f"{key}/{language}@{digest.hexdigest()[:12]}"


def whatsapp_template_version(template: Template, templates: TemplateConfig | None) -> str:
    """The version of an approved WhatsApp template, as sent (name, language, config version)."""
    version = templates.version if templates is not None else 0
    return f"wa:{template.name}/{template.language}@v{version}"


def format_parameter(value: Any, locale: str) -> str:
    """One tagged argument as text, for a template's body parameter."""
    return str(format_arg(value, locale))


class TemplateMissing(LookupError):
    """No approved WhatsApp template for this message and locale."""


def build_outbound(
    *,
    channel: str,
    recipient: str,
    purpose: str,
    message_key: str,
    locale: str,
    args: Mapping[str, Any],
    buttons: list[dict[str, Any]] | None = None,
    limited: bool = False,
    use_template: bool = False,
    templates: TemplateConfig | None = None,
) -> OutboundMessage:
    """Render one message for its channel.

    Raises:
        TemplateMissing: WhatsApp outside the window and no approved template for key and locale.
    """
    language = normalize_locale(locale)
    key, values = (LIMITED_KEY, {}) if limited else (message_key, dict(args))
    campaign = purpose in CAMPAIGN_PURPOSES
    text = campaign_text(key, language, values) if campaign else render(key, language, **values)
    rendered_buttons = tuple(
        Button(title=render(b["key"], language), payload=str(b["payload"])) for b in buttons or ()
    )
    template: Template | None = None
    if channel == "whatsapp" and use_template:
        ref = templates.find(key, language) if templates is not None else None
        if ref is None:
            raise TemplateMissing(f"{key}/{language}")
        template = Template(
            name=ref.name,
            language=ref.language,
            parameters=tuple(format_parameter(values[name], language) for name in ref.parameters),
        )
        rendered_buttons = ()
    return OutboundMessage(
        channel=channel,
        recipient=recipient,
        text=text,
        buttons=rendered_buttons,
        template=template,
    )
