"""Checking who is chatting, in a way people can pass.

The bot offers every knowledge factor the institution allows (date of birth, last 4 ID digits)
and takes whichever the borrower gives, recognised by its form (``actions.parsing.identity``).
A message with no answer of an offered form (thanks, a question, an amount, "yes", a date that
cannot be a birth date) is never sent to the API, so it never costs a try: it is answered as the
digression it is, and what it asked for is kept and done once the check passes. Tries are spent
only on wrong answers of the right form.

The typed answer never stays in the tracker: the slot is filled by this validator's own
extraction (a ``custom`` mapping, so Rasa records no ``SlotSet`` with the raw text) and holds only
the outcome. Rasa 3.6 cannot rewrite the user's message event from an action, so that text stays
in the tracker store until the retention job removes it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.common import (
    TIMEZONE_SLOT,
    button,
    caller,
    language,
    local_timezone,
    phone_proven,
    say,
    today,
    try_again,
)
from actions.loan_api import (
    FactorNotOffered,
    IdentityLocked,
    LoanApiClient,
    LoanApiError,
    VerificationFailed,
)
from actions.parsing import parse_promise
from actions.parsing.identity import DOB, NATIONAL_ID, read_identity_answer
from actions.requests import HANDLERS, run_request, worth_carrying
from i18n import SUPPORTED_LOCALES, moment
from i18n.messages.common import TRY_AGAIN_KEY

VERIFICATION_SLOTS = ("verification_factor", "verification_value")
PENDING_SLOTS = ("pending_request", "pending_text")
# What the extraction puts in the slot for the validator to read the message: never the text.
TO_READ = "to_read"
OUTCOMES = frozenset({"verified", "locked", "unavailable", "left"})
CALL_ME = button("conv.button.call_me", "/request_officer")
# Requests asked while the check is going on: kept, and carried out once it passes.
REQUEST_OF_INTENT = {
    "ask_balance": "balance",
    "ask_next_due": "next_due",
    "ask_schedule": "schedule",
    "ask_payment_history": "payment_history",
    "how_to_pay": "how_to_pay",
    "report_payment": "report_payment",
    "promise_to_pay": "promise",
    "hardship": "hardship",
    "complaint": "complaint",
}
# Requests that open a form: at most one is kept, and it is carried out last.
FORM_REQUESTS = ("promise", "hardship")
# Messages the rules answer while the form waits (the form asks its question again after).
RULE_DIGRESSIONS = frozenset(
    {
        "opt_out",
        "opt_in",
        "change_language",
        "other_language",
        "request_officer",
        "bot_challenge",
        "ask_loan_terms",
        "deny",
    }
)
# Intents whose rule gives way when the message holds an answer of an offered form: "ID no
# 23873307" read as `deny`, "samahani nimekosea, ni 4821" as `bot_challenge`, "mi ine termina en
# 2794" taken by the language gate. The others act on the words: opt-out, language, and an
# officer request the NLU is sure of (``SURE_MIN_CONFIDENCE``).
ANSWER_OVER_INTENT = frozenset({"other_language", "deny", "bot_challenge"})
# Below this the NLU's `deny` or `goodbye` is a guess ("kwani mbona mnauliza hiyo?" came out
# goodbye 0.21): a guess must not stop the check, so the message is asked about instead. So is an
# officer request in a message that names an identity document and holds an answer ("el numero
# de mi credencial es 0871156302794" came out request_officer 0.48): it is the answer.
SURE_MIN_CONFIDENCE = 0.5
# What a digression that is no request gets, before the question is asked again.
SMALL_TALK = {
    "thanks": "conv.verify.welcome",
    "greet": "conv.verify.hello",
}


def offered_factors(tracker: Tracker) -> list[str]:
    value = str(tracker.get_slot("verification_factor") or DOB)
    return [name for name in value.split(",") if name in (DOB, NATIONAL_ID)] or [DOB]


def offers_identity_answer(tracker: Tracker, factors: Collection[str] = (DOB, NATIONAL_ID)) -> bool:
    """The message names an identity document or a birth and holds an answer of that form, of
    one of ``factors`` ("nilizaliwa 15 Machi 1990", "ID inaishia 4821"), asked for or not."""
    found = read_identity_answer(_text(tracker), language(tracker), today(tracker))
    return found.names_identity and bool(found.answers(factors))


def volunteers_identity(tracker: Tracker) -> bool:
    """An answer offered before any check, from a chat whose phone the channel proved: the check
    starts on it and the form reads it, whatever intent the NLU gave the message."""
    return phone_proven(tracker) and offers_identity_answer(tracker)


def say_locked(dispatcher: CollectingDispatcher, tracker: Tracker, exc: IdentityLocked) -> None:
    """Say the chat is locked (until when, or until the officer calls) and offer the callback."""
    if exc.held:
        say(dispatcher, tracker, "conv.verify.held")
    elif exc.locked_until is not None:
        say(
            dispatcher,
            tracker,
            "conv.verify.locked",
            until=moment(exc.locked_until, local_timezone(tracker)),
            buttons=[CALL_ME],
        )
    else:
        say(dispatcher, tracker, "conv.verify.no_phone")


async def start_verification(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Ask for a proven phone, or start the check with it and open the verification form."""
    who = caller(tracker)
    # Reached by FollowupAction from any flow: when no form opens, listen rather than let the
    # policies guess what follows in a flow that was interrupted.
    listen = FollowupAction("action_listen")
    if not phone_proven(tracker):
        if who.channel == "telegram":
            say(dispatcher, tracker, "conv.verify.share_contact", request_contact=True)
        else:
            say(dispatcher, tracker, "conv.verify.no_phone")
        return [listen]
    try:
        async with LoanApiClient() as api:
            # The loan API checks the phone the gateway registered for this chat.
            started = await api.start_verification(who.channel, who.user)
    except IdentityLocked as exc:
        say_locked(dispatcher, tracker, exc)
        return [*(SlotSet(name, None) for name in PENDING_SLOTS), listen]
    except LoanApiError:
        return [*try_again(dispatcher, tracker), listen]
    return [
        SlotSet("verification_factor", ",".join(started.offered)),
        SlotSet("verification_value", None),
        SlotSet("requested_slot", None),
        FollowupAction("verification_form"),
    ]


