"""Amount and date understanding for the promise-to-pay form, in English, French, Spanish, Swahili.

Pure functions, no I/O: ``parse_amount``, ``parse_date`` and ``parse_promise`` take the text a
borrower typed, the conversation language (tried first; the others follow, because borrowers
switch languages mid-sentence) and, for dates, the borrower's local ``today``. Each returns
None for what it did not understand, so the form can ask again in the borrower's language.

Examples (today = Sunday 2026-11-29)::

    parse_promise("1500 next friday", "en", today)
        -> (ParsedAmount(Decimal("1500"), None, None), ParsedDate(date(2026, 12, 4), "next friday"))
    parse_promise("nusu tarehe 15", "sw", today)
        -> (ParsedAmount(None, Fraction(1, 2), None), ParsedDate(date(2026, 12, 15), "tarehe 15"))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction

from actions.parsing.amounts import choose, currency_for, find_amounts
from actions.parsing.dates import DateMatch, bare_day, find_dates
from actions.parsing.text import Token, language_order, tokenize

__all__ = ["ParsedAmount", "ParsedDate", "parse_amount", "parse_date", "parse_promise"]


@dataclass(frozen=True)
class ParsedAmount:
    """An amount a borrower wrote: an absolute ``value`` or a ``fraction`` of what is owed.

    ``currency`` is the ISO 4217 code when the text names one ("ksh", "bob", "FCFA", "$"),
    resolved with the caller's hint where the word is ambiguous; None when the text names none.
    """

    value: Decimal | None
    fraction: Fraction | None
    currency: str | None


@dataclass(frozen=True)
class ParsedDate:
    """A calendar date a borrower wrote, and the words of the text it came from."""

    value: date
    matched: str


def _date_from(
    text: str, tokens: list[Token], matches: list[DateMatch], today: date
) -> ParsedDate | None:
    resolved: list[tuple[date, DateMatch]] = []
    for match in matches:
        value = match.resolve(today)
        if value is not None:
            resolved.append((value, match))
    if not resolved or len({value for value, _ in resolved}) > 1:
        # Nothing understood, or two different dates ("kesho au jumatatu"): ask again.
        return None
    value, match = resolved[0]
    matched = text[tokens[match.start].start : tokens[match.end - 1].end]
    return ParsedDate(value, matched)


def _amount_from(
    tokens: list[Token],
    languages: tuple[str, ...],
    matches: list[DateMatch],
    currency_hint: str | None,
) -> ParsedAmount | None:
    chosen = choose(find_amounts(tokens, languages, matches))
    if chosen is None:
        return None
    return ParsedAmount(chosen.value, chosen.fraction, currency_for(chosen, currency_hint))


def parse_amount(text: str, locale: str, currency_hint: str | None = None) -> ParsedAmount | None:
    """Read the amount in ``text``; date and time words are never taken as amounts.

    Args:
        text: what the borrower typed, e.g. "KSh 1,500 on the 15th" or "elfu moja na mia tano".
        locale: the conversation language ("en", "fr", "es", "sw"; "fr_SN" works too).
        currency_hint: the ISO code the borrower owes in; picks the meaning of "$" or "pesos".

    Returns:
        The amount, or None when there is none or the text gives two different ones.
    """
    tokens = tokenize(text)
    languages = language_order(locale)
    return _amount_from(tokens, languages, find_dates(tokens, languages), currency_hint)


def parse_date(
    text: str, locale: str, today: date, *, bare_number_is_day: bool = False
) -> ParsedDate | None:
    """Read the date in ``text`` as seen from the borrower's local ``today``.

    A bare weekday is the next one after today; a day of the month already past is next
    month's. A bare number is never a date, unless ``bare_number_is_day``.

    Args:
        text: what the borrower typed, e.g. "vendredi prochain", "el 15", "kesho".
        locale: the conversation language.
        today: the borrower's local date.
        bare_number_is_day: set it when the text answers "which day?": then a reply that is
            just a number from 1 to 31 ("15", "quince") means that day of the month.

    Returns:
        The date, or None when there is none or the text gives two different ones.
    """
    tokens = tokenize(text)
    languages = language_order(locale)
    matches = find_dates(tokens, languages)
    if not matches and bare_number_is_day:
        day = bare_day(tokens, languages)
        matches = [day] if day is not None else []
    return _date_from(text, tokens, matches, today)


def parse_promise(
    text: str, locale: str, today: date, currency_hint: str | None = None
) -> tuple[ParsedAmount | None, ParsedDate | None]:
    """Read both the amount and the date of a promise ("1500 next friday", "nusu kesho").

    Args:
        text: what the borrower typed.
        locale: the conversation language.
        today: the borrower's local date.
        currency_hint: the ISO code the borrower owes in.

    Returns:
        (amount or None, date or None).
    """
    tokens = tokenize(text)
    languages = language_order(locale)
    matches = find_dates(tokens, languages)
    return (
        _amount_from(tokens, languages, matches, currency_hint),
        _date_from(text, tokens, matches, today),
    )


def _warm_up() -> None:
    # Build the typo-tolerant word indexes now, so a borrower's first message is not the one
    # that pays for them (about 10 ms).
    parse_promise("1500 kesho", "en", date(2026, 1, 1))


_warm_up()
