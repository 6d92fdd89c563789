"""Play the frozen borrower conversation scripts (``tests/conversation/scripts``) through the stack.

A script is a whole conversation written from the borrower's side (format and vocabulary in
``tests/conversation/scripts/README.md``). :class:`ScriptPlayer` runs the real stack once (loan
API on SQLite, action server, Rasa) and plays each script the way the WhatsApp channel does: the
sender id is the persona's own phone number, every message carries that number as the proven
phone, and WhatsApp gives no language hint, so the bot must follow the language the borrower
writes in. Every script starts from its persona's documented state in
``portfolio/demo.py``, isolated from every other script: the demo portfolio is seeded once
into a template database, which is copied over the loan API's database (SQLite's online backup,
so the running API sees it at its next transaction) before each script, and Rasa's conversation
for that sender is emptied, so the script starts a new conversation.

Each turn's replies are checked twice: by *value*, on the text the borrower reads
(``ConversationService`` renders it with ``i18n.render`` in the reply's locale), for
``discloses``, ``shows``, ``mentions_amount``; and by *message key* for the rest, through
:data:`VOCABULARY`, the one table that says which keys express each word of the scripts'
vocabulary. After the last turn, ``outcome`` is checked against the loan API's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml
from babel.dates import format_date
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from actions.parsing import parse_amount, parse_date
from api.borrowers.pseudonym import chat_pseudonym
from api.core.config import DEV_HASH_PEPPER
from api.core.db import build_engine
from api.core.migrate import upgrade
from api.models import (
    Borrower,
    Branch,
    Case,
    ChannelIdentity,
    Consent,
    ContactEvent,
    Installment,
    Loan,
    Payment,
    PromiseToPay,
)
from bot.channels.base import InboundMessage
from bot.conversation import ChatRegistry, ConversationService, sender_id
from bot.rasa_client import RasaClient
from bot.render import payload_locale
from i18n import SUPPORTED_LOCALES, babel_locale, format_money, normalize_locale
from kopa.paths import ROOT
from kopa.stack import Stack, rasa_token, running_stack
from portfolio.demo import DEMO_BORROWERS, DemoBorrower, ensure_demo_portfolio
from tests.api.factories import today

SCRIPTS_DIR = ROOT / "tests" / "conversation" / "scripts"
CHANNEL = "whatsapp"  # the channel that proves the phone on every message (its sender id)
PEPPER = DEV_HASH_PEPPER  # the `kopa demo` default: the factor asked per phone is the demo's
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CASE_KINDS = ("hardship", "officer_request", "complaint", "payment_claim")


# --- the vocabulary ---------------------------------------------------------------------------


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


# --- scripts -----------------------------------------------------------------------------------


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


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# Persona keys of the scripts: the demo borrower's first name, without accents (María → maria).
PERSONAS: dict[str, DemoBorrower] = {_fold(b.name.split()[0]): b for b in DEMO_BORROWERS}


# --- what the borrower reads: values ----------------------------------------------------------

_SEPARATORS = ("", ",", ".", " ", "\u00a0", "\u202f", "'")


def _grouped(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3))]
    return separator.join(parts)


def amount_forms(amount: Decimal, currency: str | None = None) -> set[str]:
    """Ways ``amount`` can be written: grouped or not, any separator, with or without cents,
    and the currency formats of every supported locale."""
    amount = amount.quantize(Decimal("0.01"))
    whole, cents = f"{amount:.2f}".split(".")
    forms: set[str] = set()
    for separator in _SEPARATORS:
        grouped = _grouped(whole, separator)
        forms.update(f"{grouped}{mark}{cents}" for mark in (".", ","))
        if cents == "00":
            forms.add(grouped)
    if currency:
        forms.update(format_money(amount, currency, locale) for locale in SUPPORTED_LOCALES)
    return forms


_DATE_PATTERNS = (
    "full", "long", "medium", "short", "d MMMM", "MMMM d", "d MMM", "MMM d", "EEEE d MMMM",
    "EEEE, d MMMM", "EEEE, MMMM d", "d 'de' MMMM",
)  # fmt: skip


def date_forms(day: date) -> set[str]:
    """Ways ``day`` can be written: numeric forms and Babel's in every supported locale."""
    forms = {
        day.isoformat(),
        f"{day.day}/{day.month}/{day.year}",
        f"{day:%d/%m/%Y}",
        f"{day:%d.%m.%Y}",
        f"{day:%d-%m-%Y}",
        f"{day.day}.{day.month}.{day.year}",
        f"{day.day}/{day.month}",
        f"{day:%d/%m}",
    }
    for locale in SUPPORTED_LOCALES:
        forms.update(format_date(day, p, locale=babel_locale(locale)) for p in _DATE_PATTERNS)
    return forms


