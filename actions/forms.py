"""Form validators: the promise to pay and the hardship request (the identity check's is in
``actions.verification``).

Messages that belong to another flow (a balance question in the middle of a promise, a request
for the officer) are never taken as answers: the slot stays empty, Rasa rejects the form's turn,
the digression rule answers it, and the form asks its question again.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.common import language, say, today
from actions.parsing import parse_date
from actions.promises import (
    UNPARSED,
    max_days_ahead,
    parse_promise_text,
    slot_decimal,
)
from i18n import day, money

# Intents that are never an answer to a form question (kept equal to the `not_intent` lists of
# the domain's from_text mappings; tests/actions/test_domain.py checks it).
DIGRESSIONS = frozenset(
    {
        "ask_balance",
        "ask_next_due",
        "ask_schedule",
        "ask_payment_history",
        "how_to_pay",
        "report_payment",
        "request_officer",
        "complaint",
        "bot_challenge",
        "ask_loan_terms",
        "out_of_scope",
        "opt_out",
        "opt_in",
        "change_language",
        "greet",
        "goodbye",
        "deny",
    }
)
# A borrower telling of hardship who then offers to pay ("I'll pay 2500 tomorrow") has chosen a
# promise over relief: the hardship form yields to the promise (rule "promise during
# hardship_form"), and no hardship case is opened for help that was not asked for.
HARDSHIP_YIELDS_TO = frozenset({"promise_to_pay"})
RELIEFS = ("more_time", "smaller_installments", "pause")
# Words borrowers use for each kind of help, in the four languages (matched without accents).
RELIEF_WORDS = {
    "more_time": (
        "time", "later", "extension", "extend", "temps", "delai", "report", "plus tard",
        "tiempo", "plazo", "despues", "muda", "kuongeza", "baadaye", "nyongeza",
    ),
    "smaller_installments": (
        "small", "less", "reduce", "lower", "petit", "moins", "reduire", "baisser",
        "pequen", "menos", "reducir", "menor", "ndogo", "punguza", "kidogo",
    ),
    "pause": (
        "pause", "stop", "break", "suspend", "arret", "pausa", "suspender", "parar",
        "simamisha", "kusitisha", "pumziko", "acha",
    ),
}  # fmt: skip
_RELIEF_PAYLOAD = re.compile(r'"relief"\s*:\s*"(\w+)"')


def _intent(tracker: Tracker) -> str | None:
    intent = (tracker.latest_message or {}).get("intent") or {}
    name = intent.get("name")
    return name if isinstance(name, str) else None


def _answers(tracker: Tracker, slot: str) -> bool:
    """Whether the latest message answers the form's question for ``slot`` (and is not a
    digression, such as asking for the balance midway)."""
    return tracker.get_slot("requested_slot") == slot and _intent(tracker) not in DIGRESSIONS


def _text(tracker: Tracker) -> str:
    return str((tracker.latest_message or {}).get("text") or "")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def relief_from_text(text: str) -> str | None:
    """The help asked for: a button payload, else the first kind whose words appear."""
    payload = _RELIEF_PAYLOAD.search(text)
    if payload and payload.group(1) in RELIEFS:
        return payload.group(1)
    folded = _fold(text)
    for relief in RELIEFS:
        if any(word in folded for word in RELIEF_WORDS[relief]):
            return relief
    return None


class ValidatePromiseForm(FormValidationAction):
    def name(self) -> str:
        return "validate_promise_form"

    async def extract_promise_amount(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if not _answers(tracker, "promise_amount"):
            return {}
        due_now = slot_decimal(tracker, "promise_due_now") or Decimal(0)
        amount, when = parse_promise_text(
            _text(tracker), tracker, tracker.get_slot("promise_currency"), due_now
        )
        slots: dict[str, Any] = {"promise_amount": str(amount) if amount is not None else UNPARSED}
        # A date in the answer is the borrower's latest word: it replaces one carried from an
        # earlier message ("I had promised Monday ..." then "I can pay 10000 Thursday").
        if when is not None:
            slots["promise_date"] = when.isoformat()
        return slots

    async def extract_promise_date(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if not _answers(tracker, "promise_date"):
            return {}
        parsed = parse_date(_text(tracker), language(tracker), today(tracker))
        return {"promise_date": parsed.value.isoformat() if parsed else UNPARSED}

    async def validate_promise_amount(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if slot_value is None:
            return {"promise_amount": None}  # cleared when the promise started
        amount = slot_decimal(tracker, "promise_amount")
        if slot_value == UNPARSED or amount is None:
            say(dispatcher, tracker, "conv.promise.amount_unclear")
            return {"promise_amount": None}
        if amount <= 0:
            say(dispatcher, tracker, "conv.promise.amount_not_positive")
            return {"promise_amount": None}
        outstanding = slot_decimal(tracker, "promise_outstanding")
        if outstanding is not None and amount > outstanding:
            currency = tracker.get_slot("promise_currency") or "KES"
            say(
                dispatcher,
                tracker,
                "conv.promise.amount_above",
                outstanding=money(outstanding, currency),
            )
            return {"promise_amount": None}
        return {"promise_amount": str(amount.quantize(Decimal("0.01")))}

    async def validate_promise_date(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if slot_value is None:
            return {"promise_date": None}  # cleared when the promise started
        try:
            when = date.fromisoformat(str(slot_value))
        except ValueError:
            say(dispatcher, tracker, "conv.promise.date_unclear")
            return {"promise_date": None}
        now = today(tracker)
        if when < now:
            say(dispatcher, tracker, "conv.promise.date_past")
            return {"promise_date": None}
        latest = now + timedelta(days=max_days_ahead())
        if when > latest:
            say(dispatcher, tracker, "conv.promise.date_too_far", max_date=day(latest))
            return {"promise_date": None}
        return {"promise_date": when.isoformat()}


class ValidateHardshipForm(FormValidationAction):
    def name(self) -> str:
        return "validate_hardship_form"

    async def extract_hardship_relief(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if not _answers(tracker, "hardship_relief") or _intent(tracker) in HARDSHIP_YIELDS_TO:
            return {}
        return {"hardship_relief": relief_from_text(_text(tracker)) or UNPARSED}

    async def validate_hardship_relief(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        # An unclear choice is simply asked again, with the three buttons.
        return {"hardship_relief": slot_value if slot_value in RELIEFS else None}

    async def validate_hardship_reason(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        reason = " ".join(str(slot_value or "").split())[:500]
        return {"hardship_reason": reason or None}