class ActionStartVerification(Action):
    def name(self) -> str:
        return "action_start_verification"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return await start_verification(dispatcher, tracker)


class ActionAskVerificationValue(Action):
    """Say plainly what is needed, and that an officer can call back instead."""

    def name(self) -> str:
        return "action_ask_verification_value"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        offered = offered_factors(tracker)
        if len(offered) > 1:
            key = "conv.verify.ask_any"
        elif offered == [NATIONAL_ID]:
            key = "conv.verify.ask_national_id"
        else:
            key = "conv.verify.ask_dob"
        say(dispatcher, tracker, key, buttons=[CALL_ME])
        return []


def pending_requests(tracker: Tracker) -> list[str]:
    return [name for name in str(tracker.get_slot("pending_request") or "").split(",") if name]


def keep_request(tracker: Tracker, request: str, text: str | None) -> dict[str, Any]:
    """Add ``request`` to the requests waiting for the check (a new form request replaces an
    older one); a promise's words add up ("10 000 FCFA", then "vendredi prochain")."""
    waiting = [name for name in pending_requests(tracker) if name != request]
    if request in FORM_REQUESTS:
        waiting = [name for name in waiting if name not in FORM_REQUESTS]
    slots: dict[str, Any] = {"pending_request": ",".join([*waiting, request])}
    if text is not None:
        earlier = tracker.get_slot("pending_text") if request in pending_requests(tracker) else None
        words = f"{earlier} {text}" if earlier else text
        slots["pending_text"] = words[-500:]
    return slots


class ActionResumeRequest(Action):
    """After the verification form: carry out what the borrower asked before and during it."""

    def name(self) -> str:
        return "action_resume_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        outcome = tracker.get_slot("verification_value")
        waiting = pending_requests(tracker)
        text = str(tracker.get_slot("pending_text") or "")
        events: list[EventType] = [
            SlotSet(name, None) for name in (*VERIFICATION_SLOTS, *PENDING_SLOTS)
        ]
        if outcome != "verified":
            return events
        say(dispatcher, tracker, "conv.verify.done")
        # Questions first, then the one request that opens a form (its words are kept).
        ordered = [name for name in waiting if name not in FORM_REQUESTS] + [
            name for name in waiting if name in FORM_REQUESTS
        ]
        for name in ordered:
            if name in HANDLERS:
                words = text if name in FORM_REQUESTS else ""
                events += await run_request(name, dispatcher, tracker, text=words, resumed=True)
        return events


def _intent(tracker: Tracker) -> str | None:
    name = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    return name if isinstance(name, str) else None


def _sure(tracker: Tracker) -> bool:
    """The NLU is sure of the message's intent (a `no`, a goodbye, an officer request)."""
    intent = (tracker.latest_message or {}).get("intent") or {}
    return float(intent.get("confidence") or 0.0) >= SURE_MIN_CONFIDENCE


def _text(tracker: Tracker) -> str:
    return str((tracker.latest_message or {}).get("text") or "")


def _says_promise(text: str, tracker: Tracker) -> bool:
    amount, when = parse_promise(text, language(tracker), today(tracker))
    return amount is not None or (when is not None and when.value >= today(tracker))


def _promises_a_day(text: str, tracker: Tracker) -> bool:
    _amount, when = parse_promise(text, language(tracker), today(tracker))
    return when is not None and when.value >= today(tracker)


