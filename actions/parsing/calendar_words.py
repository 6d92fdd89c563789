"""Calendar words of each language: weekdays, months and ordinal days, with their abbreviations.

Abbreviations are read only in the conversation language (``primary``): many are everyday
words of another language.
"""

from __future__ import annotations

from collections.abc import Sequence

# What may follow a day's digits: 15th, 1er, 2e, 3eme, 1o.
ORDINAL_SUFFIXES = {"st", "nd", "rd", "th", "er", "re", "e", "eme", "ieme", "o", "a"}

_WEEKDAYS = {
    "en": "monday tuesday wednesday thursday friday saturday sunday",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche",
    "es": "lunes martes miercoles jueves viernes sabado domingo",
    "sw": "jumatatu jumanne jumatano alhamisi ijumaa jumamosi jumapili",
}
# Abbreviations are common words too ("mon" is French for "my"): conversation language only.
_WEEKDAY_ABBREVIATIONS = {
    "en": {
        "mon": 0,
        "tue": 1,
        "tues": 1,
        "wed": 2,
        "weds": 2,
        "thu": 3,
        "thur": 3,
        "thurs": 3,
        "fri": 4,
        "sat": 5,
        "sun": 6,
    },
    "fr": {"lun": 0, "ven": 4, "sam": 5, "dim": 6},
    "es": {"mie": 2, "vie": 4, "sab": 5, "dom": 6},
    "sw": {},
}
_MONTHS = {
    "en": "january february march april may june july august september october november december",
    "fr": "janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
    "sw": "januari februari machi aprili mei juni julai agosti septemba oktoba novemba desemba",
}
_MONTH_VARIANTS = {
    "en": {},
    "fr": {"fevrier": 2, "fev": 2},
    "es": {"setiembre": 9},
    "sw": {"disemba": 12, "agost": 8, "januari": 1, "febuari": 2},
}
_MONTH_ABBREVIATIONS = {
    "en": {
        "jan": 1,
        "feb": 2,
        "mar": 3,
        "apr": 4,
        "jun": 6,
        "jul": 7,
        "aug": 8,
        "sep": 9,
        "sept": 9,
        "oct": 10,
        "nov": 11,
        "dec": 12,
    },
    "fr": {"janv": 1, "fevr": 2, "avr": 4, "juil": 7, "oct": 10, "nov": 11, "dec": 12},
    "es": {"ene": 1, "feb": 2, "abr": 4, "ago": 8, "sept": 9, "oct": 10, "nov": 11, "dic": 12},
    "sw": {},
}

_EN_ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
).split()
ORDINAL_WORDS: dict[str, dict[str, int]] = {
    "en": {word: i + 1 for i, word in enumerate(_EN_ORDINALS)} | {"thirtieth": 30},
    "fr": {"premier": 1},
    "es": {"primero": 1},
    "sw": {},
}


def weekday_table(lang: str, *, primary: bool) -> dict[str, int]:
    """Weekday words of ``lang`` to 0 (Monday) .. 6; abbreviations only when ``primary``."""
    table = {word: i for i, word in enumerate(_WEEKDAYS[lang].split())}
    return table | _WEEKDAY_ABBREVIATIONS[lang] if primary else table


def month_table(lang: str, *, primary: bool) -> dict[str, int]:
    """Month words of ``lang`` to 1 .. 12; abbreviations only when ``primary``."""
    table = {word: i + 1 for i, word in enumerate(_MONTHS[lang].split())}
    table |= _MONTH_VARIANTS[lang]
    return table | _MONTH_ABBREVIATIONS[lang] if primary else table


def calendar_vocabulary(lang: str) -> set[str]:
    """Every weekday, month and ordinal word of ``lang`` (abbreviations excepted)."""
    words: set[str] = set(_WEEKDAYS[lang].split()) | set(_MONTHS[lang].split())
    return words | set(_MONTH_VARIANTS[lang]) | set(ORDINAL_WORDS[lang])


def month_number(word: str, languages: Sequence[str]) -> int | None:
    """The month a folded word names in any of ``languages`` (abbreviations only in the first).

    Used to read dates of birth, whose month borrowers write in full or abbreviated.
    """
    for rank, lang in enumerate(languages):
        month = month_table(lang, primary=rank == 0).get(word)
        if month is not None:
            return month
    return None
