"""Session start, greeting, identity verification and fallback."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    EventType,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    TIMEZONE_SLOT,
    button,
    caller,
    phone_proven,
    ranked_intents,
    say,
)
from actions.empathy import sounds_like_distress
from actions.loan_api import LoanApiClient, LoanApiError
from actions.preferences import ActionOptOut, sounds_like_opt_out
from actions.requests import run_request
from actions.verification import (
    PENDING_SLOTS,
    REQUEST_OF_INTENT,
    VERIFICATION_SLOTS,
    start_verification,
    volunteers_identity,
)
from i18n import SUPPORTED_LOCALES

OFFER_PERSON_KEY = "conv.offer_person"
FALLBACK_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
# Intents a "Did you mean" may offer as buttons (the requests a borrower can make).
SUGGESTIBLE = (
    "ask_balance",
    "ask_next_due",
    "ask_schedule",
    "ask_payment_history",
    "how_to_pay",
    "report_payment",
    "promise_to_pay",
    "hardship",
    "request_officer",
    "complaint",
    "opt_out",
    "change_language",
    "ask_loan_terms",
)
# Suggestible requests about the borrower's own account (answered only after the check).
ACCOUNT_REQUEST_OF_INTENT = {
    intent: request
    for intent, request in REQUEST_OF_INTENT.items()
    if request not in ("hardship", "complaint")
}
SUGGESTIONS = 3
# An intent this likely among the guesses is worth offering; hardship even when less likely:
# a person in difficulty must never read "I can't help with that".
SUGGEST_MIN_CONFIDENCE = 0.05
HARDSHIP_MIN_CONFIDENCE = 0.1


class ActionSessionStart(Action):
    """Start a session in the borrower's language: the one chosen before or the verified
    borrower's; otherwise the slot stays empty and each answer follows the language the borrower
    writes in, then the channel's hint (see ``actions.common.language``)."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        previous = tracker.get_slot("language")
        locale = previous if previous in SUPPORTED_LOCALES else None
        timezone = tracker.get_slot(TIMEZONE_SLOT)
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                identity = await api.identity(who.channel, who.user)
            if identity.status == "verified" and identity.locale in SUPPORTED_LOCALES:
                locale = identity.locale
            timezone = identity.timezone or timezone
        except (LoanApiError, ValueError):
            pass  # the hint will do; account questions still go through the API
        return [
            SessionStarted(),
            SlotSet("language", locale),
            SlotSet(TIMEZONE_SLOT, timezone),
            ActionExecuted("action_listen"),
        ]


class ActionGreet(Action):
    def name(self) -> str:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        first_name = None
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                identity = await api.identity(who.channel, who.user)
            if identity.status == "verified":
                first_name = identity.first_name
        except (LoanApiError, ValueError):
            pass  # a greeting without the name is still a greeting
        question = question_in_greeting(tracker)
        if first_name:
            say(dispatcher, tracker, "conv.greet_name", first_name=first_name)
        elif question is None:
            say(dispatcher, tracker, "conv.greet")
        if question is None:
            return []
        # "hola buenas, cuánto debo?": the greeting is answered by answering the question.
        return await run_request(question, dispatcher, tracker)


# Requests a greeting may carry ("hi, how much do I owe?", "bonjour, je veux promettre un
# paiement"), and how likely the NLU must find one, as the runner-up to the greeting, to act on it.
QUESTIONS_IN_GREETING = {
    "ask_balance": "balance",
    "ask_next_due": "next_due",
    "ask_schedule": "schedule",
    "ask_payment_history": "payment_history",
    "how_to_pay": "how_to_pay",
    "report_payment": "report_payment",
    "promise_to_pay": "promise",
    "hardship": "hardship",
}
QUESTION_MIN_CONFIDENCE = 0.15
# A "greeting" of this many words or more says something besides hello ("Bonjour, je veux
# connaître le reste de mon crédit"): a question the NLU ranks second is taken at a lower bar.
# Chosen for the linear intent classifier from 5-fold cross-validation of the training data
# (2026-12-07): the question runner-up of long pure greetings reached 0.015 ("bonjour madame
# comment allez vous": how_to_pay), the one greeting-with-a-question that greet outranked had
# its question at 0.14 ("habari za asubuhi, nalipaje awamu yangu"). DIET's bar, 0.005, would
# have read a question into 2 of those 10 greetings. Short greetings' runners-up stayed under
# 0.07, below QUESTION_MIN_CONFIDENCE.
LONG_GREETING_WORDS = 5
LONG_GREETING_QUESTION_MIN_CONFIDENCE = 0.05


def question_in_greeting(tracker: Tracker) -> str | None:
    """The account question asked in the same breath as a greeting, if the NLU saw one."""
    text = str((tracker.latest_message or {}).get("text") or "")
    long = len(text.split()) >= LONG_GREETING_WORDS
    bar = LONG_GREETING_QUESTION_MIN_CONFIDENCE if long else QUESTION_MIN_CONFIDENCE
    for name, confidence in ranked_intents(tracker)[1:3]:
        if name in QUESTIONS_IN_GREETING and confidence >= bar:
            return QUESTIONS_IN_GREETING[name]
    return None


