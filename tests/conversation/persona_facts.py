"""A persona's account as seeded (what must not leak, what each ``shows`` item needs), and
the ways an amount or a date can be written in the text the borrower reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.parsing import parse_amount, parse_date
from api.models import Borrower, Branch, Installment, Loan, Payment
from i18n import SUPPORTED_LOCALES, babel_locale, format_money
from portfolio.demo import DemoBorrower
from tests.conversation.script_format import VOCABULARY, fold

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
    alternatives = sorted({fold(f) for f in forms if f}, key=len, reverse=True)
    # Not part of a longer number: no digit (or digit and separator) on either side.
    body = "|".join(re.escape(a) for a in alternatives)
    return re.compile(rf"(?<!\d)(?<!\d[.,/\u00a0\u202f '])(?:{body})(?![.,/\u00a0\u202f ']?\d)")


def found(forms: Iterable[str], texts: Iterable[str]) -> str | None:
    """The first text fragment among ``texts`` that writes one of ``forms``, else None."""
    pattern = _pattern(forms)
    for text in texts:
        match = pattern.search(fold(text))
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
