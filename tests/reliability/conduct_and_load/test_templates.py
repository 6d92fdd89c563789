"""K-5: the campaign templates as the borrower reads them, in every language."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from babel.messages.pofile import read_po

from i18n import LOCALES_DIR, SUPPORTED_LOCALES, day, moment, money, number, render
from i18n.messages import Plural, load_registry
from notifier.config import load_banned_phrases
from notifier.render import LIMITED_KEY, OPT_OUT_KEY, build_outbound

CAMPAIGN_AREAS = {"reminder", "promise", "incentive", "group"}
# How each language names a complaint: the words the bot's NLU takes as the ``complaint`` intent
# (nlu/data/nlu/<lang>.yml), so a borrower who copies them reaches the complaint flow.
COMPLAINT_WORDS = {
    "en": ("complaint", "complain"),
    "fr": ("réclamation", "plainte"),
    "es": ("queja", "reclamo"),
    "sw": ("malalamiko", "kulalamika"),
}
# Incentives that offer something state its conditions and cost (rule C-7): these words, in the
# message's language, must appear.
INCENTIVE_TERMS = {
    "notify.incentive.early_repayment": {
        "en": ("conditions", "fee", "interest"),
        "fr": ("conditions", "frais", "intérêts"),
        "es": ("condiciones", "comisión", "intereses"),
        "sw": ("masharti", "ada", "riba"),
    },
    "notify.incentive.next_cycle": {
        "en": ("approval", "review"),
        "fr": ("accord", "examen"),
        "es": ("aprobación", "revisión"),
        "sw": ("idhini", "ukaguzi"),
    },
}
SAMPLE_ARGS: dict[str, Any] = {
    "amount": money("1500.00", "KES"),
    "account": "AC000123",
    "due_date": day(date(2026, 12, 4)),
    "promised_date": day(date(2026, 12, 4)),
    "cycle": number(2),
    "group": "Umoja",
    "meeting_at": moment(datetime(2026, 12, 3, 7, 0, tzinfo=UTC), "Africa/Nairobi"),
    "place": "Market hall",
}


def _campaign_keys() -> list[str]:
    registry = load_registry()
    return sorted(
        k for k in registry if k.split(".")[0] == "notify" and k.split(".")[1] in CAMPAIGN_AREAS
    )


def _sources(key: str) -> list[str]:
    message = load_registry()[key]
    return [message.singular, message.plural] if isinstance(message, Plural) else [message]


def _has_phrase(text_: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text_.lower()) is not None


def test_K5_every_campaign_template_in_every_language_has_opt_out_complaint_path_and_no_banned_phrase() -> (  # noqa: E501
    None
):
    """K-5 on the real catalogs: every campaign message (reminders, promises, incentives, group
    meetings and the limited text) as the borrower reads it, in en/fr/es/sw: translated in the
    ``.po`` catalog, ending with the opt-out line (its STOP keyword), naming a complaint path in
    the borrower's language, free of every banned phrase of ``config/banned_phrases.yml``
    (threats, legal bluffs, shaming; English phrases checked in every language too), and the
    offers stating their conditions and cost."""
    banned = load_banned_phrases()
    keys = [*_campaign_keys(), LIMITED_KEY]
    problems: list[str] = []
    catalogs = {
        locale: read_po((LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb"))
        for locale in SUPPORTED_LOCALES
    }
    for locale in SUPPORTED_LOCALES:
        opt_out = render(OPT_OUT_KEY, locale)
        if "STOP" not in opt_out:
            problems.append(f"{locale}: opt-out line without the STOP keyword: {opt_out!r}")
        phrases = list(dict.fromkeys([*banned.get(locale, []), *banned["en"]]))
        for key in keys:
            for source in _sources(key)[:1]:  # a plural is filed under its singular
                entry = catalogs[locale].get(source)
                translated = entry is not None and all(
                    s
                    for s in (entry.string if isinstance(entry.string, tuple) else (entry.string,))
                )
                if locale != "en" and (not translated or entry is None or entry.fuzzy):
                    problems.append(f"{locale}/{key}: not translated in the catalog")
            for count in (1, 3):
                args = {**SAMPLE_ARGS, "count": count}
                outbound = build_outbound(
                    channel="telegram",
                    recipient="1",
                    purpose="reminder",
                    message_key=key,
                    locale=locale,
                    args=args,
                )
                said = outbound.text
                if not said.endswith(opt_out):
                    problems.append(f"{locale}/{key}: no opt-out line")
                if not any(_has_phrase(said, w) for w in COMPLAINT_WORDS[locale]):
                    problems.append(f"{locale}/{key}: no complaint path")
                hits = [p for p in phrases if _has_phrase(said, p)]
                if hits:
                    problems.append(f"{locale}/{key}: banned phrases {hits}")
                for term in INCENTIVE_TERMS.get(key, {}).get(locale, ()):
                    if term.lower() not in said.lower():
                        problems.append(f"{locale}/{key}: offer without {term!r}")
    # The lint itself catches what it must (a check that cannot fail proves nothing).
    threat = "Pay now or we take legal action and tell your neighbours. Reply STOP."
    assert [p for p in banned["en"] if _has_phrase(threat, p)] == [
        "legal action",
        "your neighbours",
    ]
    assert not problems, "\n".join(sorted(set(problems)))
