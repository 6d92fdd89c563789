"""Dates in free text: English, French, Spanish and Swahili.

Mostly future dates (promises), but "yesterday", "hier", "jana", "last friday" give past dates
for reported payments; the promise form rejects those as past.

Each language has a list of small token patterns ("next|coming? {wd}", "tarehe {day} {mon}?",
in :mod:`actions.parsing.date_patterns`) with a rule (:mod:`actions.parsing.date_rules`) that
turns what they captured into a calendar date relative to the borrower's ``today``; the words
they name are in :mod:`actions.parsing.calendar_words`. This module finds them in a message.
Patterns never match a bare number, so an amount is never read as a date.

Why not ``dateparser``: measured on this machine, its first call per language takes 10-90 ms,
it reads "1500" as the year 1500, "le 15" as a day already past, and "vendredi prochain" and
"el lunes" not at all. These patterns answer in well under a millisecond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from actions.parsing.calendar_words import (
    ORDINAL_SUFFIXES,
    ORDINAL_WORDS,
    month_table,
    weekday_table,
)
from actions.parsing.currency import CURRENCY_WORDS
from actions.parsing.date_patterns import PATTERNS, Element
from actions.parsing.date_rules import Captures, Resolver, day_of_month, numeric_date
from actions.parsing.numbers import MULTIPLIER_WORDS, read_number, vocabulary
from actions.parsing.text import Token, canonical_words

_NUMBER_VOCABULARY = {lang: frozenset(vocabulary(lang)) for lang in PATTERNS}


@dataclass(frozen=True)
class DateMatch:
    """Tokens ``start:end`` say a date; ``resolve(today)`` gives it (None if impossible)."""

    start: int
    end: int
    lang: str
    captures: tuple[tuple[str, int], ...]
    rule: Resolver

    def resolve(self, today: date) -> date | None:
        """The calendar date these words mean, seen from ``today``."""
        return self.rule(dict(self.captures), today)


@dataclass
class _Context:
    lang: str
    words: Sequence[str | None]
    tokens: Sequence[Token]
    weekdays: dict[str, int]
    months: dict[str, int]


def _int_token(token: Token, limit: int) -> int | None:
    if token.kind != "num" or not token.text.isdigit():
        return None
    value = int(token.text)
    return value if 0 < value <= limit else None


def _slot(name: str, ctx: _Context, i: int) -> tuple[int, int] | None:
    """Read slot ``name`` at token ``i``: (value, end) or None."""
    if i >= len(ctx.tokens):
        return None
    token, word = ctx.tokens[i], ctx.words[i]
    if name == "wd":
        return (ctx.weekdays[word], i + 1) if word in ctx.weekdays else None
    if name == "mon":
        return (ctx.months[word], i + 1) if word in ctx.months else None
    if name == "year":
        if token.kind == "num" and token.text.isdigit() and 1900 <= int(token.text) <= 2199:
            return int(token.text), i + 1
        return None
    if name == "dayth":  # 15th, 1er: digits with an ordinal ending, never a bare word
        return _day(ctx, i, ordinal_required=True) if token.kind == "num" else None
    if name in ("day", "dayord"):
        return _day(ctx, i, ordinal_required=name == "dayord")
    limit = {"n": 999, "monnum": 12}[name]
    value = _int_token(token, limit)
    if value is not None:
        return value, i + 1
    if word is None:
        return None
    number = read_number(ctx.lang, ctx.words, ctx.tokens, i)
    if number is None or number.value > limit:
        return None
    return number.value, number.end


def _day(ctx: _Context, i: int, *, ordinal_required: bool) -> tuple[int, int] | None:
    token = ctx.tokens[i]
    value = _int_token(token, 31) if len(token.text) <= 2 else None
    end = i + 1
    if value is not None:
        suffix = ctx.tokens[end] if end < len(ctx.tokens) else None
        attached = suffix is not None and suffix.start == token.end and suffix.kind == "word"
        if attached and suffix is not None and suffix.text in ORDINAL_SUFFIXES:
            end += 1
        elif ordinal_required:
            return None
    elif ctx.words[i] in ORDINAL_WORDS[ctx.lang]:
        word = ctx.words[i]
        assert word is not None
        value = ORDINAL_WORDS[ctx.lang][word]
    elif ctx.lang == "en" and ctx.words[i] in ("twenty", "thirty"):
        unit = ctx.words[i + 1] if i + 1 < len(ctx.words) else None
        if unit not in ORDINAL_WORDS["en"] or ORDINAL_WORDS["en"][unit] > 9:
            return None
        value = (20 if ctx.words[i] == "twenty" else 30) + ORDINAL_WORDS["en"][unit]
        end = i + 2
    elif ordinal_required or ctx.words[i] is None:
        return None
    else:
        number = read_number(ctx.lang, ctx.words, ctx.tokens, i)
        if number is None or number.value > 31:
            return None
        value, end = number.value, number.end
    if value is None or value > 31:
        return None
    # "le 15 000", "el 15 mil", "the 15 dollars": an amount, not a day.
    if end < len(ctx.tokens):
        after = ctx.tokens[end]
        if after.text in MULTIPLIER_WORDS or after.text in CURRENCY_WORDS:
            return None
    return value, end


_CAPTURE_NAME = {"dayord": "day", "dayth": "day", "monnum": "mon", "day": "day", "mon": "mon"}
_CAPTURE_NAME |= {"wd": "wd", "year": "year", "n": "n"}


def _match(
    elements: Sequence[Element], ctx: _Context, i: int, captures: Captures
) -> tuple[int, Captures] | None:
    """The longest way ``elements`` match from token ``i``."""
    if not elements:
        return i, captures
    (element, optional), rest = elements[0], elements[1:]
    best: tuple[int, Captures] | None = None
    if isinstance(element, str):
        slot = _slot(element, ctx, i)
        if slot is not None:
            best = _match(rest, ctx, slot[1], captures | {_CAPTURE_NAME[element]: slot[0]})
    elif i < len(ctx.words) and (
        ctx.words[i] in element or (ctx.tokens[i].kind == "sym" and ctx.tokens[i].text in element)
    ):
        best = _match(rest, ctx, i + 1, captures)
    if optional:
        skipped = _match(rest, ctx, i, captures)
        if skipped is not None and (best is None or skipped[0] > best[0]):
            best = skipped
    return best


def _numeric_token(token: Token) -> Captures | None:
    if token.kind not in ("iso", "dmy", "dm"):
        return None
    parts = [int(p) for p in token.text.replace(".", "/").replace("-", "/").split("/")]
    if token.kind == "iso":
        return {"year": parts[0], "mon": parts[1], "day": parts[2]}
    if token.kind == "dmy":
        return {"day": parts[0], "mon": parts[1], "year": parts[2]}
    if token.kind == "dm":
        day, month = parts
        # 1/2, 1/3, 2/3, 1/4, 3/4 are fractions of the debt, not dates.
        if month <= 4 and day < month:
            return None
        return {"day": day, "mon": month}
    return None


_NUMBER_SLOTS = frozenset({"n", "day", "dayord", "dayth", "monnum", "year"})


def _possible_slots(ctx: _Context, i: int) -> frozenset[str]:
    token, word = ctx.tokens[i], ctx.words[i]
    if token.kind == "num":
        return _NUMBER_SLOTS
    if word is None:
        return frozenset()
    if word in ctx.weekdays:
        return frozenset({"wd"})
    if word in ctx.months:
        return frozenset({"mon"})
    if word in _NUMBER_VOCABULARY[ctx.lang] or word in ORDINAL_WORDS[ctx.lang]:
        return _NUMBER_SLOTS
    return frozenset()


def find_dates(tokens: Sequence[Token], languages: Sequence[str]) -> list[DateMatch]:
    """Every date expression in ``tokens``, left to right, never overlapping.

    At each position the longest pattern wins; on a tie the earlier language in ``languages``
    (the conversation language comes first) wins.
    """
    contexts = [
        _Context(
            lang,
            canonical_words(tokens, lang, fuzzy=rank == 0),
            tokens,
            weekday_table(lang, primary=rank == 0),
            month_table(lang, primary=rank == 0),
        )
        for rank, lang in enumerate(languages)
    ]
    found: list[DateMatch] = []
    i = 0
    while i < len(tokens):
        numeric = _numeric_token(tokens[i])
        if numeric is not None:
            found.append(DateMatch(i, i + 1, "", tuple(numeric.items()), numeric_date))
            i += 1
            continue
        best: DateMatch | None = None
        for ctx in contexts:
            word = ctx.words[i]
            slots = _possible_slots(ctx, i)
            for pattern in PATTERNS[ctx.lang]:
                # Most patterns cannot start here; checking that first keeps a parse fast.
                if word not in pattern.first_words and not (slots & pattern.first_slots):
                    continue
                result = _match(pattern.elements, ctx, i, {})
                if result is None or result[0] == i:
                    continue
                end, captures = result
                if best is None or end > best.end:
                    best = DateMatch(i, end, ctx.lang, tuple(captures.items()), pattern.resolve)
        if best is None:
            i += 1
            continue
        found.append(best)
        i = best.end
    return found


def bare_day(tokens: Sequence[Token], languages: Sequence[str]) -> DateMatch | None:
    """The whole text is one number from 1 to 31 ("15", "quince", "kumi na tano"), as a day.

    Only for a reply to "which day?": anywhere else a bare number is an amount.
    """
    if len(tokens) == 1 and tokens[0].kind == "num" and tokens[0].text.isdigit():
        value = int(tokens[0].text)
        if 1 <= value <= 31:
            return DateMatch(0, 1, "", (("day", value),), day_of_month)
        return None
    for rank, lang in enumerate(languages):
        words = canonical_words(tokens, lang, fuzzy=rank == 0)
        number = read_number(lang, words, tokens, 0) if tokens else None
        if number is not None and number.end == len(tokens) and number.value <= 31:
            return DateMatch(0, len(tokens), lang, (("day", number.value),), day_of_month)
    return None