class ActionHandleInform(Action):
    """A bare answer outside any form: a shared contact starts verification, else help."""

    def name(self) -> str:
        return "action_handle_inform"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        # The Telegram gateway sends "/inform" with the proven phone when the user shares their
        # own contact; a bare answer such as "1500" starts nothing.
        text = str((tracker.latest_message or {}).get("text") or "").strip()
        pending = tracker.get_slot("pending_request")
        waiting = pending is not None or text == "/inform"
        if phone_proven(tracker) and pending == "officer":
            # The contact shared for a callback: ask the officer now, no check needed.
            return [
                SlotSet("pending_request", None),
                *await run_request("officer", dispatcher, tracker),
            ]
        if (phone_proven(tracker) and waiting) or volunteers_identity(tracker):
            return await start_verification(dispatcher, tracker)
        say(dispatcher, tracker, "conv.capabilities")
        return []


def guesses(ranking: list[tuple[str, float]]) -> list[str]:
    """The borrower requests worth offering from an intent ranking, likeliest first (also what
    ``bench/nlu`` counts: a fallback with a guess is no bare fallback)."""
    return [
        name
        for name, confidence in ranking
        if name in SUGGESTIBLE and confidence >= SUGGEST_MIN_CONFIDENCE
    ][:SUGGESTIONS]


def hardship_likely(ranking: list[tuple[str, float]]) -> bool:
    return any(
        name == "hardship" and confidence >= HARDSHIP_MIN_CONFIDENCE
        for name, confidence in ranking[: SUGGESTIONS + 1]
    )


def suggestions(tracker: Tracker) -> list[str]:
    """The borrower requests the NLU hesitated between, likeliest first."""
    return guesses(ranked_intents(tracker))


def sounds_like_hardship(tracker: Tracker) -> bool:
    text = str((tracker.latest_message or {}).get("text") or "")
    return hardship_likely(ranked_intents(tracker)) or sounds_like_distress(text)


class ActionHandleFallback(Action):
    """Not understood: acknowledge distress first; if unsure, ask "Did you mean"; else say what
    the bot can do, and on the second miss in a row offer a person."""

    def name(self) -> str:
        return "action_handle_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = str((tracker.latest_message or {}).get("text") or "")
        if sounds_like_opt_out(text):
            return await ActionOptOut().run(dispatcher, tracker, domain)
        if volunteers_identity(tracker) and not sounds_like_distress(text):
            return await start_verification(dispatcher, tracker)
        if sounds_like_hardship(tracker):
            say(
                dispatcher,
                tracker,
                "conv.hardship.sorry_unsure",
                buttons=[
                    button("conv.intent.hardship", "/hardship"),
                    button("conv.intent.request_officer", "/request_officer"),
                ],
            )
            return []
        intents = [
            (event.get("parse_data") or {}).get("intent", {}).get("name")
            for event in tracker.events
            if event.get("event") == "user"
        ]
        offered = suggestions(tracker)
        if intents and intents[-1] == "nlu_fallback" and offered:
            likeliest = ACCOUNT_REQUEST_OF_INTENT.get(offered[0])
            if likeliest is not None and not await _is_verified(tracker):
                # Whichever account question it was, the check comes first: start it now and
                # answer the likeliest one after it, rather than ask "did you mean" and then
                # ask who the borrower is anyway.
                return await run_request(likeliest, dispatcher, tracker)
            say(
                dispatcher,
                tracker,
                "conv.did_you_mean",
                buttons=[button(f"conv.intent.{name}", f"/{name}") for name in offered],
            )
            return []
        if len(intents) >= 2 and intents[-2] in FALLBACK_INTENTS:
            say(
                dispatcher,
                tracker,
                OFFER_PERSON_KEY,
                buttons=[
                    button("conv.button.yes", "/request_officer"),
                    button("conv.button.no", "/deny"),
                ],
            )
            return []
        say(dispatcher, tracker, "conv.capabilities")
        return []


async def _is_verified(tracker: Tracker) -> bool:
    try:
        async with LoanApiClient() as api:
            who = caller(tracker)
            identity = await api.identity(who.channel, who.user)
    except (LoanApiError, ValueError):
        return True  # unknown: "did you mean" is safe either way
    return identity.status == "verified"


class ActionListLanguages(Action):
    """A message in a language the bot does not speak: the languages it does, in each of them."""

    def name(self) -> str:
        return "action_list_languages"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        for locale in SUPPORTED_LOCALES:
            say(dispatcher, tracker, "conv.languages", locale=locale)
        return []


class ActionHandleAffirm(Action):
    """A "yes" outside any form: to the offer of a person it means "ask my officer"."""

    def name(self) -> str:
        return "action_handle_affirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        for event in reversed(tracker.events):
            if event.get("event") == "bot":
                custom = (event.get("data") or {}).get("custom") or {}
                if custom.get("key") == OFFER_PERSON_KEY:
                    return await run_request("officer", dispatcher, tracker)
                break
        say(dispatcher, tracker, "conv.ok")
        return []


class ActionCancelForm(Action):
    """The borrower said no inside a form: stop it and forget its answers."""

    def name(self) -> str:
        return "action_cancel_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        say(dispatcher, tracker, "conv.cancelled")
        form = tracker.active_loop.get("name") if tracker.active_loop else None
        slots: list[str] = list(domain.get("forms", {}).get(form, {}).get("required_slots", []))
        if form == "verification_form":
            slots += [*VERIFICATION_SLOTS, *PENDING_SLOTS]
        events: list[Any] = [SlotSet(name, None) for name in dict.fromkeys(slots)]
        return [*events, SlotSet("requested_slot", None), ActiveLoop(None)]
