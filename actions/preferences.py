"""Opt-out, opt-in and language: take effect at once and confirm in the chosen language."""

from __future__ import annotations

import unicodedata
from abc import ABC, abstractmethod

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import button, caller, say, try_again
from actions.loan_api import LoanApiClient, LoanApiError
from kopa.i18n import SUPPORTED_LOCALES

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


class ConsentAction(Action, ABC):
    """Record the chat's consent, then confirm; the API applies it to the borrower once bound."""

    opted_in = False
    confirmation = ""

    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                await api.set_consent(who.channel, who.user, opted_in=self.opted_in)
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
