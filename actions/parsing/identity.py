"""Answers to "who are you?": a date of birth or the last digits of an ID number, by their form.

A borrower asked to prove who they are writes the answer the way they know it: the whole card
number ("CNI 1752198806150"), a date in their language ("9 de mayo del 92", "15 Machi 1990"),
both at once, or something that is no answer at all ("asante", "10 000 FCFA", "next friday").
:func:`read_identity_answer` finds what is there, by form only: it never decides whether it is
right (the loan API does), and a message with nothing of the right form is no attempt, so it
must never cost the borrower a try.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from actions.parsing.calendar_words import month_number
from actions.parsing.text import Token, language_order, tokenize

DOB = "dob"
NATIONAL_ID = "national_id"
ID_DIGITS = 4
# Nobody old enough to borrow was born less than this many years ago, nor more than 110.
MIN_AGE_YEARS = 16
MAX_AGE_YEARS = 110
_LONGEST_ID = 20
# Words that may sit between a date's parts: "9 de mayo del 92", "15th of May", "le 12 mai".
_DATE_GLUE = frozenset({"de", "del", "of", "the", "mwaka", "wa", "ya", "an", "ano"})
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th", "er", "eme", "o", "a"})
# Words that make a nearby number money, not an ID ("10 000 FCFA", "ksh 1500", "500 pesos").
_MONEY_WORDS = frozenset(
    "ksh kes kshs bob shilingi shillings shilling sh fcfa cfa xof francs franc f pesos peso "
    "mxn mxp dollars usd euros eur".split()
)
# Words that only say what the answer is ("my ID number is", "nací el", "namba ya kitambulisho
# ni"), in the normalised form the tokenizer gives (lower case, no accents). A message made of an
# answer and these words asks nothing more, whatever intent the NLU gave it.
_ANSWER_WORDS = frozenset(
    """ok okay sure yes my id identity national card number no nr is its it s here the of a
    date birth born birthday dob i was am digits last four and on
    oui mon ma mes numero n cni carte d identite nationale c est voici je suis ne nee le la de
    du naissance piece chiffres derniers quatre et
    si mi es numero cedula ine curp identificacion credencial nacimiento naci el fecha soy aqui
    esta digitos ultimos cuatro y del
    ndio sawa namba nambari yangu ya kitambulisho ni nilizaliwa tarehe kuzaliwa mwaka wa hii
    hapa na tarakimu nne za mwisho""".split()
)

# Words that name an identity document or a birth (folded), "carte d'identité", "nací", "ID": a
# message with one of them and an answer of the right form offers that answer.
_IDENTITY_WORDS = frozenset(
    """id identity national card dob born birth birthday cni carte identite piece naissance nee
    ne cedula ine curp credencial identificacion nacimiento naci kitambulisho vitambulisho
    nilizaliwa kuzaliwa""".split()
)


@dataclass(frozen=True)
class IdentityAnswer:
    """What a message offers as an answer.

    ``dob``: a plausible date of birth. ``id_last4``: the last four digits of an ID number (or
    the four digits typed alone). ``impossible_birth_date``: the message holds a full date that
    cannot be a birth date (in the future, or a child's), which is a digression, not an answer.
    ``other_words``: how many words the message has besides the answer and the words naming it
    (none in "my ID number is 28113307"; "when is the next one due" in "28113307, when is the
    next one due?"). ``id_digits_only``: the ID answer was a number of just 4 digits, which
    may as well be an amount ("le abono 1300 mañana"). ``names_identity``: the message names an
    identity document or a birth ("ma carte d'identité finit par 6150").
    """

    dob: date | None = None
    id_last4: str | None = None
    impossible_birth_date: bool = False
    other_words: int = 0
    id_digits_only: bool = False
    names_identity: bool = False

    def answers(self, offered: Collection[str]) -> dict[str, str]:
        """The answers of an offered factor, as the loan API takes them."""
        found: dict[str, str] = {}
        if DOB in offered and self.dob is not None:
            found[DOB] = self.dob.isoformat()
        if NATIONAL_ID in offered and self.id_last4 is not None:
            found[NATIONAL_ID] = self.id_last4
        return found


def _century(two_digits: int, today: date) -> int:
    """92 → 1992, 05 → 2005 when that makes a borrower of age, else the century before."""
    year = 2000 + two_digits
    return year if year <= today.year - MIN_AGE_YEARS else 1900 + two_digits


def _year(token: Token | None, today: date) -> int | None:
    if token is None or token.kind != "num" or not token.text.isdigit():
        return None
    if len(token.text) == 2:
        return _century(int(token.text), today)
    if len(token.text) == 4:
        return int(token.text)
    return None


def _small(token: Token | None, limit: int) -> int | None:
    if token is None or token.kind != "num" or not token.text.isdigit() or len(token.text) > 2:
        return None
    value = int(token.text)
    return value if 1 <= value <= limit else None


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Found:
    value: date
    tokens: frozenset[int]


class _Reader:
    def __init__(self, tokens: Sequence[Token], languages: Sequence[str], today: date) -> None:
        self.tokens = tokens
        self.languages = languages
        self.today = today

    def at(self, i: int) -> Token | None:
        return self.tokens[i] if 0 <= i < len(self.tokens) else None

    def skip_glue(self, i: int) -> int:
        while (token := self.at(i)) is not None and (
            token.text in _DATE_GLUE or token.text in _ORDINAL_SUFFIXES or token.text == ","
        ):
            i += 1
        return i

    def month(self, i: int) -> int | None:
        token = self.at(i)
        if token is None or token.kind != "word":
            return None
        return month_number(token.text.rstrip("."), self.languages)

    def numeric(self, i: int) -> _Found | None:
        token = self.tokens[i]
        if token.kind == "iso":
            year, month, day = (int(part) for part in token.text.split("-"))
        elif token.kind == "dmy":
            parts = token.text.replace("/", "-").replace(".", "-").split("-")
            day, month = int(parts[0]), int(parts[1])
            if len(parts[2]) == 2:
                year = _century(int(parts[2]), self.today)
            elif len(parts[2]) == 4:
                year = int(parts[2])
            else:
                return None
        else:
            return None
        found = _valid(year, month, day)
        return _Found(found, frozenset({i})) if found else None

    def day_month_year(self, i: int) -> _Found | None:
        """``12 mai 1988``, ``9 de mayo del 92``, ``15th of May, 1990``, ``15 Machi 1990``."""
        day = _small(self.at(i), 31)
        if day is None:
            return None
        m = self.skip_glue(i + 1)
        month = self.month(m)
        if month is None:
            return None
        y = self.skip_glue(m + 1)
        year = _year(self.at(y), self.today)
        if year is None:
            return None
        found = _valid(year, month, day)
        return _Found(found, frozenset(range(i, y + 1))) if found else None

    def month_day_year(self, i: int) -> _Found | None:
        """``May 12, 1988``, ``mayo 9 del 92``."""
        month = self.month(i)
        if month is None:
            return None
        d = self.skip_glue(i + 1)
        day = _small(self.at(d), 31)
        if day is None:
            return None
        y = self.skip_glue(d + 1)
        year = _year(self.at(y), self.today)
        if year is None:
            return None
        found = _valid(year, month, day)
        return _Found(found, frozenset(range(i, y + 1))) if found else None

    def spaced(self, i: int) -> _Found | None:
        """``12 05 1988``: three numbers, day first, as written on forms."""
        day, month = _small(self.at(i), 31), _small(self.at(i + 1), 12)
        year = self.at(i + 2)
        if day is None or month is None or year is None or len(year.text) != 4:
            return None
        value = _year(year, self.today)
        found = _valid(value, month, day) if value else None
        return _Found(found, frozenset({i, i + 1, i + 2})) if found else None

    def dates(self) -> list[_Found]:
        found: list[_Found] = []
        i = 0
        while i < len(self.tokens):
            match = (
                self.numeric(i)
                or self.day_month_year(i)
                or self.month_day_year(i)
                or self.spaced(i)
            )
            if match is None:
                i += 1
                continue
            found.append(match)
            i = max(match.tokens) + 1
        return found


def _is_money(tokens: Sequence[Token], i: int) -> bool:
    near = [tokens[j] for j in (i - 1, i + 1) if 0 <= j < len(tokens)]
    return any(token.text in _MONEY_WORDS or token.kind == "sym" for token in near)


def _id_digits(tokens: Sequence[Token], used: frozenset[int]) -> str | None:
    """The last four digits of the one ID-like number (4 to 20 digits, no separators)."""
    candidates: set[str] = set()
    for i, token in enumerate(tokens):
        if i in used or token.kind != "num" or not token.text.isdigit():
            continue  # "10 000" or "1,500" are written like money, not like an ID
        if not ID_DIGITS <= len(token.text) <= _LONGEST_ID or _is_money(tokens, i):
            continue
        candidates.add(token.text[-ID_DIGITS:])
    return candidates.pop() if len(candidates) == 1 else None


def _age_years(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def read_identity_answer(text: str, locale: str, today: date) -> IdentityAnswer:
    """Find a date of birth and the last 4 ID digits in what a borrower typed.

    Args:
        text: the message, e.g. "nací el 9 de mayo del 92" or "CNI 1752198806150".
        locale: the conversation language (its month abbreviations are read; full month names
            of the four languages always are).
        today: the borrower's local date (a birth date is at least 16 years before it).

    Returns:
        What was found. A number with a currency or thousands separators is money, never ID
        digits; two different ID-like numbers or two different dates give neither.
    """
    tokens = tokenize(text[:500])
    reader = _Reader(tokens, language_order(locale), today)
    found = reader.dates()
    births = {
        f.value for f in found if MIN_AGE_YEARS <= _age_years(f.value, today) <= MAX_AGE_YEARS
    }
    impossible = any(f.value not in births for f in found)
    used = frozenset().union(*(f.tokens for f in found)) if found else frozenset()
    dob = births.pop() if len(births) == 1 else None
    id_last4 = _id_digits(tokens, used)
    return IdentityAnswer(
        dob=dob,
        id_last4=id_last4,
        id_digits_only=id_last4 is not None
        and any(token.text == id_last4 for token in tokens if token.kind == "num"),
        impossible_birth_date=impossible and dob is None,
        names_identity=any(token.text in _IDENTITY_WORDS for token in tokens),
        other_words=sum(
            1
            for i, token in enumerate(tokens)
            if token.kind == "word" and i not in used and token.text not in _ANSWER_WORDS
        ),
    )
