"""Dates in free text: English, French, Spanish and Swahili.

Mostly future dates (promises), but "yesterday", "hier", "jana", "last friday" give past dates
for reported payments; the promise form rejects those as past.

Each language has a list of small token patterns ("next|coming? {wd}", "tarehe {day} {mon}?")
with a rule that turns what they captured into a calendar date relative to the borrower's
``today``. Patterns never match a bare number, so an amount is never read as a date.

Why not ``dateparser``: measured on this machine, its first call per language takes 10-90 ms,
it reads "1500" as the year 1500, "le 15" as a day already past, and "vendredi prochain" and
"el lunes" not at all. These patterns answer in well under a millisecond.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from actions.parsing.currency import CURRENCY_WORDS
from actions.parsing.numbers import MULTIPLIER_WORDS, read_number, vocabulary
from actions.parsing.text import Token, canonical_words, register_words

Captures = dict[str, int]
Resolver = Callable[[Captures, date], "date | None"]

_ORDINAL_SUFFIXES = {"st", "nd", "rd", "th", "er", "re", "e", "eme", "ieme", "o", "a"}


# --- calendar arithmetic -------------------------------------------------------------------


def add_months(start: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last))


def _end_of_month(today: date, months_ahead: int = 0) -> date:
    first = add_months(today.replace(day=1), months_ahead)
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _weekday(today: date, weekday: int, *, include_today: bool) -> date:
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and not include_today:
        ahead = 7
    return today + timedelta(days=ahead)


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day_in_month(today: date, day: int) -> date | None:
    """The next date with this day of month, this month if it is not past, else later."""
    for ahead in range(13):
        first = add_months(today.replace(day=1), ahead)
        found = _valid(first.year, first.month, day)
        if found is not None and found >= today:
            return found
    return None


def _day_and_month(today: date, day: int, month: int, year: int | None) -> date | None:
    if year is not None:
        return _valid(year, month, day)
    for candidate_year in range(today.year, today.year + 9):
        found = _valid(candidate_year, month, day)
        if found is not None and found >= today:
            return found
    return None


# --- resolvers -----------------------------------------------------------------------------


def _days(n: int) -> Resolver:
    return lambda caps, today: today + timedelta(days=n)


def _in_days(caps: Captures, today: date) -> date | None:
    return today + timedelta(days=caps["n"]) if caps["n"] <= 366 else None


def _in_weeks(caps: Captures, today: date) -> date | None:
    return today + timedelta(weeks=caps.get("n", 1)) if caps.get("n", 1) <= 52 else None


def _in_months(caps: Captures, today: date) -> date | None:
    return add_months(today, caps.get("n", 1)) if caps.get("n", 1) <= 24 else None


def _next_weekday(caps: Captures, today: date) -> date:
    # A bare weekday is the next one after today: said on a Friday, "friday" is a week ahead.
    return _weekday(today, caps["wd"], include_today=False)


def _weekday_next_week(caps: Captures, today: date) -> date:
    next_monday = today + timedelta(days=7 - today.weekday())
    return next_monday + timedelta(days=caps["wd"])


def _last_weekday(caps: Captures, today: date) -> date:
    return today - timedelta(days=(today.weekday() - caps["wd"]) % 7 or 7)


def _this_weekday(caps: Captures, today: date) -> date:
    return _weekday(today, caps["wd"], include_today=True)


def _day_of_month(caps: Captures, today: date) -> date | None:
    if "mon" in caps:
        return _day_and_month(today, caps["day"], caps["mon"], caps.get("year"))
    return _day_in_month(today, caps["day"])


def _day_next_month(caps: Captures, today: date) -> date | None:
    first = add_months(today.replace(day=1), 1)
    return _valid(first.year, first.month, caps["day"])


def _end_of_this_month(caps: Captures, today: date) -> date:
    return _end_of_month(today)


def _end_of_next_month(caps: Captures, today: date) -> date:
    return _end_of_month(today, 1)


def _weekend(caps: Captures, today: date) -> date:
    return today if today.weekday() == 6 else _weekday(today, 5, include_today=True)


def _numeric(caps: Captures, today: date) -> date | None:
    day, month, year = caps["day"], caps["mon"], caps.get("year")
    if year is not None and year < 100:
        year += 2000
    if month > 12 and day <= 12:  # 12/25: written month first
        day, month = month, day
    return _day_and_month(today, day, month, year)


# --- vocabulary ----------------------------------------------------------------------------

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
_ORDINAL_WORDS: dict[str, dict[str, int]] = {
    "en": {word: i + 1 for i, word in enumerate(_EN_ORDINALS)} | {"thirtieth": 30},
    "fr": {"premier": 1},
    "es": {"primero": 1},
    "sw": {},
}


def _weekdays(lang: str, *, primary: bool) -> dict[str, int]:
    table = {word: i for i, word in enumerate(_WEEKDAYS[lang].split())}
    return table | _WEEKDAY_ABBREVIATIONS[lang] if primary else table


def _months(lang: str, *, primary: bool) -> dict[str, int]:
    table = {word: i + 1 for i, word in enumerate(_MONTHS[lang].split())}
    table |= _MONTH_VARIANTS[lang]
    return table | _MONTH_ABBREVIATIONS[lang] if primary else table


# --- patterns ------------------------------------------------------------------------------

_Element = tuple[frozenset[str] | str, bool]  # (words, or a {slot} name), optional


@dataclass(frozen=True)
class _Pattern:
    elements: tuple[_Element, ...]
    resolve: Resolver
    first_words: frozenset[str]  # words the pattern can start with
    first_slots: frozenset[str]  # slots the pattern can start with


def _compile(spec: str, resolve: Resolver) -> _Pattern:
    elements: list[_Element] = []
    for part in spec.split():
        optional = part.endswith("?")
        part = part.rstrip("?")
        if part.startswith("{"):
            elements.append((part.strip("{}"), optional))
        else:
            elements.append((frozenset(part.split("|")), optional))
    first_words: set[str] = set()
    first_slots: set[str] = set()
    for element, optional in elements:
        if isinstance(element, str):
            first_slots.add(element)
        else:
            first_words |= element
        if not optional:
            break
    return _Pattern(tuple(elements), resolve, frozenset(first_words), frozenset(first_slots))


_SPECS: dict[str, list[tuple[str, Resolver]]] = {
    "en": [
        ("today|tonight|tday|2day", _days(0)),
        ("tomorrow|tmrw|tmr|tmw|tomoro|tommorrow|tomorrw", _days(1)),
        ("the? day after tomorrow|tmrw|tmr", _days(2)),
        ("yesterday|yday|ystdy", _days(-1)),
        ("the? day before yesterday", _days(-2)),
        ("on? last {wd}", _last_weekday),
        ("in|within|after {n} day|days", _in_days),
        ("{n} days from now|today", _in_days),
        ("in|within|after {n} week|weeks", _in_weeks),
        ("in|within|after a|one week", _in_weeks),
        ("in|within|after {n} month|months", _in_months),
        ("in|within|after a|one month", _in_months),
        ("next|coming week", _in_weeks),
        ("next|coming month", _in_months),
        ("next|coming month on? the? {day}", _day_next_month),
        ("on? the? {day} of? next month", _day_next_month),
        ("on? this {wd}", _this_weekday),
        ("on? this? next|coming? {wd}", _next_weekday),
        ("on? {wd} the? {day} of? {mon}? {year}?", _day_of_month),
        ("on? the? {day} of? {mon} {year}?", _day_of_month),
        ("on? {mon} the? {day} {year}?", _day_of_month),
        ("on|by|before? the {day}", _day_of_month),
        ("on? {wd} next week", _weekday_next_week),
        ("next week on? {wd}", _weekday_next_week),
        ("on? the {dayord}", _day_of_month),
        ("on? {dayth}", _day_of_month),
        ("by|at|on? the? end of the? month", _end_of_this_month),
        ("month end", _end_of_this_month),
        ("eom", _end_of_this_month),
        ("by|at|on? the? end of next month", _end_of_next_month),
        ("this|the? weekend", _weekend),
        ("this|the? week end", _weekend),
    ],
    "fr": [
        ("aujourd hui?", _days(0)),
        ("aujourdhui|auj|ajd|ce soir", _days(0)),
        ("demain|dm1|dmain|dem1", _days(1)),
        ("apres demain|dm1", _days(2)),
        ("apresdemain", _days(2)),
        ("hier", _days(-1)),
        ("avant hier", _days(-2)),
        ("avanthier", _days(-2)),
        ("le? {wd} dernier", _last_weekday),
        ("dans|sous {n} jour|jours|jrs|j", _in_days),
        ("d ici {n} jour|jours|jrs|j", _in_days),
        ("d ici {n} semaine|semaines|sem", _in_weeks),
        ("dans|sous {n} semaine|semaines|sem", _in_weeks),
        ("dans {n} mois", _in_months),
        ("la? semaine prochaine|prochain", _in_weeks),
        ("la? prochaine semaine", _in_weeks),
        ("le? mois prochain", _in_months),
        ("le? {day} du mois prochain", _day_next_month),
        ("le? mois prochain le {day}", _day_next_month),
        ("ce {wd}", _this_weekday),
        ("le? {wd} prochain|prochaine", _next_weekday),
        ("le? {wd} de? la? semaine prochaine", _weekday_next_week),
        ("le? {wd} de? la? prochaine semaine", _weekday_next_week),
        ("la? semaine prochaine le? {wd}", _weekday_next_week),
        ("le? prochain|prochaine? {wd}", _next_weekday),
        ("le? {wd} {day} {mon}? {year}?", _day_of_month),
        ("le? {day} {mon} {year}?", _day_of_month),
        ("le {day}", _day_of_month),
        ("a? la? fin du|de? mois", _end_of_this_month),
        ("a? la? fin du|de? mois prochain", _end_of_next_month),
        ("ce? week end", _weekend),
        ("ce? weekend", _weekend),
    ],
    "es": [
        ("hoy", _days(0)),
        ("manana|mnn", _days(1)),
        ("pasado manana|mnn", _days(2)),
        ("ayer", _days(-1)),
        ("anteayer|antier", _days(-2)),
        ("antes de ayer", _days(-2)),
        ("el? {wd} pasado", _last_weekday),
        ("en|dentro de? {n} dia|dias", _in_days),
        ("en|dentro de? {n} semana|semanas", _in_weeks),
        ("en|dentro de? {n} mes|meses", _in_months),
        ("la? proxima semana", _in_weeks),
        ("la? semana que viene", _in_weeks),
        ("la? semana entrante|proxima", _in_weeks),
        ("el? proximo mes", _in_months),
        ("el? mes que viene", _in_months),
        ("el? mes entrante|proximo", _in_months),
        ("el? dia? {day} del mes que viene", _day_next_month),
        ("el? dia? {day} del mes proximo|entrante", _day_next_month),
        ("el? dia? {day} del proximo mes", _day_next_month),
        ("este {wd}", _this_weekday),
        ("el? proximo|proxima {wd}", _next_weekday),
        ("el? {wd}", _next_weekday),
        ("el? {wd} de la? semana que viene", _weekday_next_week),
        ("el? {wd} de la? semana proxima|entrante", _weekday_next_week),
        ("el? {wd} de la? proxima semana", _weekday_next_week),
        ("el? {wd} que viene", _next_weekday),
        ("el? {wd} entrante|proximo", _next_weekday),
        ("el? {wd} {day} de? {mon}? de|del? {year}?", _day_of_month),
        ("el? dia? {day} de {mon} de|del? {year}?", _day_of_month),
        ("el? dia? {day} {mon} {year}?", _day_of_month),
        ("el dia? {day}", _day_of_month),
        ("a? fin|final|finales de|del mes", _end_of_this_month),
        ("a? fin|final|finales de|del mes que viene", _end_of_next_month),
        ("a? fin|final|finales de|del mes proximo|entrante", _end_of_next_month),
        ("el? fin de semana", _weekend),
        ("el? finde", _weekend),
    ],
    "sw": [
        ("leo", _days(0)),
        ("kesho", _days(1)),
        ("kesho kutwa", _days(2)),
        ("keshokutwa", _days(2)),
        ("jana", _days(-1)),
        ("juzi", _days(-2)),
        ("siku? ya? {wd} iliyopita|uliopita", _last_weekday),
        ("baada|ndani ya? siku {n}", _in_days),
        ("baada|ndani ya? wiki {n}", _in_weeks),
        ("baada|ndani ya? wiki", _in_weeks),
        ("baada|ndani ya? mwezi|miezi {n}", _in_months),
        ("baada|ndani ya? mwezi", _in_months),
        ("wiki ijayo|inayokuja|ijao|ujao", _in_weeks),
        ("mwezi ujao|unaokuja|ujayo", _in_months),
        ("mwezi ujao|unaokuja|ujayo tarehe {day}", _day_next_month),
        ("tarehe {day} mwezi|ya|wa? ujao|unaokuja|ujayo", _day_next_month),
        ("tarehe {day} ya|wa mwezi ujao|unaokuja|ujayo", _day_next_month),
        ("siku? ya? {wd} hii", _this_weekday),
        ("siku? ya? {wd} ya? wiki ijayo|inayokuja|ijao", _weekday_next_week),
        ("wiki ijayo|inayokuja|ijao siku? ya? {wd}", _weekday_next_week),
        ("siku? ya? {wd} ijayo|inayokuja|ijao?", _next_weekday),
        ("tarehe {day} mwezi? wa? {mon} {year}?", _day_of_month),
        ("tarehe {day} mwezi wa? {monnum} {year}?", _day_of_month),
        ("tarehe {day}", _day_of_month),
        ("{mon} tarehe? {day} {year}?", _day_of_month),
        ("{day} {mon} {year}?", _day_of_month),
        ("mwisho wa mwezi huu?", _end_of_this_month),
        ("mwisho wa mwezi ujao|unaokuja", _end_of_next_month),
        ("mwisho wa wiki", _weekend),
        ("wikendi|wikend", _weekend),
    ],
}
_PATTERNS: dict[str, list[_Pattern]] = {
    lang: [_compile(spec, resolve) for spec, resolve in specs] for lang, specs in _SPECS.items()
}


def _vocabulary(lang: str) -> set[str]:
    words: set[str] = set(_WEEKDAYS[lang].split()) | set(_MONTHS[lang].split())
    words |= set(_MONTH_VARIANTS[lang]) | set(_ORDINAL_WORDS[lang])
    for pattern in _PATTERNS[lang]:
        for element, _ in pattern.elements:
            if isinstance(element, frozenset):
                words |= element
    return words


# Everyday words one typo away from a date word: never corrected.
_LOOK_ALIKES = {
    "en": {"remain", "marche", "weekly", "mondays", "fridays"},
    "fr": {"remain", "marche", "marches", "mairie"},
    "es": {"pagado", "pagada", "pagados", "pagadas", "pasada", "pasadas", "pasando", "entero"},
    "sw": set(),
}

for _lang in _PATTERNS:
    register_words(_lang, _vocabulary(_lang), keep=_LOOK_ALIKES.get(_lang, ()))


_NUMBER_VOCABULARY = {lang: frozenset(vocabulary(lang)) for lang in _PATTERNS}

# --- matching ------------------------------------------------------------------------------


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
        if attached and suffix is not None and suffix.text in _ORDINAL_SUFFIXES:
            end += 1
        elif ordinal_required:
            return None
    elif ctx.words[i] in _ORDINAL_WORDS[ctx.lang]:
        word = ctx.words[i]
        assert word is not None
        value = _ORDINAL_WORDS[ctx.lang][word]
    elif ctx.lang == "en" and ctx.words[i] in ("twenty", "thirty"):
        unit = ctx.words[i + 1] if i + 1 < len(ctx.words) else None
        if unit not in _ORDINAL_WORDS["en"] or _ORDINAL_WORDS["en"][unit] > 9:
            return None
        value = (20 if ctx.words[i] == "twenty" else 30) + _ORDINAL_WORDS["en"][unit]
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
    elements: Sequence[_Element], ctx: _Context, i: int, captures: Captures
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
    if word in _NUMBER_VOCABULARY[ctx.lang] or word in _ORDINAL_WORDS[ctx.lang]:
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
            _weekdays(lang, primary=rank == 0),
            _months(lang, primary=rank == 0),
        )
        for rank, lang in enumerate(languages)
    ]
    found: list[DateMatch] = []
    i = 0
    while i < len(tokens):
        numeric = _numeric_token(tokens[i])
        if numeric is not None:
            found.append(DateMatch(i, i + 1, "", tuple(numeric.items()), _numeric))
            i += 1
            continue
        best: DateMatch | None = None
        for ctx in contexts:
            word = ctx.words[i]
            slots = _possible_slots(ctx, i)
            for pattern in _PATTERNS[ctx.lang]:
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
            return DateMatch(0, 1, "", (("day", value),), _day_of_month)
        return None
    for rank, lang in enumerate(languages):
        words = canonical_words(tokens, lang, fuzzy=rank == 0)
        number = read_number(lang, words, tokens, 0) if tokens else None
        if number is not None and number.end == len(tokens) and number.value <= 31:
            return DateMatch(0, len(tokens), lang, (("day", number.value),), _day_of_month)
    return None


def month_number(word: str, languages: Sequence[str]) -> int | None:
    """The month a folded word names in any of ``languages`` (abbreviations only in the first).

    Used to read dates of birth, whose month borrowers write in full or abbreviated.
    """
    for rank, lang in enumerate(languages):
        month = _months(lang, primary=rank == 0).get(word)
        if month is not None:
            return month
    return None
