"""Fixed replies (goodbye, you're welcome, ok, "I am a bot", loan terms) in the conversation's
language.

They were domain responses with ``locale: "{language}"``, but that slot is empty until the
borrower chooses a language or is verified, so a first message such as "bjr, est-ce que je peux
avoir mon échéancier" was answered in the channel's default language. ``say`` follows
``actions.common.language``: the chosen language, else the one the borrower writes in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import say


class Reply(Action, ABC):
    """Says its message key; the action is named after it (``conv.ok`` -> ``action_reply_ok``)."""

    @property
    @abstractmethod
    def key(self) -> str: ...

    def name(self) -> str:
        return "action_reply_" + self.key.removeprefix("conv.")

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        say(dispatcher, tracker, self.key)
        return []


class ReplyGoodbye(Reply):
    key = "conv.goodbye"


class ReplyYouAreWelcome(Reply):
    key = "conv.you_are_welcome"


class ReplyOk(Reply):
    key = "conv.ok"


class ReplyBotChallenge(Reply):
    key = "conv.bot_challenge"


class ReplyLoanTerms(Reply):
    key = "conv.loan_terms"
