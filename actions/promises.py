"""Promise to pay: open the form with what the borrower already said, read back, record once."""

from __future__ import annotations

import os
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    button,
    caller,
    idempotency_key,
    language,
    say,
    today,
    try_again,
)
from actions.loan_api import (
    LoanApiClient,
    LoanApiError,
    PromiseRejected,
    VerificationRequired,
    message_reference,
)
from actions.parsing import ParsedAmount, parse_promise
from actions.requests import RequestAction, RequestContext, request
from i18n import day, money

PROMISE_SLOTS = (
    "promise_amount",
    "promise_date",
    "promise_confirmed",
    "promise_loan_id",
    "promise_currency",
    "promise_outstanding",
    "promise_due_now",
    "promise_started_at",
)
UNPARSED = "unparsed"
CENT = Decimal("0.01")


def max_days_ahead() -> int:
    """The promise window; the same setting the loan API enforces (it has the last word)."""
    return int(os.environ.get("KOPA_PROMISES__MAX_DAYS_AHEAD", "30"))


def resolve_amount(
    parsed: ParsedAmount | None, due_now: Decimal, currency: str | None
) -> Decimal | None:
    """A parsed amount as money: figures as they are, "half" as half of what is due now.

    An amount in another currency than the loan's is not understood (the borrower is asked
    again in figures) rather than converted.
    """
    if parsed is None:
        return None
    if parsed.currency is not None and currency is not None and parsed.currency != currency:
        return None
    if parsed.value is not None:
        return parsed.value
    if parsed.fraction is not None:
        share = due_now * parsed.fraction.numerator / parsed.fraction.denominator
        return share.quantize(CENT)
    return None


def slot_decimal(tracker: Tracker, name: str) -> Decimal | None:
    value = tracker.get_slot(name)
    try:
        return Decimal(str(value)) if value not in (None, UNPARSED) else None
    except InvalidOperation:
        return None


def slot_date(tracker: Tracker, name: str) -> date | None:
    value = tracker.get_slot(name)
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def parse_promise_text(
    text: str, tracker: Tracker, currency: str | None, due_now: Decimal
) -> tuple[Decimal | None, date | None]:
    amount, when = parse_promise(text, language(tracker), today(tracker), currency)
    return resolve_amount(amount, due_now, currency), when.value if when else None


@request("promise")
async def start_promise(context: RequestContext) -> list[EventType]:
    loans = await context.api.loans(context.who.channel, context.who.user)
    owing = [loan for loan in loans if loan.outstanding > 0]
    if not owing:
        context.say("conv.no_loans")
        return []
    loan = owing[0]
    if loan.arrears > 0:
        due_now = loan.arrears
    elif loan.next_installment is not None:
        due_now = loan.next_installment.amount
    else:
        due_now = loan.outstanding
    due_now = min(due_now, loan.outstanding)
    amount, when = parse_promise_text(context.text, context.tracker, loan.currency, due_now)
    return [
        SlotSet("promise_loan_id", str(loan.loan_id)),
        SlotSet("promise_currency", loan.currency),
        SlotSet("promise_outstanding", str(loan.outstanding)),
        SlotSet("promise_due_now", str(due_now)),
        # The message that started the promise: its channel id keys the promise's creation.
        SlotSet("promise_started_at", message_reference(context.tracker)),
        SlotSet("promise_amount", str(amount) if amount is not None else None),
        SlotSet("promise_date", when.isoformat() if when else None),
        SlotSet("promise_confirmed", None),
        FollowupAction("promise_form"),
    ]


class ActionStartPromise(RequestAction):
    opens_form = True

    def name(self) -> str:
        return "action_start_promise"

    def request_name(self) -> str:
        return "promise"


class ActionAskPromiseAmount(Action):
    def name(self) -> str:
        return "action_ask_promise_amount"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        outstanding = slot_decimal(tracker, "promise_outstanding") or Decimal(0)
        currency = tracker.get_slot("promise_currency") or "KES"
        say(
            dispatcher,
            tracker,
            "conv.promise.ask_amount",
            outstanding=money(outstanding, currency),
        )
        return []


class ActionAskPromiseConfirmed(Action):
    """Read back the calendar date and the amount before anything is recorded."""

    def name(self) -> str:
        return "action_ask_promise_confirmed"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        amount = slot_decimal(tracker, "promise_amount") or Decimal(0)
        when = slot_date(tracker, "promise_date") or today(tracker)
        say(
            dispatcher,
            tracker,
            "conv.promise.confirm",
            amount=money(amount, tracker.get_slot("promise_currency") or "KES"),
            date=day(when),
            buttons=[button("conv.button.yes", "/affirm"), button("conv.button.no", "/deny")],
        )
        return []


class ActionRecordPromise(Action):
    """Record the confirmed promise; a retry of the same turn records it once."""

    def name(self) -> str:
        return "action_record_promise"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        clear = [SlotSet(name, None) for name in PROMISE_SLOTS]
        amount = slot_decimal(tracker, "promise_amount")
        when = slot_date(tracker, "promise_date")
        if tracker.get_slot("promise_confirmed") is not True or amount is None or when is None:
            say(dispatcher, tracker, "conv.promise.cancelled")
            return clear
        currency = tracker.get_slot("promise_currency") or "KES"
        key = idempotency_key(
            tracker, "promise", tracker.get_slot("promise_started_at"), amount, when
        )
        try:
            async with LoanApiClient() as api:
                who = caller(tracker)
                promise = await api.create_promise(
                    who.channel,
                    who.user,
                    amount=amount,
                    promised_date=when,
                    loan_id=tracker.get_slot("promise_loan_id"),
                    idempotency_key=key,
                )
        except PromiseRejected as exc:
            return self._ask_again(dispatcher, tracker, exc, currency)
        except VerificationRequired:
            return [
                *clear,
                SlotSet("pending_request", "promise"),
                SlotSet("pending_text", ""),
                FollowupAction("action_start_verification"),
            ]
        except LoanApiError:
            return try_again(dispatcher, tracker)
        say(
            dispatcher,
            tracker,
            "conv.promise.recorded",
            amount=money(promise.amount, promise.currency),
            date=day(promise.promised_date),
        )
        return clear

    @staticmethod
    def _ask_again(
        dispatcher: CollectingDispatcher, tracker: Tracker, exc: PromiseRejected, currency: str
    ) -> list[EventType]:
        """The API's policy said no: explain, and reopen the form at the answer to change."""
        if exc.code in ("amount_above_outstanding", "amount_not_positive"):
            if exc.code == "amount_not_positive":
                say(dispatcher, tracker, "conv.promise.amount_not_positive")
            else:
                outstanding = slot_decimal(tracker, "promise_outstanding") or Decimal(0)
                say(
                    dispatcher,
                    tracker,
                    "conv.promise.amount_above",
                    outstanding=money(outstanding, currency),
                )
            slot = "promise_amount"
        else:
            if exc.code == "date_beyond_policy":
                latest = exc.max_date or today(tracker) + timedelta(days=max_days_ahead())
                say(dispatcher, tracker, "conv.promise.date_too_far", max_date=day(latest))
            else:
                say(dispatcher, tracker, "conv.promise.date_past")
            slot = "promise_date"
        return [
            SlotSet(slot, None),
            SlotSet("promise_confirmed", None),
            FollowupAction("promise_form"),
        ]


class ActionAskPromiseDate(Action):
    def name(self) -> str:
        return "action_ask_promise_date"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        say(dispatcher, tracker, "conv.promise.ask_date")
        return []
