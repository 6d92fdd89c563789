"""Hardship requests, officer requests and complaints: each opens a case with a reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    caller,
    local_timezone,
    phone_proven,
    say,
    try_again,
)
from actions.empathy import sounds_like_distress
from actions.loan_api import (
    Case,
    LoanApiClient,
    LoanApiError,
    PhoneRequired,
    VerificationRequired,
    request_key,
)
from actions.requests import RequestAction, RequestContext, latest_text, request, run_request
from i18n import moment, nested

HARDSHIP_SLOTS = ("hardship_reason", "hardship_relief")
# A first message this long already says what happened ("I lost my job and can't pay"), so the
# form does not ask for the reason again.
REASON_MIN_WORDS = 4


def _say_case(
    say_fn: Callable[..., None], tracker: Tracker, case: Case, key: str, **args: Any
) -> None:
    """Name the officer when one is assigned, else the branch.

    A request the API added to a case already open (or kept on the latest one past the daily
    cap) alerted nobody: the borrower hears it is already with the officer.
    """
    by = moment(case.sla_due_at, local_timezone(tracker))
    if case.disposition != "opened":
        if case.officer_name:
            say_fn(
                "conv.case.already_with_officer",
                reference=case.reference,
                officer=case.officer_name,
            )
        else:
            say_fn("conv.case.already_with_branch", reference=case.reference)
        return
    if case.officer_name:
        say_fn(f"{key}.opened", reference=case.reference, officer=case.officer_name, by=by, **args)
    else:
        say_fn(f"{key}.opened_branch", reference=case.reference, by=by, **args)


@request("hardship")
async def start_hardship(context: RequestContext) -> list[EventType]:
    identity = await context.api.identity(context.who.channel, context.who.user)
    if identity.status != "verified":
        raise VerificationRequired(identity.status)
    events: list[EventType] = [SlotSet(name, None) for name in HARDSHIP_SLOTS]
    words = context.text.strip()
    if len(words.split()) >= REASON_MIN_WORDS and not words.startswith("/"):
        events.append(SlotSet("hardship_reason", words[:500]))
    return [*events, FollowupAction("hardship_form")]


class ActionStartHardship(RequestAction):
    opens_form = True

    def name(self) -> str:
        return "action_start_hardship"

    def request_name(self) -> str:
        return "hardship"


class ActionAskHardshipRelief(Action):
    def name(self) -> str:
        return "action_ask_hardship_relief"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        buttons = [
            {"key": f"conv.relief.{relief}", "payload": f'/inform{{"relief": "{relief}"}}'}
            for relief in ("more_time", "smaller_installments", "pause")
        ]
        say(dispatcher, tracker, "conv.hardship.ask_relief", buttons=buttons)
        return []


class ActionOpenHardshipCase(Action):
    """Open the hardship case; the API pauses collection reminders while it is open."""

    def name(self) -> str:
        return "action_open_hardship_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reason = tracker.get_slot("hardship_reason")
        relief = tracker.get_slot("hardship_relief")
        key = request_key(tracker, "hardship", relief)
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                case = await api.open_case(
                    who.channel,
                    who.user,
                    kind="hardship",
                    borrower_words=reason,
                    requested_relief=relief,
                    idempotency_key=key,
                )
        except LoanApiError:
            return try_again(dispatcher, tracker)

        def speak(message_key: str, **args: Any) -> None:
            say(dispatcher, tracker, message_key, **args)

        _say_case(speak, tracker, case, "conv.hardship", relief=nested(f"conv.relief.{relief}"))
        return [SlotSet(name, None) for name in HARDSHIP_SLOTS]


async def request_callback(context: RequestContext) -> list[EventType]:
    """Before (or without) verification: the officer calls the registered number of the phone
    the channel proved. Nothing about the account is said, whoever owns the phone."""
    if not phone_proven(context.tracker) and context.who.channel == "telegram":
        context.say("conv.callback.share_contact", request_contact=True)
        return [SlotSet("pending_request", "officer")]
    # A hardship told before the check makes the call a hardship case, with its words.
    waiting = str(context.tracker.get_slot("pending_request") or "").split(",")
    hardship = "hardship" in waiting
    words = context.tracker.get_slot("pending_text") if hardship else None
    try:
        await context.api.request_callback(
            context.who.channel,
            context.who.user,
            None,  # the API calls the phone the gateway registered for this chat
            hardship=hardship,
            borrower_words=str(words)[:500] if words else None,
        )
    except PhoneRequired:
        context.say("conv.verify.no_phone")
        return []
    context.say("conv.callback.requested")
    if not hardship:
        return []
    # The officer now has the hardship: passing the check later opens no second case.
    rest = ",".join(name for name in waiting if name and name != "hardship")
    return [SlotSet("pending_request", rest or None), SlotSet("pending_text", None)]


@request("officer")
async def request_officer(context: RequestContext) -> list[EventType]:
    identity = await context.api.identity(context.who.channel, context.who.user)
    if identity.status != "verified":
        return await request_callback(context)
    key = request_key(context.tracker, "officer")
    case = await context.api.open_case(
        context.who.channel, context.who.user, kind="officer_request", idempotency_key=key
    )
    _say_case(context.say, context.tracker, case, "conv.officer")
    return []


@request("complaint")
async def file_complaint(context: RequestContext) -> list[EventType]:
    key = request_key(context.tracker, "complaint")
    words = context.text.strip()
    case = await context.api.open_case(
        context.who.channel,
        context.who.user,
        kind="complaint",
        borrower_words=None if words.startswith("/") else words[:500],
        idempotency_key=key,
    )
    _say_case(context.say, context.tracker, case, "conv.complaint")
    return []


class ActionRequestOfficer(RequestAction):
    def name(self) -> str:
        return "action_request_officer"

    def request_name(self) -> str:
        return "officer"


class ActionFileComplaint(RequestAction):
    """A complaint; an angry one that tells of hardship ("you keep texting me, I lost my job")
    goes to hardship: sympathy first, an officer's case, reminders paused."""

    def name(self) -> str:
        return "action_file_complaint"

    def request_name(self) -> str:
        return "complaint"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if sounds_like_distress(latest_text(tracker)):
            return await run_request("hardship", dispatcher, tracker)
        return await super().run(dispatcher, tracker, domain)


class ActionAskHardshipReason(Action):
    def name(self) -> str:
        return "action_ask_hardship_reason"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        say(dispatcher, tracker, "conv.hardship.ask_reason")
        return []
