"""What one script's turns and outcome are checked against, and what a played script gives.

Each turn's replies are checked twice: by *value*, on the text the borrower reads
(``ConversationService`` renders it with ``i18n.render`` in the reply's locale), for
``discloses``, ``shows``, ``mentions_amount``; and by *message key* for the rest, through
:data:`VOCABULARY`, the one table that says which keys express each word of the scripts'
vocabulary. After the last turn, ``outcome`` is checked against the loan API's database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.models import Borrower, Case, ChannelIdentity, Consent, ContactEvent, PromiseToPay
from portfolio.demo import DemoBorrower
from tests.conversation.persona_facts import PersonaFacts, amount_forms, found
from tests.conversation.script_format import (
    CASE_KINDS,
    CHANNEL,
    COMPLAINTS,
    PROCEDURE,
    VOCABULARY,
    WEEKDAYS,
    Script,
)


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
