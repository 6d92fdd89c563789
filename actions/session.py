"""Session start, greeting, identity verification and fallback."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ActiveLoop,
    EventType,
    FollowupAction,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    button,
    caller,
    local_timezone,
    phone_proven,
    say,
    try_again,
)
from actions.loan_api import IdentityLocked, LoanApiClient, LoanApiError
from actions.requests import HANDLERS, run_request
from kopa.i18n import SUPPORTED_LOCALES, moment, normalize_locale

OFFER_PERSON_KEY = "conv.offer_person"
FALLBACK_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})
VERIFICATION_SLOTS = ("verification_factor", "verification_value")
PENDING_SLOTS = ("pending_request", "pending_text")


def say_locked(dispatcher: CollectingDispatcher, tracker: Tracker, exc: IdentityLocked) -> None:
    if exc.locked_until is not None:
        say(
            dispatcher,
            tracker,
            "conv.verify.locked",
            until=moment(exc.locked_until, local_timezone()),
        )
    else:
        say(dispatcher, tracker, "conv.verify.no_phone")


class ActionSessionStart(Action):
    """Start a session in the borrower's language: theirs once verified, else the channel's."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        metadata = tracker.get_slot("session_started_metadata") or {}
        previous = tracker.get_slot("language")
        locale = previous if previous in SUPPORTED_LOCALES else None
        locale = locale or normalize_locale(metadata.get("locale"))
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                identity = await api.identity(who.channel, who.user)
            if identity.status == "verified" and identity.locale in SUPPORTED_LOCALES:
                locale = identity.locale
        except (LoanApiError, ValueError):
            pass  # the hint will do; account questions still go through the API
        return [
            SessionStarted(),
            SlotSet("language", locale),
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
        if first_name:
            say(dispatcher, tracker, "conv.greet_name", first_name=first_name)
        else:
            say(dispatcher, tracker, "conv.greet")
        return []


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
        SlotSet("verification_factor", started.factor),
        SlotSet("verification_value", None),
        FollowupAction("verification_form"),
    ]


class ActionStartVerification(Action):
    def name(self) -> str:
        return "action_start_verification"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return await start_verification(dispatcher, tracker)


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
        waiting = tracker.get_slot("pending_request") is not None or text == "/inform"
        if phone_proven(tracker) and waiting:
            return await start_verification(dispatcher, tracker)
        say(dispatcher, tracker, "conv.capabilities")
        return []


class ActionAskVerificationValue(Action):
    def name(self) -> str:
        return "action_ask_verification_value"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        factor = tracker.get_slot("verification_factor")
        key = "conv.verify.ask_national_id" if factor == "national_id" else "conv.verify.ask_dob"
        say(dispatcher, tracker, key)
        return []


class ActionResumeRequest(Action):
    """After the verification form: answer what the borrower asked before it."""

    def name(self) -> str:
        return "action_resume_request"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        outcome = tracker.get_slot("verification_value")
        pending = tracker.get_slot("pending_request")
        text = tracker.get_slot("pending_text") or ""
        events: list[EventType] = [
            SlotSet(name, None) for name in (*VERIFICATION_SLOTS, *PENDING_SLOTS)
        ]
        if outcome != "verified":
            return events
        say(dispatcher, tracker, "conv.verify.done")
        if pending in HANDLERS:
            events += await run_request(pending, dispatcher, tracker, text=text, resumed=True)
        return events


class ActionHandleFallback(Action):
    """Say what the bot can do; on the second miss in a row, offer a person."""

    def name(self) -> str:
        return "action_handle_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        intents = [
            (event.get("parse_data") or {}).get("intent", {}).get("name")
            for event in tracker.events
            if event.get("event") == "user"
        ]
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
