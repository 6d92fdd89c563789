"""The frozen borrower conversation scripts (``tests/conversation/scripts``) as data: a
script's format (described with its vocabulary in ``tests/conversation/scripts/README.md``),
the personas the scripts are written for, and :data:`VOCABULARY`, the one table that says which
message keys express each word of the scripts' vocabulary.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kopa.paths import ROOT
from portfolio.demo import DEMO_BORROWERS, DemoBorrower

SCRIPTS_DIR = ROOT / "tests" / "conversation" / "scripts"
CHANNEL = "whatsapp"  # the channel that proves the phone on every message (its sender id)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CASE_KINDS = ("hardship", "officer_request", "complaint", "payment_claim")


@dataclass(frozen=True)
class Word:
    """Which message keys express one word of the scripts' vocabulary.

    ``keys`` are exact message keys (each must exist in ``i18n/messages``: a test checks);
    ``prefixes`` also match keys added later under them (``conv.verify.ask`` covers
    ``conv.verify.ask_dob``, ``conv.verify.ask_national_id`` and any new way of asking).
    """

    meaning: str
    keys: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def matches(self, key: str) -> bool:
        return key in self.keys or any(key.startswith(prefix) for prefix in self.prefixes)


# The one table from vocabulary words to message keys. To teach the runner a new message, add
# its key (or a prefix) to the word it expresses; nothing else changes. Words checked on values
# instead (discloses, shows except loan_terms, mentions_amount, language) are not here.
VOCABULARY: dict[str, Word] = {
    "asks_identity": Word(
        "asks for the date of birth or the last ID digits",
        prefixes=("conv.verify.ask",),  # ask_dob, ask_national_id, ask_any, ...
    ),
    "empathy": Word(
        "acknowledges the borrower's difficulty kindly",
        keys=("conv.hardship.ask_reason",),
        prefixes=("conv.hardship.sorry", "conv.empathy."),
    ),
    "officer": Word(
        "says a person (loan officer, branch) will contact them",
        keys=(
            "conv.officer.opened",
            "conv.officer.opened_branch",
            "conv.hardship.opened",
            "conv.hardship.opened_branch",
            "conv.complaint.opened",
            "conv.complaint.opened_branch",
        ),
        prefixes=("conv.callback.requested", "conv.verify.held"),
    ),
    "asks_confirmation": Word(
        "reads back what it is about to record and asks to confirm",
        keys=("conv.promise.confirm",),
        prefixes=("conv.confirm.",),
    ),
    "promise_recorded": Word("says the promise is recorded", keys=("conv.promise.recorded",)),
    "payment_report_received": Word(
        "says the reported payment was received or noted to be checked",
        keys=("conv.payment_found", "conv.payment_not_found"),
    ),
    "opt_out_confirmed": Word("confirms no more reminders", keys=("conv.opted_out",)),
    "opt_in_confirmed": Word("confirms reminders are back on", keys=("conv.opted_in",)),
    "clarifies": Word(
        "says it is not sure and offers choices or asks what was meant",
        keys=("conv.offer_person", "conv.ask_language"),
        prefixes=("conv.did_you_mean", "conv.clarify."),
    ),
    "says_languages": Word(
        "lists the languages the bot speaks",
        keys=("conv.ask_language",),
        prefixes=("conv.languages",),
    ),
    "wrong_answer": Word(
        "says the identity answer does not match",
        keys=("conv.verify.failed",),
        prefixes=("conv.verify.wrong",),
    ),
    "payment_demand": Word(  # what `no_payment_demand` forbids
        "asks the borrower to pay (how much, when, where)",
        keys=("conv.promise.ask_amount", "conv.promise.ask_date", "conv.how_to_pay"),
        prefixes=("notify.reminder.", "notify.promise."),
    ),
    "loan_terms": Word("explains the loan's terms", keys=("conv.loan_terms",)),
}
# Messages that are procedure: empathy must come before any of them in the same turn.
PROCEDURE = ("asks_identity", "asks_confirmation", "payment_demand")

# How a borrower would describe each failed expectation (the benchmark counts these).
COMPLAINTS: dict[str, str] = {
    "no_reply": "got no answer (or 'try again shortly')",
    "language": "was answered in another language than mine",
    "discloses": "was shown account details before proving who I am",
    "asks_identity": "was not asked for my date of birth or ID digits",
    "shows:balance": "did not get my balance",
    "shows:next_due": "did not get my next due date",
    "shows:schedule": "did not get my repayment schedule",
    "shows:payment_history": "did not get what I have paid so far",
    "shows:how_to_pay": "was not told how to pay",
    "shows:loan_terms": "was not told my loan terms",
    "empathy": "got no kind word for my trouble before the procedure",
    "no_payment_demand": "was asked to pay while telling my trouble",
    "officer": "was not told an officer will call me",
    "asks_confirmation": "was not asked to confirm my promise",
    "mentions_amount": "did not hear my amount read back",
    "promise_recorded": "was not told my promise is noted",
    "payment_report_received": "was not told my payment report is noted",
    "opt_out_confirmed": "was not told the reminders will stop",
    "opt_in_confirmed": "was not told the reminders are back on",
    "clarifies": "was not asked what I meant",
    "says_languages": "was not told which languages the bot speaks",
    "not_a_wrong_answer": "my message was counted as a wrong identity answer",
    "wrong_answer": "was not told my identity answer was wrong",
    "outcome:failed_tries": "the count of failed identity tries is wrong",
    "outcome:locked": "the chat's lock-out is wrong",
    "outcome:promises": "my promise was not recorded (or recorded more than once)",
    "outcome:promise": "my promise was recorded with the wrong amount or day",
    "outcome:cases": "my request did not reach an officer (or an extra case was opened)",
    "outcome:opted_out": "my reminders were not switched off (or on) as I asked",
    "outcome:language": "my language was not saved",
}


@dataclass(frozen=True)
class Turn:
    user: str
    expect: dict[str, Any]


@dataclass(frozen=True)
class Script:
    id: str
    persona: str
    language: str
    covers: tuple[str, ...]
    story: str
    turns: tuple[Turn, ...]
    outcome: dict[str, Any]
    path: Path


def load_script(path: Path) -> Script:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    turns = tuple(Turn(str(t["user"]), dict(t.get("expect") or {})) for t in raw["turns"])
    return Script(
        id=str(raw["id"]),
        persona=str(raw["persona"]),
        language=str(raw["language"]),
        covers=tuple(raw.get("covers") or ()),
        story=" ".join(str(raw.get("story") or "").split()),
        turns=turns,
        outcome=dict(raw.get("outcome") or {}),
        path=path,
    )


def load_scripts(directory: Path = SCRIPTS_DIR) -> list[Script]:
    return [load_script(path) for path in sorted(directory.glob("*/*.yml"))]


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# Persona keys of the scripts: the demo borrower's first name, without accents (María → maria).
PERSONAS: dict[str, DemoBorrower] = {fold(b.name.split()[0]): b for b in DEMO_BORROWERS}
