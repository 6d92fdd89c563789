"""Template lint (rule C-7, K-5): every campaign text in every language carries its opt-out line,
no banned phrase, and a WhatsApp template whose parameters exist."""

from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime

import pytest

from i18n import SUPPORTED_LOCALES, day, moment, money, number, render
from i18n.messages import Plural
from i18n.messages.notifier import MESSAGES
from notifier.config import load_banned_phrases, load_templates
from notifier.render import LIMITED_KEY, build_outbound

CAMPAIGN_KEYS = sorted(
    k for k in MESSAGES if k.split(".")[1] in {"reminder", "promise", "incentive", "group"}
)
SAMPLE_ARGS = {
    "amount": money("1500.00", "KES"),
    "account": "AC000123",
    "due_date": day(date(2026, 12, 4)),
    "promised_date": day(date(2026, 12, 4)),
    "cycle": number(2),
    "group": "Umoja",
    "meeting_at": moment(datetime(2026, 12, 3, 7, 0, tzinfo=UTC), "Africa/Nairobi"),
    "place": "Market hall",
}


def _placeholders(key: str) -> set[str]:
    message = MESSAGES[key]
    texts: list[str] = (
        [message.singular, message.plural] if isinstance(message, Plural) else [str(message)]
    )
    return {name for t in texts for _, name, _, _ in string.Formatter().parse(t) if name}


def _args(key: str, count: int) -> dict[str, object]:
    names = _placeholders(key)
    args: dict[str, object] = {n: SAMPLE_ARGS[n] for n in names if n != "count"}
    if "count" in names:
        args["count"] = count
    return args


def banned_hits(text: str, locale: str) -> list[str]:
    phrases = list(
        dict.fromkeys(load_banned_phrases().get(locale, []) + load_banned_phrases()["en"])
    )
    lowered = text.lower()
    return [p for p in phrases if re.search(rf"(?<!\w){re.escape(p.lower())}(?!\w)", lowered)]


def test_the_banned_phrase_check_catches_a_threat() -> None:
    assert banned_hits("Pay now or we take legal action and tell your neighbours.", "en") == [
        "legal action",
        "your neighbours",
    ]
    assert banned_hits("Lipa sasa la sivyo polisi watakuja.", "sw") == ["polisi", "la sivyo"]


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("key", [*CAMPAIGN_KEYS, LIMITED_KEY])
def test_campaign_text_has_opt_out_and_no_banned_words(key: str, locale: str) -> None:
    for count in (1, 3, 6):
        outbound = build_outbound(
            channel="telegram",
            recipient="1",
            purpose="reminder",
            message_key=key,
            locale=locale,
            args=_args(key, count),
        )
        body, _, opt_out = outbound.text.rpartition("\n\n")
        assert opt_out == render("common.opt_out_line", locale)
        assert "STOP" in opt_out  # the keyword is the same in every language
        assert body and "{" not in body
        assert banned_hits(outbound.text, locale) == []


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_limited_content_reveals_no_amount_or_account(locale: str) -> None:
    outbound = build_outbound(
        channel="whatsapp",
        recipient="254700000001",
        purpose="reminder",
        message_key="notify.reminder.overdue",
        locale=locale,
        args=_args("notify.reminder.overdue", 1),
        limited=True,
    )
    assert "AC000123" not in outbound.text
    assert not re.search(r"\d", outbound.text)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("key", [*CAMPAIGN_KEYS, LIMITED_KEY])
def test_every_campaign_message_has_an_approved_whatsapp_template(key: str, locale: str) -> None:
    ref = load_templates().find(key, locale)
    assert ref is not None
    assert ref.language == locale
    assert set(ref.parameters) <= _placeholders(key)
    outbound = build_outbound(
        channel="whatsapp",
        recipient="254700000001",
        purpose="reminder",
        message_key=key,
        locale=locale,
        args=_args(key, 3),
        use_template=True,
        templates=load_templates(),
    )
    assert outbound.template is not None
    assert len(outbound.template.parameters) == len(ref.parameters)