def _pattern(forms: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({_fold(f) for f in forms if f}, key=len, reverse=True)
    # Not part of a longer number: no digit (or digit and separator) on either side.
    body = "|".join(re.escape(a) for a in alternatives)
    return re.compile(rf"(?<!\d)(?<!\d[.,/\u00a0\u202f '])(?:{body})(?![.,/\u00a0\u202f ']?\d)")


def found(forms: Iterable[str], texts: Iterable[str]) -> str | None:
    """The first text fragment among ``texts`` that writes one of ``forms``, else None."""
    pattern = _pattern(forms)
    for text in texts:
        match = pattern.search(_fold(text))
        if match:
            return match.group(0)
    return None


@dataclass(frozen=True)
class PersonaFacts:
    """A persona's account as seeded: what must not leak, and what each ``shows`` item needs."""

    borrower: DemoBorrower
    currency: str
    timezone: str
    reference: str
    outstanding: Decimal
    next_due: date | None
    unpaid_due_dates: tuple[date, ...]
    latest_payment: tuple[Decimal, date] | None
    payment_numbers: tuple[str, ...]
    secret_amounts: tuple[Decimal, ...]
    secret_dates: tuple[date, ...]

    def leaks(self, texts: list[str], said: list[str], day: date) -> str | None:
        """The first piece of account data among ``texts``.

        An amount or day the borrower named themself (``said``, read with the bot's own parser,
        e.g. "kesho kutwa" when an installment falls due in 2 days) is no leak when echoed.
        """
        echoed_amounts, echoed_dates = named_by_borrower(said, self.currency, day)
        secret_amounts = [a for a in self.secret_amounts if a not in echoed_amounts]
        secret_dates = [d for d in self.secret_dates if d not in echoed_dates]
        amounts = set().union(*(amount_forms(a, self.currency) for a in secret_amounts))
        dates = set().union(*(date_forms(d) for d in secret_dates))
        for label, forms in (("an amount", amounts), ("a due date", dates)):
            hit = found(forms, texts)
            if hit:
                return f"{label} of the account ({hit!r})"
        if any(self.reference.casefold() in t.casefold() for t in texts):
            return f"the account reference {self.reference}"
        return None

    def shows(self, item: str, texts: list[str], keys: list[str]) -> str | None:
        """Why ``texts`` do not give ``item`` (None when they do)."""
        if item == "balance":
            if found(amount_forms(self.outstanding), texts) is None:
                return f"the outstanding {format_money(self.outstanding, self.currency, 'en')}"
        elif item == "next_due":
            if self.next_due is not None and found(date_forms(self.next_due), texts) is None:
                return f"the next due date {self.next_due.isoformat()}"
        elif item == "schedule":
            missing = [d for d in self.unpaid_due_dates if found(date_forms(d), texts) is None]
            if missing:
                return f"the due dates of the unpaid installments ({len(missing)} missing)"
        elif item == "payment_history":
            if self.latest_payment is not None:
                amount, day = self.latest_payment
                if found(amount_forms(amount), texts) is None or not found(date_forms(day), texts):
                    return f"the latest payment ({amount} on {day.isoformat()})"
        elif item == "how_to_pay":
            if not any(n in t for n in self.payment_numbers for t in texts):
                return f"a way to pay (one of {', '.join(self.payment_numbers)})"
        elif item == "loan_terms":
            if not any(VOCABULARY["loan_terms"].matches(k) for k in keys):
                return "the loan terms"
        else:
            return f"(unknown item {item!r})"
        return None


def named_by_borrower(said: list[str], currency: str, day: date) -> tuple[set[Decimal], set[date]]:
    amounts: set[Decimal] = set()
    dates: set[date] = set()
    for text in said:
        for locale in SUPPORTED_LOCALES:
            amount = parse_amount(text, locale, currency)
            if amount is not None and amount.value is not None:
                amounts.add(amount.value)
            when = parse_date(text, locale, day)
            if when is not None:
                dates.add(when.value)
    return amounts, dates


def persona_facts(session: Session, spec: DemoBorrower, *, day: date) -> PersonaFacts:
    borrower = session.scalars(select(Borrower).where(Borrower.phone_e164 == spec.phone)).one()
    branch = session.get_one(Branch, borrower.branch_id)
    loan = session.scalars(
        select(Loan).where(Loan.borrower_id == borrower.id).order_by(Loan.id)
    ).first()
    assert loan is not None, f"demo borrower {spec.name} has no loan"
    installments = list(
        session.scalars(
            select(Installment).where(Installment.loan_id == loan.id).order_by(Installment.seq)
        )
    )
    payments = list(
        session.scalars(
            select(Payment).where(Payment.loan_id == loan.id).order_by(Payment.received_at)
        )
    )
    zone = ZoneInfo(branch.timezone)
    outstanding = sum((i.outstanding for i in installments), Decimal("0"))
    arrears = sum((i.outstanding for i in installments if i.due_date < day), Decimal("0"))
    unpaid = [i for i in installments if i.outstanding > 0]
    upcoming = next((i for i in unpaid if i.due_date >= day), None)
    paid = [(p.amount, p.received_at.astimezone(zone).date()) for p in payments]
    instructions = branch.payment_instructions or {}
    numbers = [str(m["number"]) for m in instructions.get("mobile_money") or ()]
    bank = instructions.get("bank") or {}
    numbers += [str(bank[k]) for k in ("clabe", "account_number", "account") if bank.get(k)]
    amounts = {outstanding, arrears, loan.principal}
    amounts |= {i.total_due for i in installments} | {i.outstanding for i in unpaid}
    amounts |= {amount for amount, _ in paid}
    return PersonaFacts(
        borrower=spec,
        currency=loan.currency,
        timezone=branch.timezone,
        reference=loan.account_reference,
        outstanding=outstanding,
        next_due=upcoming.due_date if upcoming else None,
        unpaid_due_dates=tuple(i.due_date for i in unpaid),
        latest_payment=paid[-1] if paid else None,
        payment_numbers=tuple(numbers),
        secret_amounts=tuple(sorted(a for a in amounts if a > 0)),
        secret_dates=tuple(sorted({i.due_date for i in installments} | {d for _, d in paid})),
    )


# --- playing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    key: str
    locale: str


@dataclass
class TurnRecord:
    user: str
    replies: list[Reply]  # the keyed payloads Rasa answered, with the locale they render in
    texts: list[str]  # what the borrower read (text and button titles)
    failed_tries_added: int
    seconds: float = 0.0


@dataclass(frozen=True)
class Failure:
    turn: int | None  # 1-based; None for the outcome
    kind: str  # a key of COMPLAINTS
    expected: str
    got: str

    def describe(self, script: Script, record: TurnRecord | None) -> str:
        where = "outcome" if self.turn is None else f"turn {self.turn}"
        lines = [f"{script.id}, {where}: expected {self.expected}; {self.got}"]
        if record is not None:
            lines.append(f"  borrower: {record.user!r}")
            lines += [f"  bot: {text!r}" for text in record.texts] or ["  bot: (nothing)"]
        return "\n".join(lines)


@dataclass
class ScriptResult:
    script: Script
    turns: list[TurnRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def report(self) -> str:
        if self.passed:
            return f"{self.script.id}: passed"
        parts = []
        for failure in self.failures:
            record = self.turns[failure.turn - 1] if failure.turn else None
            parts.append(failure.describe(self.script, record))
        return "\n".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.script.id,
            "language": self.script.language,
            "persona": self.script.persona,
            "passed": self.passed,
            "seconds": round(self.seconds, 2),
            "failures": [
                {
                    "turn": f.turn,
                    "kind": f.kind,
                    "complaint": COMPLAINTS.get(f.kind, f.kind),
                    "expected": f.expected,
                    "got": f.got,
                }
                for f in self.failures
            ],
            "transcript": [
                {
                    "user": t.user,
                    "bot": t.texts,
                    "keys": [r.key for r in t.replies],
                    "locales": [r.locale for r in t.replies],
                    "seconds": round(t.seconds, 2),
                }
                for t in self.turns
            ],
        }


# A shared 2-core machine under load can take longer than the gateway's 8 s for one turn; the
# scripts judge what the bot says, not how fast, so a slow turn must not turn into "try again".
TURN_TIMEOUT_SECONDS = 60.0


class RecordingRasaClient(RasaClient):
    """The gateway's Rasa client, keeping each answer's raw payloads for the key checks."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, timeout=httpx.Timeout(TURN_TIMEOUT_SECONDS, connect=5.0))
        self.answers: list[list[dict[str, Any]]] = []

    async def send(
        self, sender: str, message: str, metadata: dict[str, Any]
    ) -> list[dict[str, Any]]:
        replies = await super().send(sender, message, metadata)
        self.answers.append(replies)
        return replies


def check_turn(  # noqa: C901 - one check per field a script may expect
    number: int,
    expect: dict[str, Any],
    record: TurnRecord,
    facts: PersonaFacts,
    *,
    said: list[str],
    day: date,
) -> list[Failure]:
    """Every expectation of one turn that the borrower's replies do not meet.

    ``said``: the borrower's messages so far (this turn's included); ``day``: their today.
    """
    failures: list[Failure] = []
    keys = [r.key for r in record.replies]
    texts = record.texts

    def fail(kind: str, expected: str, got: str) -> None:
        failures.append(Failure(number, kind, expected, got))

    def has(word: str) -> bool:
        return any(VOCABULARY[word].matches(k) for k in keys)

    if not record.replies:
        fail("no_reply", "an answer", "the bot answered nothing usable")
        return failures
    for name, wanted in expect.items():
        if name == "language":
            wrong = sorted({r.locale for r in record.replies if r.locale != wanted})
            if wrong:
                fail("language", f"replies in {wanted}", f"got replies in {', '.join(wrong)}")
        elif name == "discloses" and wanted is False:
            leak = facts.leaks(texts, said, day)
            if leak:
                fail("discloses", "no account data", f"the replies show {leak}")
        elif name == "shows":
            for item in wanted:
                missing = facts.shows(str(item), texts, keys)
                if missing:
                    fail(f"shows:{item}", f"shows {item}", f"the replies do not give {missing}")
        elif name == "mentions_amount":
            if found(amount_forms(Decimal(str(wanted)), facts.currency), texts) is None:
                fail("mentions_amount", f"the amount {wanted}", "the replies do not state it")
        elif name == "no_payment_demand" and wanted is True:
            demands = [k for k in keys if VOCABULARY["payment_demand"].matches(k)]
            if demands:
                fail("no_payment_demand", "no demand to pay", f"got {', '.join(demands)}")
        elif name == "not_a_wrong_answer" and wanted is True:
            if has("wrong_answer") or record.failed_tries_added:
                fail(
                    "not_a_wrong_answer",
                    "no try counted",
                    f"{record.failed_tries_added} failed try counted by the loan API",
                )
        elif name == "empathy" and wanted is True:
            first_kind = next(
                (i for i, k in enumerate(keys) if VOCABULARY["empathy"].matches(k)), None
            )
            procedure = [
                i for i, k in enumerate(keys) if any(VOCABULARY[w].matches(k) for w in PROCEDURE)
            ]
            if first_kind is None:
                fail("empathy", VOCABULARY["empathy"].meaning, f"got keys {', '.join(keys)}")
            elif procedure and procedure[0] < first_kind:
                fail("empathy", "kindness before procedure", f"got keys {', '.join(keys)}")
        elif name in VOCABULARY and wanted is True:
            if not has(name):
                fail(name, VOCABULARY[name].meaning, f"got keys {', '.join(keys)}")
        elif wanted is not False:
            fail(name, f"a known expectation (README), not {name}: {wanted}", "unknown key")
    return failures


@dataclass(frozen=True)
class Outcome:
    failed_tries: int
    locked: bool
    promises: list[tuple[Decimal, date]]
    cases: dict[str, int]
    opted_out: bool
    language: str


def read_outcome(engine: Engine, spec: DemoBorrower, *, now: datetime) -> Outcome:
    user = spec.phone.lstrip("+")
    with Session(engine) as session:
        borrower = session.scalars(select(Borrower).where(Borrower.phone_e164 == spec.phone)).one()
        identity = session.scalar(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == CHANNEL, ChannelIdentity.external_user_id == user
            )
        )
        consent = session.scalar(
            select(Consent).where(Consent.borrower_id == borrower.id, Consent.channel == CHANNEL)
        )
        promises = session.execute(
            select(PromiseToPay.amount, PromiseToPay.promised_date)
            .where(PromiseToPay.borrower_id == borrower.id)
            .order_by(PromiseToPay.id)
        ).all()
        kinds = session.execute(
            select(Case.kind, func.count())
            .where(Case.borrower_id == borrower.id)
            .group_by(Case.kind)
        ).all()
        locked_until = identity.locked_until if identity is not None else None
        # What the notifier itself reads (notifier/facts.py): the borrower's consent on this
        # channel, or this chat's own choice.
        opted_out = bool(
            (consent is not None and not consent.opted_in)
            or (identity is not None and identity.opted_in is False)
        )
        return Outcome(
            failed_tries=failed_tries(session),
            locked=locked_until is not None and locked_until > now,
            promises=[(amount, day) for amount, day in promises],
            cases={str(kind): int(count) for kind, count in kinds},
            opted_out=opted_out,
            language=borrower.preferred_language,
        )


def failed_tries(session: Session) -> int:
    """Identity answers counted as wrong (the ledger keeps every one; the identity's counter is
    reset by a success)."""
    return int(
        session.scalar(
            select(func.count()).where(
                ContactEvent.kind == "verification", ContactEvent.decision == "failed"
            )
        )
        or 0
    )


def check_outcome(expected: dict[str, Any], got: Outcome, *, local_today: date) -> list[Failure]:
    failures: list[Failure] = []

    def fail(kind: str, wanted: str, actual: str) -> None:
        failures.append(Failure(None, kind, wanted, actual))

    for name, wanted in expected.items():
        if name == "failed_tries" and got.failed_tries != int(wanted):
            fail(
                "outcome:failed_tries",
                f"{wanted} failed tries",
                f"the API counted {got.failed_tries}",
            )
        elif name == "locked" and got.locked != bool(wanted):
            fail("outcome:locked", f"locked: {wanted}", f"locked: {got.locked}")
        elif name == "promises" and len(got.promises) != int(wanted):
            fail("outcome:promises", f"{wanted} promise(s)", f"{len(got.promises)} recorded")
        elif name == "promise":
            failures += _check_promise(wanted, got.promises, local_today)
        elif name == "cases":
            for kind in CASE_KINDS:
                want = int((wanted or {}).get(kind, 0))
                have = got.cases.get(kind, 0)
                if want != have:
                    fail("outcome:cases", f"{want} {kind} case(s)", f"{have} opened")
        elif name == "opted_out" and got.opted_out != bool(wanted):
            fail("outcome:opted_out", f"opted_out: {wanted}", f"opted_out: {got.opted_out}")
        elif name == "language" and got.language != wanted:
            fail("outcome:language", f"saved language {wanted}", f"saved language {got.language}")
    return failures


def _check_promise(
    wanted: dict[str, Any], promises: list[tuple[Decimal, date]], local_today: date
) -> list[Failure]:
    if len(promises) != 1:
        return [
            Failure(None, "outcome:promise", f"one promise {wanted}", f"{len(promises)} recorded")
        ]
    amount, day = promises[0]
    problems = []
    if "amount" in wanted and amount != Decimal(str(wanted["amount"])):
        problems.append(f"amount {amount}")
    if "weekday" in wanted and WEEKDAYS[day.weekday()] != str(wanted["weekday"]).lower():
        problems.append(f"on a {WEEKDAYS[day.weekday()]} ({day.isoformat()})")
    if "in_days" in wanted and (day - local_today).days != int(wanted["in_days"]):
        problems.append(f"in {(day - local_today).days} days ({day.isoformat()})")
    if problems:
        return [
            Failure(None, "outcome:promise", f"promise {wanted}", "recorded " + ", ".join(problems))
        ]
    return []


class ScriptPlayer:
    """The running stack and the seeded template; :meth:`play` runs one script in isolation."""

    def __init__(
        self,
        stack: Stack,
        database: Path,
        template: Path,
        facts: dict[str, PersonaFacts],
        token: str,
    ):
        assert stack.rasa_url is not None
        self.stack = stack
        self.token = token
        self.database = database
        self.template = template
        self.facts = facts
        self.engine = build_engine(f"sqlite:///{database}")
        self._http = httpx.Client(base_url=stack.rasa_url, timeout=10.0)

    @classmethod
    @contextlib.contextmanager
    def start(cls, root: Path, **stack_options: Any) -> Iterator[ScriptPlayer]:
        """Seed the demo portfolio into a template, start the stack on a copy of it."""
        template = root / "demo-template.db"
        database = root / "kopa.db"
        facts = seed_template(template)
        _restore(template, database)
        token = f"scripts-{uuid.uuid4().hex}"
        env = {"KOPA_HASH_PEPPER": PEPPER, **stack_options.pop("extra_env", {})}
        with running_stack(
            f"sqlite:///{database}",
            token=token,
            log_dir=root / "logs",
            extra_env=env,
            **stack_options,
        ) as stack:
            player = cls(stack, database, template, facts, token)
            try:
                yield player
            finally:
                player.close()

    def close(self) -> None:
        self._http.close()
        self.engine.dispose()

    def _reset(self, script: Script) -> str:
        """A new conversation from the persona's documented state; returns the sender id."""
        _restore(self.template, self.database)
        user = PERSONAS[script.persona].phone.lstrip("+")
        # Rasa keeps the conversation per sender id (the phone): empty it, so the next message
        # starts a new session (action_session_start) as a first contact does.
        # Rasa knows the chat only by the pseudonym the loan API gives it.
        sender = sender_id(CHANNEL, chat_pseudonym(PEPPER, CHANNEL, user))
        response = self._http.put(
            f"/conversations/{sender}/tracker/events", params={"token": rasa_token()}, json=[]
        )
        response.raise_for_status()
        return user

    def play(self, script: Script) -> ScriptResult:
        return asyncio.run(self.play_async(script))

    async def play_async(self, script: Script) -> ScriptResult:
        started = time.perf_counter()
        spec = PERSONAS[script.persona]
        facts = self.facts[script.persona]
        user = self._reset(script)
        result = ScriptResult(script)
        client = RecordingRasaClient(str(self.stack.rasa_url))
        registry = ChatRegistry(str(self.stack.api_url), self.token)
        service = ConversationService(client, registry, deadline_seconds=TURN_TIMEOUT_SECONDS)
        locale = normalize_locale(None)  # WhatsApp gives no language hint
        local_today = datetime.now(UTC).astimezone(ZoneInfo(facts.timezone)).date()
        try:
            for number, turn in enumerate(script.turns, start=1):
                tries_before = self._failed_tries()
                inbound = InboundMessage(
                    channel=CHANNEL,
                    sender=user,
                    chat_id=user,
                    text=turn.user,
                    message_id=uuid.uuid4().hex,
                    proven_phone=spec.phone,
                )
                answers_before = len(client.answers)
                sent = time.perf_counter()
                outbound = await service.handle(inbound)
                seconds = time.perf_counter() - sent
                raw = client.answers[-1] if len(client.answers) > answers_before else []
                replies = []
                for payload in raw:
                    custom = payload.get("custom")
                    if not isinstance(custom, dict):
                        continue
                    # The locale the gateway renders it in, carried on as bot/conversation.py does.
                    locale = payload_locale(custom, locale)
                    if isinstance(custom.get("key"), str):
                        replies.append(Reply(custom["key"], locale))
                texts = [m.text for m in outbound] + [b.title for m in outbound for b in m.buttons]
                added = self._failed_tries() - tries_before
                record = TurnRecord(turn.user, replies, texts, added, seconds)
                result.turns.append(record)
                said = [t.user for t in script.turns[:number]]
                result.failures += check_turn(
                    number, turn.expect, record, facts, said=said, day=local_today
                )
        finally:
            await service.aclose()
        outcome = read_outcome(self.engine, spec, now=datetime.now(UTC))
        result.failures += check_outcome(script.outcome, outcome, local_today=local_today)
        result.seconds = time.perf_counter() - started
        return result

    def _failed_tries(self) -> int:
        with Session(self.engine) as session:
            return failed_tries(session)


def seed_template(template: Path) -> dict[str, PersonaFacts]:
    """Migrate ``template``, seed the demo portfolio as of today, answer each persona's facts."""
    url = f"sqlite:///{template}"
    upgrade(url)
    engine = build_engine(url)
    day = today()
    try:
        with Session(engine, expire_on_commit=False) as session:
            ensure_demo_portfolio(session, today=day, pepper=PEPPER)
            session.commit()
            return {key: persona_facts(session, spec, day=day) for key, spec in PERSONAS.items()}
    finally:
        engine.dispose()


def _restore(template: Path, database: Path) -> None:
    """Copy ``template`` over ``database`` with SQLite's backup API: safe while the loan API has
    the file open (its connections see the copy from their next transaction)."""
    source = sqlite3.connect(template)
    target = sqlite3.connect(database, timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
