"""Whole numbers written in words: English, French, Spanish and Swahili.

Small hand-written grammars rather than a library. ``text2num`` (installed) is fast (about
0.01 ms a call) and right for most English, French and Spanish, but has no Swahili, rejects the
correct Spanish "veintiún mil", and works on whole strings: these grammars instead stop exactly
where a number ends, so the words after it ("le 15", "saa tatu") stay free for the date and time
readers. Each reader is greedy, never raises, and answers ``None`` when the words at the
position do not start a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from actions.parsing.text import Token, number_value

# kind, value. Kinds: unit 1-9, teen 10-19, tens 20-90, small (a complete 16-29 word),
# hundred (x100 multiplier), hundreds (a complete 100-900 word), thousand, million,
# article (1 before a multiplier), join (and/et/y).
_Entry = tuple[str, int]

_EN_UNITS = "one two three four five six seven eight nine".split()
_EN_TEENS = (
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
)
_EN_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()

_FR_UNITS = "un deux trois quatre cinq six sept huit neuf".split()
_FR_TEENS = "dix onze douze treize quatorze quinze seize".split()
_ES_UNITS = "uno dos tres cuatro cinco seis siete ocho nueve".split()
_ES_TEENS = "diez once doce trece catorce quince".split()
_ES_SMALL = {
    "dieciseis": 16,
    "diecisiete": 17,
    "dieciocho": 18,
    "diecinueve": 19,
    "veinte": 20,
    "veintiuno": 21,
    "veintiun": 21,
    "veintiuna": 21,
    "veintidos": 22,
    "veintitres": 23,
    "veinticuatro": 24,
    "veinticinco": 25,
    "veintiseis": 26,
    "veintisiete": 27,
    "veintiocho": 28,
    "veintinueve": 29,
}
_ES_TENS = "treinta cuarenta cincuenta sesenta setenta ochenta noventa".split()
_ES_HUNDREDS = {
    "cien": 100,
    "ciento": 100,
    "doscientos": 200,
    "trescientos": 300,
    "cuatrocientos": 400,
    "quinientos": 500,
    "seiscientos": 600,
    "setecientos": 700,
    "ochocientos": 800,
    "novecientos": 900,
}

SW_UNITS = {
    "moja": 1,
    "mbili": 2,
    "tatu": 3,
    "nne": 4,
    "tano": 5,
    "sita": 6,
    "saba": 7,
    "nane": 8,
    "tisa": 9,
}
SW_TENS = {
    "kumi": 10,
    "ishirini": 20,
    "thelathini": 30,
    "arobaini": 40,
    "hamsini": 50,
    "sitini": 60,
    "sabini": 70,
    "themanini": 80,
    "tisini": 90,
}
SW_MAGNITUDES = {"milioni": 1_000_000, "laki": 100_000, "elfu": 1_000}


def _table() -> dict[str, dict[str, _Entry]]:
    en: dict[str, _Entry] = {w: ("unit", i + 1) for i, w in enumerate(_EN_UNITS)}
    en |= {w: ("teen", i + 10) for i, w in enumerate(_EN_TEENS)}
    en |= {w: ("tens", (i + 2) * 10) for i, w in enumerate(_EN_TENS)}
    en |= {"fourty": ("tens", 40), "ninty": ("tens", 90)}
    en |= {"hundred": ("hundred", 100), "hundreds": ("hundred", 100)}
    en |= {"thousand": ("thousand", 1000), "thousands": ("thousand", 1000)}
    en |= {"million": ("million", 1_000_000), "millions": ("million", 1_000_000)}
    en |= {"a": ("article", 1), "an": ("article", 1), "and": ("join", 0)}

    fr: dict[str, _Entry] = {w: ("unit", i + 1) for i, w in enumerate(_FR_UNITS)}
    fr |= {"une": ("unit", 1)}
    fr |= {w: ("teen", i + 10) for i, w in enumerate(_FR_TEENS)}
    fr |= {
        "vingt": ("tens", 20),
        "vingts": ("tens", 20),
        "trente": ("tens", 30),
        "quarante": ("tens", 40),
        "cinquante": ("tens", 50),
        "soixante": ("tens", 60),
        "septante": ("tens", 70),
        "huitante": ("tens", 80),
        "octante": ("tens", 80),
        "nonante": ("tens", 90),
    }
    fr |= {"cent": ("hundred", 100), "cents": ("hundred", 100)}
    fr |= {"mille": ("thousand", 1000), "mil": ("thousand", 1000), "milles": ("thousand", 1000)}
    fr |= {"million": ("million", 1_000_000), "millions": ("million", 1_000_000)}
    fr |= {"et": ("join", 0)}

    es: dict[str, _Entry] = {w: ("unit", i + 1) for i, w in enumerate(_ES_UNITS)}
    es |= {"un": ("unit", 1), "una": ("unit", 1)}
    es |= {w: ("teen", i + 10) for i, w in enumerate(_ES_TEENS)}
    es |= {w: ("small", v) for w, v in _ES_SMALL.items()}
    es |= {w: ("tens", (i + 3) * 10) for i, w in enumerate(_ES_TENS)}
    es |= {w: ("hundreds", v) for w, v in _ES_HUNDREDS.items()}
    es |= {w[:-2] + "as": ("hundreds", v) for w, v in _ES_HUNDREDS.items() if w.endswith("os")}
    es |= {"mil": ("thousand", 1000), "miles": ("thousand", 1000)}
    es |= {"millon": ("million", 1_000_000), "millones": ("million", 1_000_000)}
    es |= {"y": ("join", 0)}
    return {"en": en, "fr": fr, "es": es}


NUMBER_WORDS: dict[str, dict[str, _Entry]] = _table()
# Alone among other words, these are articles or idioms ("une partie", "moja kwa moja").
WEAK_SINGLE = {"one", "un", "une", "uno", "una", "moja"}
MULTIPLIER_WORDS: dict[str, int] = {
    "k": 1000,
    "thousand": 1000,
    "thousands": 1000,
    "mille": 1000,
    "mil": 1000,
    "elfu": 1000,
    "million": 1_000_000,
    "millions": 1_000_000,
    "millon": 1_000_000,
    "millones": 1_000_000,
    "milioni": 1_000_000,
    "laki": 100_000,
}


def vocabulary(lang: str) -> set[str]:
    """Every number word of ``lang`` (feeds the typo-tolerant lexicon)."""
    if lang == "sw":
        return {*SW_UNITS, *SW_TENS, *SW_MAGNITUDES, "mia", "na"}
    return set(NUMBER_WORDS[lang])


@dataclass(frozen=True)
class NumberMatch:
    """A number read from ``tokens[start:end]``; ``words`` counts its non-joining tokens."""

    value: int
    start: int
    end: int
    words: int


def _digit_int(token: Token | None, limit: int) -> int | None:
    if token is None or token.kind != "num":
        return None
    value = number_value(token.text)
    if value is None or value != value.to_integral_value() or not 0 < value < limit:
        return None
    return int(value)


def _word(words: Sequence[str | None], i: int) -> str | None:
    return words[i] if 0 <= i < len(words) else None


def read_number(
    lang: str, words: Sequence[str | None], tokens: Sequence[Token], i: int
) -> NumberMatch | None:
    """Read a number written in words in ``lang`` starting at token ``i``.

    Args:
        lang: "en", "fr", "es" or "sw".
        words: the canonical word of each token in ``lang`` (None for non-word tokens).
        tokens: the tokens themselves (Swahili accepts digits inside words: "elfu 2").
        i: where to start.

    Returns:
        The longest number starting at ``i``, or None.
    """
    if lang == "sw":
        return _read_swahili(words, tokens, i)
    return _read_western(lang, words, i)


_SMALL_KINDS = {"unit", "teen", "tens", "small"}


def _read_western(lang: str, words: Sequence[str | None], i: int) -> NumberMatch | None:  # noqa: C901 - one state machine over the words; its state would travel between helpers
    table = NUMBER_WORDS[lang]
    total = 0  # completed millions and thousands
    hundreds = 0  # the hundreds part (or "fifteen hundred") of the current group
    small = 0  # the 1-99 part of the current group
    last = ""  # kind of the last number word read
    last_value = 0
    thousands_done = millions_done = False
    count = 0
    end = i
    j = i
    while j < len(words):
        word = words[j]
        entry = table.get(word) if word is not None else None
        if entry is None:
            break
        kind, value = entry
        if kind == "join":
            if count == 0:
                break
            j += 1
            continue
        if kind == "article":
            nxt = table.get(_word(words, j + 1) or "")
            if nxt is None or nxt[0] not in ("hundred", "thousand", "million") or small:
                break
            kind, value = "unit", 1
        fresh = small == 0 and last not in _SMALL_KINDS
        if kind == "unit":
            if fresh:
                small = value
            elif last == "tens" and small % 10 == 0:
                small += value
            elif lang == "fr" and last == "teen" and last_value == 10 and value >= 7:
                small += value  # dix-sept, soixante-dix-neuf
            else:
                break
        elif kind == "teen":
            if fresh:
                small = value
            elif lang == "fr" and last == "tens" and small in (60, 80):
                small += value  # soixante-dix, quatre-vingt-onze
            else:
                break
        elif kind == "tens":
            if fresh:
                small = value
            elif lang == "fr" and value == 20 and last == "unit" and small == 4:
                small = 80  # quatre-vingt(s)
            else:
                break
        elif kind == "small":
            if not fresh:
                break
            small = value
        elif kind == "hundreds":
            if hundreds or not fresh:
                break
            hundreds = value
        elif kind == "hundred":
            if hundreds:
                break
            hundreds = (small or 1) * 100
            small = 0
        elif kind == "thousand":
            group = hundreds + small or 1
            if thousands_done or group >= 1000:
                break
            total += group * 1000
            hundreds = small = 0
            thousands_done = True
        elif kind == "million":
            group = hundreds + small or 1
            if millions_done or thousands_done or group >= 1000:
                break
            total += group * 1_000_000
            hundreds = small = 0
            millions_done = True
        last, last_value = kind, value
        count += 1
        j += 1
        end = j
    value = total + hundreds + small
    if count == 0 or value <= 0:
        return None
    return NumberMatch(value, i, end, count)


def _read_swahili(
    words: Sequence[str | None], tokens: Sequence[Token], i: int
) -> NumberMatch | None:
    """Swahili puts the multiplier first: "elfu moja na mia tano" is 1000x1 + 100x5.

    Grammar: [milioni N] [na] [laki N] [na] [elfu N] [na] [N], where N < 1000 is
    [mia U] [na] [kumi..tisini] [na] [U]. "na" is consumed only when a part follows it. A
    multiplier's N is read greedily, so "elfu kumi na tano" is 15 000 (how money is said), not
    10 005.
    """
    total = 0
    count = 0
    j = i

    def skip_na(k: int) -> int:
        return k + 1 if count and _word(words, k) == "na" else k

    for word, magnitude in SW_MAGNITUDES.items():
        k = skip_na(j)
        if _word(words, k) != word:
            continue
        part = _below_thousand(words, tokens, k + 1, allow_digits=True)
        multiplicand, after = (part[0], part[1]) if part else (1, k + 1)
        total += multiplicand * magnitude
        count += 1 + (part[2] if part else 0)
        j = after
    k = skip_na(j)
    rest = _below_thousand(words, tokens, k, allow_digits=count > 0)
    if rest is not None:
        total += rest[0]
        count += rest[2]
        j = rest[1]
    if count == 0 or total <= 0:
        return None
    return NumberMatch(total, i, j, count)


def _below_thousand(
    words: Sequence[str | None], tokens: Sequence[Token], i: int, *, allow_digits: bool
) -> tuple[int, int, int] | None:
    """Read N < 1000 at ``i``: (value, end, words read), or None.

    Digits count only after a multiplier ("elfu 2", "mia 5"): a bare "500" is the digit reader's.
    """
    digits = _digit_int(tokens[i] if i < len(tokens) else None, 1000) if allow_digits else None
    if digits is not None:
        return digits, i + 1, 1
    value = 0
    count = 0
    j = i
    if _word(words, j) == "mia":
        unit = SW_UNITS.get(_word(words, j + 1) or "")
        if unit is None:
            unit = _digit_int(tokens[j + 1] if j + 1 < len(tokens) else None, 10)
        value, count, j = (unit or 1) * 100, 1 + (unit is not None), j + 1 + (unit is not None)
    k = j + 1 if count and _word(words, j) == "na" else j
    tens = SW_TENS.get(_word(words, k) or "")
    if tens is not None:
        value, count, j = value + tens, count + 1, k + 1
    k = j + 1 if count and _word(words, j) == "na" else j
    unit = SW_UNITS.get(_word(words, k) or "")
    if unit is not None:
        value, count, j = value + unit, count + 1, k + 1
    if count == 0:
        return None
    return value, j, count