class ValidateVerificationForm(FormValidationAction):
    """Read the answer by its form, check it with the API, and handle everything else."""

    def name(self) -> str:
        return "validate_verification_form"

    @staticmethod
    def _offers_answer(tracker: Tracker) -> bool:
        """An answer of an offered form, named as such, in the message that opened the check."""
        return offers_identity_answer(tracker, offered_factors(tracker))

    @staticmethod
    def _answers_anyway(tracker: Tracker) -> bool:
        """A message holding an answer is one, whatever its few words were taken for (see
        ``ANSWER_OVER_INTENT``); a `no` the NLU is unsure of stops nothing, and an officer
        request it is unsure of gives way to an answer named as such."""
        intent = _intent(tracker)
        if intent == "deny" and not _sure(tracker):
            return True
        if intent == "request_officer" and not _sure(tracker):
            return offers_identity_answer(tracker, offered_factors(tracker))
        if intent not in ANSWER_OVER_INTENT:
            return False
        found = read_identity_answer(_text(tracker), language(tracker), today(tracker))
        return bool(found.answers(offered_factors(tracker)))

    async def extract_verification_value(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Take the turn (never the text: only a marker) unless a rule should answer it."""
        if tracker.get_slot("requested_slot") != "verification_value":
            # The form is only opening: the message was the request, not an answer, unless it
            # offers one of its own accord ("I'd rather give my ID card, it ends in 6150").
            return {"verification_value": TO_READ} if self._offers_answer(tracker) else {}
        if _intent(tracker) in RULE_DIGRESSIONS and not self._answers_anyway(tracker):
            return {}  # the form rejects the turn: the rule answers, the form asks again
        return {"verification_value": TO_READ}

    async def validate_verification_value(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if slot_value != TO_READ:
            # Only outcomes are ever stored: anything else would be a typed answer.
            return {"verification_value": slot_value if slot_value in OUTCOMES else None}
        intent = _intent(tracker)
        text = _text(tracker)
        found = read_identity_answer(text, language(tracker), today(tracker))
        answers = found.answers(offered_factors(tracker))
        request = REQUEST_OF_INTENT.get(intent or "")
        if answers == {NATIONAL_ID: found.id_last4} and found.id_digits_only:
            if _promises_a_day(text, tracker):
                answers = {}  # "le abono 1300 mañana": an amount and a day, not ID digits
        if answers:
            slots = await self._check(dispatcher, tracker, answers)
            if (
                request is not None
                and request not in FORM_REQUESTS
                and found.other_words
                and worth_carrying(request, tracker, text)
            ):
                # "my ID is 28113307, and when is the next one due?": answered after the check
                # (without these words, which hold the answer). A bare answer ("my ID number is
                # 28113307") asks nothing, whatever intent the NLU read into it.
                slots.update(keep_request(tracker, request, None))
            return slots
        return self._digression(dispatcher, tracker, intent, request, text, found)

    async def _check(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, answers: dict[str, str]
    ) -> dict[str, Any]:
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                result = await api.complete_verification(who.channel, who.user, answers)
        except VerificationFailed as exc:
            say(dispatcher, tracker, "conv.verify.failed", count=exc.attempts_left)
            return {"verification_value": None}
        except IdentityLocked as exc:
            say_locked(dispatcher, tracker, exc)
            return {"verification_value": "locked"}
        except FactorNotOffered:
            say(dispatcher, tracker, "conv.verify.not_an_answer")
            return {"verification_value": None}
        except LoanApiError:
            say(dispatcher, tracker, TRY_AGAIN_KEY)
            return {"verification_value": "unavailable"}
        slots: dict[str, Any] = {"verification_value": "verified"}
        if result.timezone:
            slots[TIMEZONE_SLOT] = result.timezone
        if result.locale in SUPPORTED_LOCALES:
            slots["language"] = result.locale
        return slots

    def _digression(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        intent: str | None,
        request: str | None,
        text: str,
        found: Any,
    ) -> dict[str, Any]:
        """No answer in the message: no try is spent; answer it and keep what it asks for."""
        slots: dict[str, Any] = {"verification_value": None}
        if request is not None and not worth_carrying(request, tracker, text):
            request = None  # "why do you ask that?" read as a complaint opens no case
        if intent == "goodbye" and _sure(tracker):
            say(dispatcher, tracker, "conv.verify.goodbye")
            return {"verification_value": "left"}
        if request is None and not found.impossible_birth_date and _says_promise(text, tracker):
            request = "promise"  # "10 000 FCFA", "vendredi prochain": the promise goes on
        if found.impossible_birth_date:
            say(dispatcher, tracker, "conv.verify.not_birth_date")
        elif request == "hardship":
            say(dispatcher, tracker, "conv.hardship.sorry")
        elif request is not None:
            say(dispatcher, tracker, "conv.verify.after_check")
        elif intent in SMALL_TALK:
            say(dispatcher, tracker, SMALL_TALK[intent])
        else:
            say(dispatcher, tracker, "conv.verify.not_an_answer")
        if request is not None:
            keep_text = request in FORM_REQUESTS and not found.impossible_birth_date
            slots.update(keep_request(tracker, request, text[:500] if keep_text else None))
        return slots
