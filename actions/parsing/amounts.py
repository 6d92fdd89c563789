"""Amounts in free text: digits in every local style, number words, fractions of the debt.

The reader first hides what is not an amount (date expressions such as "on the 15th" or "baada
ya siku tatu", times such as "saa nne" or "3pm"), then collects every amount left. One amount,
or the same amount said twice, is the answer; two different amounts are ambiguous and give
None, so the form asks again instead of recording a promise the borrower did not make.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from actions.parsing.currency import CURRENCY_WORDS, currency_of
from actions.parsing.dates import DateMatch
from actions.parsing.numbers import (
    MULTIPLIER_WORDS,
    SW_UNITS,
    WEAK_SINGLE,
    read_number,
    vocabulary,
)
from actions.parsing.text import Token, canonical_words, number_value, register_words

_DENOMINATORS: dict[str, dict[str, int]] = {
    "en": {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4},
    "fr": {"moitie": 2, "demi": 2, "tiers": 3, "quart": 4, "quarts": 4},
    "es": {"mitad": 2, "tercio": 3, "tercios": 3, "cuarto": 4, "cuartos": 4},
    "sw": {"nusu": 2, "theluthi": 3, "robo": 4},
}
# Only "half" is safe to read in a language the conversation is not in ("tiers", "quart" and
# "cuarto" are everyday words elsewhere).
_HALVES = {"half", "moitie", "mitad", "nusu"}
_NUMERATORS: dict[str, dict[str, int]] = {
    "en": {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3},
    "fr": {"la": 1, "un": 1, "une": 1, "deux": 2, "trois": 3},
    "es": {"la": 1, "un": 1, "una": 1, "uno": 1, "dos": 2, "tres": 3},
    "sw": {"moja": 1, "mbili": 2, "tatu": 3},
}
# "la tercera parte", "la cuarta parte".
_ES_PARTS = {"tercera": 3, "cuarta": 4}
_WHOLE: dict[str, tuple[tuple[str, ...], ...]] = {
    "en": (("everything",), ("in", "full"), ("full", "amount"), ("whole", "amount")),
    "fr": (("totalite",), ("montant", "total"), ("tout", "le", "montant")),
    "es": (("totalidad",), ("monto", "total"), ("el", "total"), ("todo", "lo", "que", "debo")),
    "sw": (("yote",), ("deni", "lote"), ("kiasi", "chote"), ("zote",)),
}
_PERCENT_WORDS = {"percent", "pourcent", "porciento", "pct"}
_PERCENT_PAIRS = {("pour", "cent"), ("por", "ciento")}
_TIME_AFTER = {"am", "pm", "h", "hr", "hrs", "heure", "heures", "hora", "horas", "hs"}
_SW_TIME_OF_DAY = {"asubuhi", "mchana", "jioni", "usiku", "alfajiri"}
_CURRENCY_FILLERS = {"de", "za", "ya", "in"}

# Everyday words one typo away from a number or fraction word: never corrected.
_LOOK_ALIKES = {
    "es": {"cierto", "cierta", "cuanto", "cuantos", "cuanta", "cuantas", "cuentos", "cuartel"},
    "fr": {"cents", "quarts"},
    "en": {"forth", "there", "three"},
}

for _lang, _table in _DENOMINATORS.items():
    _vocab = set(_table) | set(_NUMERATORS[_lang]) | {w for p in _WHOLE[_lang] for w in p}
    _vocab |= vocabulary(_lang) | set(CURRENCY_WORDS) | _PERCENT_WORDS | _TIME_AFTER
    register_words(
        _lang,
        _vocab | (set(_ES_PARTS) | {"parte"} if _lang == "es" else set()),
        keep=_LOOK_ALIKES.get(_lang, ()),
    )


@dataclass(frozen=True)
class Candidate:
    """One amount found in the text; exactly one of ``value`` and ``fraction`` is set."""

    value: Decimal | None
    fraction: Fraction | None
    currency_words: tuple[str, ...]
    start: int
    end: int


class _Reader:
    def __init__(self, tokens: Sequence[Token], languages: Sequence[str], hidden: set[int]):
        self.tokens = tokens
        self.languages = languages
        self.hidden = hidden
        self.words: dict[str, list[str | None]] = {}
        for rank, lang in enumerate(languages):
            words = canonical_words(tokens, lang, fuzzy=rank == 0)
            self.words[lang] = [None if k in hidden else w for k, w in enumerate(words)]

    def word(self, lang: str, i: int) -> str | None:
        if i < 0 or i >= len(self.tokens):
            return None
        return self.words[lang][i]

    def raw(self, i: int) -> str | None:
        if i < 0 or i >= len(self.tokens) or i in self.hidden:
            return None
        return self.tokens[i].text

    def currency_around(self, start: int, end: int) -> tuple[str, ...]:
        found: list[str] = []
        i = start - 1
        while self.raw(i) in CURRENCY_WORDS and len(found) < 2:
            found.append(self.raw(i) or "")
            i -= 1
        j = end
        if self.raw(j) in _CURRENCY_FILLERS and self.raw(j + 1) in CURRENCY_WORDS:
            j += 1
        while self.raw(j) in CURRENCY_WORDS and len(found) < 4:
            found.append(self.raw(j) or "")
            j += 1
        return tuple(found)

    def percent_after(self, end: int) -> int | None:
        """Tokens after a number that make it a percentage: how many, or None."""
        if self.raw(end) == "%" or self.raw(end) in _PERCENT_WORDS:
            return 1
        if (self.raw(end), self.raw(end + 1)) in _PERCENT_PAIRS:
            return 2
        return None

    def candidates(self) -> list[Candidate]:
        found: list[Candidate] = []
        i = 0
        while i < len(self.tokens):
            if i in self.hidden:
                i += 1
                continue
            token = self.tokens[i]
            candidate = None
            if token.kind == "num":
                candidate = self._digits(i)
            elif token.kind == "dm":  # 1/2, 3/4: the date reader left these as fractions
                numerator, denominator = (int(p) for p in token.text.split("/"))
                if numerator > 0:
                    candidate = Candidate(None, Fraction(numerator, denominator), (), i, i + 1)
            elif token.kind == "word":
                candidate = self._words(i)
            if candidate is None:
                i += 1
                continue
            found.append(candidate)
            i = candidate.end
        return found

    def _digits(self, i: int) -> Candidate | None:
        value = number_value(self.tokens[i].text)
        if value is None:
            return None
        end = i + 1
        multiplier = MULTIPLIER_WORDS.get(self.raw(end) or "")
        if multiplier is not None:
            value *= multiplier
            end += 1
            if value == value.to_integral_value():
                value = Decimal(int(value))  # 1.5k is 1500, not 1500.0
        return self._finish(value, i, end)

    def _finish(self, value: Decimal, start: int, end: int) -> Candidate | None:
        percent = self.percent_after(end)
        if percent is not None:
            if not 0 < value <= 100:
                return None
            return Candidate(None, Fraction(value) / 100, (), start, end + percent)
        if value <= 0:
            return None
        return Candidate(value, None, self.currency_around(start, end), start, end)

    def _words(self, i: int) -> Candidate | None:
        best: Candidate | None = None
        for rank, lang in enumerate(self.languages):
            for candidate in (self._fraction(lang, i, primary=rank == 0), self._number(lang, i)):
                if candidate is None:
                    continue
                if rank > 0 and candidate.value is not None and candidate.end - i == 1:
                    # A lone small word in another language is usually a word of this one
                    # ("très" is not "tres").
                    if candidate.value < 100:
                        continue
                if best is None or candidate.end > best.end:
                    best = candidate
        return best

    def _number(self, lang: str, i: int) -> Candidate | None:
        visible = self.words[lang]
        if lang == "sw" and visible[i] == "asilimia":
            number = read_number(lang, visible, self.tokens, i + 1)
            value = number.value if number is not None else None
            if value is None and i + 1 < len(self.tokens) and self.tokens[i + 1].kind == "num":
                value = int(number_value(self.tokens[i + 1].text) or 0)
                number_end = i + 2
            else:
                number_end = number.end if number is not None else i + 1
            if value is None or not 0 < value <= 100:
                return None
            return Candidate(None, Fraction(value, 100), (), i, number_end)
        number = read_number(lang, visible, self.tokens, i)
        if number is None:
            return None
        if number.words == 1 and visible[i] in WEAK_SINGLE and len(self.tokens) > 1:
            # "une partie", "moja kwa moja": an article or idiom, unless it is the whole answer.
            return None
        return self._finish(Decimal(number.value), i, number.end)

    def _fraction(self, lang: str, i: int, *, primary: bool) -> Candidate | None:
        denominators = _DENOMINATORS[lang]
        word = self.word(lang, i)
        if word is None:
            return None
        for phrase in _WHOLE[lang] if primary else ():
            if all(self.word(lang, i + k) == part for k, part in enumerate(phrase)):
                return Candidate(None, Fraction(1), (), i, i + len(phrase))
        numerator, at = 1, i
        if lang == "sw":
            if word not in denominators:
                return None
            denominator, end = denominators[word], i + 1
            count = SW_UNITS.get(self.word(lang, end) or "")
            if count is not None and count < denominator:
                numerator, end = count, end + 1
        else:
            if word in _NUMERATORS[lang] and self.word(lang, i + 1) in denominators:
                numerator, at = _NUMERATORS[lang][word], i + 1
            elif lang == "es" and word == "la" and self.word(lang, i + 1) in _ES_PARTS:
                if self.word(lang, i + 2) != "parte":
                    return None
                part = _ES_PARTS[self.word(lang, i + 1) or ""]
                return Candidate(None, Fraction(1, part), (), i, i + 3)
            denominator_word = self.word(lang, at)
            if denominator_word not in denominators:
                return None
            denominator, end = denominators[denominator_word], at + 1
        if not primary and (self.word(lang, end - 1) not in _HALVES or numerator != 1):
            return None
        if numerator >= denominator:
            return None
        return Candidate(None, Fraction(numerator, denominator), (), i, end)


def hidden_tokens(tokens: Sequence[Token], languages: Sequence[str]) -> set[int]:
    """Indices of tokens that tell a time of day rather than an amount ("saa tatu", "3pm")."""
    hidden: set[int] = set()
    sw = canonical_words(tokens, "sw", fuzzy=languages[0] == "sw")
    for i, token in enumerate(tokens):
        nxt = tokens[i + 1].text if i + 1 < len(tokens) else None
        if token.kind == "time":
            hidden.add(i)
        elif token.kind == "num" and nxt in _TIME_AFTER:
            hidden.update((i, i + 1))
        elif token.text == "saa":
            number = read_number("sw", sw, tokens, i + 1)
            end = number.end if number is not None else i + 1
            if number is None and nxt is not None and tokens[i + 1].kind == "num":
                end = i + 2
            if end == i + 1:
                continue
            if (
                end + 1 < len(tokens)
                and tokens[end].text == "na"
                and sw[end + 1]
                in (
                    "nusu",
                    "robo",
                )
            ):
                end += 2
            if end < len(tokens) and tokens[end].text in _SW_TIME_OF_DAY:
                end += 1
            hidden.update(range(i, end))
        elif token.text in ("at", "las") and tokens[i + 1 : i + 2]:
            after = tokens[i + 1]
            value = number_value(after.text) if after.kind == "num" else None
            if value is not None and value <= 24:
                hidden.update((i, i + 1))
    return hidden


def find_amounts(
    tokens: Sequence[Token], languages: Sequence[str], dates: Sequence[DateMatch]
) -> list[Candidate]:
    """Every amount in ``tokens`` outside the given date expressions and times of day."""
    hidden = hidden_tokens(tokens, languages)
    for match in dates:
        hidden.update(range(match.start, match.end))
    return _Reader(tokens, languages, hidden).candidates()


def choose(candidates: Sequence[Candidate]) -> Candidate | None:
    """The one amount meant, or None when there is none or several disagree.

    An absolute amount wins over a fraction ("half, so 1500"); the same amount said twice is
    one amount, and the mention with a currency beside it is preferred.
    """
    absolute = [c for c in candidates if c.value is not None]
    if len({c.value for c in absolute}) > 1:
        return None
    if absolute:
        return next((c for c in absolute if c.currency_words), absolute[0])
    fractions = {c.fraction for c in candidates if c.fraction is not None}
    if len(fractions) == 1:
        return next(c for c in candidates if c.fraction is not None)
    return None


def currency_for(candidate: Candidate, hint: str | None) -> str | None:
    """The ISO currency written next to ``candidate``, if any."""
    return currency_of(candidate.currency_words, hint)
