"""Opt-out, opt-in and language: take effect at once and confirm in the chosen language."""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import button, caller, ranked_intents, say, try_again
from actions.empathy import fold
from actions.loan_api import LoanApiClient, LoanApiError
from i18n import SUPPORTED_LOCALES

# Names of the languages as borrowers type them, when NLU did not tag the `language` entity.
LANGUAGE_WORDS = {
    "fr": ("french", "francais", "kifaransa", "frances"),
    "es": ("spanish", "espanol", "kihispania", "espagnol", "castellano"),
    "sw": ("swahili", "kiswahili", "suahili"),
    "en": ("english", "anglais", "ingles", "kiingereza", "kizungu"),
}


def requested_language(tracker: Tracker) -> str | None:
    for entity in (tracker.latest_message or {}).get("entities") or []:
        if entity.get("entity") == "language" and entity.get("value") in SUPPORTED_LOCALES:
            return str(entity["value"])
    text = str((tracker.latest_message or {}).get("text") or "").lower()
    folded = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    for locale, words in LANGUAGE_WORDS.items():
        if any(word in folded for word in words):
            return locale
    return None


# Asking to stop messages, in the four languages (folded), for a message the NLU could not
# place: an opt-out must never be missed, so these are obeyed even then.
OPT_OUT_ALONE = re.compile(
    r"^\W*(stop|unsubscribe|stop all|arret|arrete|arretez|basta|alto|acha|simama)\W*$"
)
OPT_OUT_PHRASES = (
    "stop messaging", "stop sending", "stop texting", "stop the messages", "stop these messages",
    "no more messages", "don't message me", "dont message me", "unsubscribe",
    "ne m'envoyez plus", "arretez de m'envoyer", "arretez les messages", "plus de messages",
    "me desabonner", "desabonne",
    "dejen de enviarme", "no me manden", "ya no me escriban", "no mas mensajes", "darme de baja",
    "acha kunitumia", "acheni kunitumia", "wacha kunitumia", "wacheni kunitumia",
    "usinitumie", "msinitumie", "sitaki ujumbe", "sitaki meseji",
)  # fmt: skip


def sounds_like_opt_out(text: str) -> bool:
    folded = fold(text)
    return bool(OPT_OUT_ALONE.match(folded)) or any(p in folded for p in OPT_OUT_PHRASES)


# An opt-in whose ranking still gives opt-out this much is asked about, not obeyed: writing
# to someone who asked to stop is the costlier mistake. In 5-fold cross-validation of the
# training data (2026-12-07) the bar caught all 12 opt-outs read as opt-in ("turn off
# notifications", "fini les rappels", "ondoeni ukumbusho wote") and asked 18 of 179 real
# opt-ins to confirm.
OPT_OUT_DOUBT = 0.1


def opt_out_likely(tracker: Tracker) -> bool:
    return any(
        name == "opt_out" and confidence >= OPT_OUT_DOUBT
        for name, confidence in ranked_intents(tracker)
    )


class ConsentAction(Action, ABC):
    """Record the chat's consent, then confirm; the API applies it to the borrower once bound."""

    opted_in = False
    confirmation = ""

    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        opted_in = self.opted_in
        if opted_in and sounds_like_opt_out(str((tracker.latest_message or {}).get("text") or "")):
            # "acheni kunitumia hizo reminders" read as opt-in: asking to stop always wins.
            return await ActionOptOut().run(dispatcher, tracker, domain)
        if opted_in and opt_out_likely(tracker):
            buttons = [
                button("conv.intent.opt_out", "/opt_out"),
                button("conv.intent.opt_in", "/opt_in"),
            ]
            say(dispatcher, tracker, "conv.opt_in_or_out", buttons=buttons)
            return []
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                await api.set_consent(who.channel, who.user, opted_in=opted_in)
        except LoanApiError:
            return try_again(dispatcher, tracker)
        say(dispatcher, tracker, self.confirmation)
        return []


class ActionOptOut(ConsentAction):
    opted_in = False
    confirmation = "conv.opted_out"

    def name(self) -> str:
        return "action_opt_out"


class ActionOptIn(ConsentAction):
    opted_in = True
    confirmation = "conv.opted_in"

    def name(self) -> str:
        return "action_opt_in"


class ActionChangeLanguage(Action):
    def name(self) -> str:
        return "action_change_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        locale = requested_language(tracker)
        if locale is None:
            buttons = [
                button(f"conv.lang.{code}", f'/change_language{{"language": "{code}"}}')
                for code in SUPPORTED_LOCALES
            ]
            say(dispatcher, tracker, "conv.ask_language", buttons=buttons)
            return []
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                await api.set_language(who.channel, who.user, locale)
        except LoanApiError:
            return try_again(dispatcher, tracker)
        say(dispatcher, tracker, "conv.language_changed", locale=locale)
        return [SlotSet("language", locale)]
