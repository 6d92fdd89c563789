"""Account requests that need a verified chat, and how an unverified chat is sent to verification.

Each request is a handler ``(context) -> events`` that makes its API calls and answers. The
actions in ``loans``, ``promises`` and ``cases`` run them through :func:`run_request`; when the
API says the chat is not verified (or idle for too long), the request is remembered in the
``pending_request`` slot and verification starts. ``action_resume_request`` runs it again once the
verification form has succeeded, so the borrower gets the answer they asked for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import Caller, caller, say, try_again
from actions.empathy import explains_missed_payment, kind_word_before_the_check
from actions.loan_api import LoanApiClient, LoanApiError, VerificationRequired


@dataclass(frozen=True)
class RequestContext:
    api: LoanApiClient
    who: Caller
    dispatcher: CollectingDispatcher
    tracker: Tracker
    text: str  # the words of the request (the original message when resumed)

    def say(self, key: str, **kwargs: Any) -> None:
        say(self.dispatcher, self.tracker, key, **kwargs)


Handler = Callable[[RequestContext], Awaitable[list[EventType]]]
HANDLERS: dict[str, Handler] = {}
# What is said before the identity check, for requests that must not meet procedure first: a
# person in difficulty is heard (and not asked to pay) before being asked who they are.
BEFORE_CHECK = {"hardship": "conv.hardship.sorry"}
# Requests that write a record for an officer (a case, a payment claim): carried through the
# identity check only when the NLU was sure of them, and never when the message explains a
# missed payment ("I said I'd pay yesterday but couldn't" is no report of a payment).
WRITING_REQUESTS = frozenset({"complaint", "report_payment"})
CARRY_MIN_CONFIDENCE = 0.8


def worth_carrying(name: str, tracker: Tracker, words: str) -> bool:
    """Whether a request asked before or during the check is carried out after it."""
    if name not in WRITING_REQUESTS:
        return True
    intent = (tracker.latest_message or {}).get("intent") or {}
    sure = float(intent.get("confidence") or 0.0) >= CARRY_MIN_CONFIDENCE
    return sure and not explains_missed_payment(words)


def request(name: str) -> Callable[[Handler], Handler]:
    """Register a handler under the name stored in ``pending_request``."""

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register


def latest_text(tracker: Tracker) -> str:
    return str((tracker.latest_message or {}).get("text") or "")


async def run_request(
    name: str,
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    *,
    text: str | None = None,
    resumed: bool = False,
) -> list[EventType]:
    """Run one registered request; unverified → verification, API failure → try again."""
    words = latest_text(tracker) if text is None else text
    try:
        async with LoanApiClient() as api:
            context = RequestContext(api, caller(tracker), dispatcher, tracker, words)
            return await HANDLERS[name](context)
    except VerificationRequired:
        if resumed:
            return try_again(dispatcher, tracker)
        kind_word = BEFORE_CHECK.get(name) or kind_word_before_the_check(words)
        if kind_word is not None:
            say(dispatcher, tracker, kind_word)
        carried = worth_carrying(name, tracker, words)
        return [
            SlotSet("pending_request", name if carried else None),
            SlotSet("pending_text", words[:500] if carried else None),
            FollowupAction("action_start_verification"),
        ]
    except LoanApiError:
        return try_again(dispatcher, tracker)


class RequestAction(Action, ABC):
    """An action that runs one registered account request.

    A request that opens a form (promise, hardship) is followed by the form in the rules; when it
    ends without opening it (nothing owed, the API failed) the action says to listen instead.
    """

    opens_form = False

    @abstractmethod
    def request_name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = await run_request(self.request_name(), dispatcher, tracker)
        if self.opens_form and not any(e.get("event") == "followup" for e in events):
            events.append(FollowupAction("action_listen"))
        return events
