"""The date patterns of each language: small token patterns ("next|coming? {wd}",
"tarehe {day} {mon}?"), each with the rule that gives its date.

Importing this module registers every word the patterns know with the typo-tolerant lexicon.
"""

from __future__ import annotations

from dataclasses import dataclass

from actions.parsing.calendar_words import calendar_vocabulary
from actions.parsing.date_rules import (
    Resolver,
    day_next_month,
    day_of_month,
    days_from_today,
    end_of_next_month,
    end_of_this_month,
    in_days,
    in_months,
    in_weeks,
    last_weekday,
    next_weekday,
    this_weekday,
    weekday_next_week,
    weekend,
)
from actions.parsing.text import register_words

Element = tuple[frozenset[str] | str, bool]  # (words, or a {slot} name), optional


@dataclass(frozen=True)
class Pattern:
    elements: tuple[Element, ...]
    resolve: Resolver
    first_words: frozenset[str]  # words the pattern can start with
    first_slots: frozenset[str]  # slots the pattern can start with


def _compile(spec: str, resolve: Resolver) -> Pattern:
    elements: list[Element] = []
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
    return Pattern(tuple(elements), resolve, frozenset(first_words), frozenset(first_slots))


_SPECS: dict[str, list[tuple[str, Resolver]]] = {
    "en": [
        ("today|tonight|tday|2day", days_from_today(0)),
        ("tomorrow|tmrw|tmr|tmw|tomoro|tommorrow|tomorrw", days_from_today(1)),
        ("the? day after tomorrow|tmrw|tmr", days_from_today(2)),
        ("yesterday|yday|ystdy", days_from_today(-1)),
        ("the? day before yesterday", days_from_today(-2)),
        ("on? last {wd}", last_weekday),
        ("in|within|after {n} day|days", in_days),
        ("{n} days from now|today", in_days),
        ("in|within|after {n} week|weeks", in_weeks),
        ("in|within|after a|one week", in_weeks),
        ("in|within|after {n} month|months", in_months),
        ("in|within|after a|one month", in_months),
        ("next|coming week", in_weeks),
        ("next|coming month", in_months),
        ("next|coming month on? the? {day}", day_next_month),
        ("on? the? {day} of? next month", day_next_month),
        ("on? this {wd}", this_weekday),
        ("on? this? next|coming? {wd}", next_weekday),
        ("on? {wd} the? {day} of? {mon}? {year}?", day_of_month),
        ("on? the? {day} of? {mon} {year}?", day_of_month),
        ("on? {mon} the? {day} {year}?", day_of_month),
        ("on|by|before? the {day}", day_of_month),
        ("on? {wd} next week", weekday_next_week),
        ("next week on? {wd}", weekday_next_week),
        ("on? the {dayord}", day_of_month),
        ("on? {dayth}", day_of_month),
        ("by|at|on? the? end of the? month", end_of_this_month),
        ("month end", end_of_this_month),
        ("eom", end_of_this_month),
        ("by|at|on? the? end of next month", end_of_next_month),
        ("this|the? weekend", weekend),
        ("this|the? week end", weekend),
    ],
    "fr": [
        ("aujourd hui?", days_from_today(0)),
        ("aujourdhui|auj|ajd|ce soir", days_from_today(0)),
        ("demain|dm1|dmain|dem1", days_from_today(1)),
        ("apres demain|dm1", days_from_today(2)),
        ("apresdemain", days_from_today(2)),
        ("hier", days_from_today(-1)),
        ("avant hier", days_from_today(-2)),
        ("avanthier", days_from_today(-2)),
        ("le? {wd} dernier", last_weekday),
        ("dans|sous {n} jour|jours|jrs|j", in_days),
        ("d ici {n} jour|jours|jrs|j", in_days),
        ("d ici {n} semaine|semaines|sem", in_weeks),
        ("dans|sous {n} semaine|semaines|sem", in_weeks),
        ("dans {n} mois", in_months),
        ("la? semaine prochaine|prochain", in_weeks),
        ("la? prochaine semaine", in_weeks),
        ("le? mois prochain", in_months),
        ("le? {day} du mois prochain", day_next_month),
        ("le? mois prochain le {day}", day_next_month),
        ("ce {wd}", this_weekday),
        ("le? {wd} prochain|prochaine", next_weekday),
        ("le? {wd} de? la? semaine prochaine", weekday_next_week),
        ("le? {wd} de? la? prochaine semaine", weekday_next_week),
        ("la? semaine prochaine le? {wd}", weekday_next_week),
        ("le? prochain|prochaine? {wd}", next_weekday),
        ("le? {wd} {day} {mon}? {year}?", day_of_month),
        ("le? {day} {mon} {year}?", day_of_month),
        ("le {day}", day_of_month),
        ("a? la? fin du|de? mois", end_of_this_month),
        ("a? la? fin du|de? mois prochain", end_of_next_month),
        ("ce? week end", weekend),
        ("ce? weekend", weekend),
    ],
    "es": [
        ("hoy", days_from_today(0)),
        ("manana|mnn", days_from_today(1)),
        ("pasado manana|mnn", days_from_today(2)),
        ("ayer", days_from_today(-1)),
        ("anteayer|antier", days_from_today(-2)),
        ("antes de ayer", days_from_today(-2)),
        ("el? {wd} pasado", last_weekday),
        ("en|dentro de? {n} dia|dias", in_days),
        ("en|dentro de? {n} semana|semanas", in_weeks),
        ("en|dentro de? {n} mes|meses", in_months),
        ("la? proxima semana", in_weeks),
        ("la? semana que viene", in_weeks),
        ("la? semana entrante|proxima", in_weeks),
        ("el? proximo mes", in_months),
        ("el? mes que viene", in_months),
        ("el? mes entrante|proximo", in_months),
        ("el? dia? {day} del mes que viene", day_next_month),
        ("el? dia? {day} del mes proximo|entrante", day_next_month),
        ("el? dia? {day} del proximo mes", day_next_month),
        ("este {wd}", this_weekday),
        ("el? proximo|proxima {wd}", next_weekday),
        ("el? {wd}", next_weekday),
        ("el? {wd} de la? semana que viene", weekday_next_week),
        ("el? {wd} de la? semana proxima|entrante", weekday_next_week),
        ("el? {wd} de la? proxima semana", weekday_next_week),
        ("el? {wd} que viene", next_weekday),
        ("el? {wd} entrante|proximo", next_weekday),
        ("el? {wd} {day} de? {mon}? de|del? {year}?", day_of_month),
        ("el? dia? {day} de {mon} de|del? {year}?", day_of_month),
        ("el? dia? {day} {mon} {year}?", day_of_month),
        ("el dia? {day}", day_of_month),
        ("a? fin|final|finales de|del mes", end_of_this_month),
        ("a? fin|final|finales de|del mes que viene", end_of_next_month),
        ("a? fin|final|finales de|del mes proximo|entrante", end_of_next_month),
        ("el? fin de semana", weekend),
        ("el? finde", weekend),
    ],
    "sw": [
        ("leo", days_from_today(0)),
        ("kesho", days_from_today(1)),
        ("kesho kutwa", days_from_today(2)),
        ("keshokutwa", days_from_today(2)),
        ("jana", days_from_today(-1)),
        ("juzi", days_from_today(-2)),
        ("siku? ya? {wd} iliyopita|uliopita", last_weekday),
        ("baada|ndani ya? siku {n}", in_days),
        ("baada|ndani ya? wiki {n}", in_weeks),
        ("baada|ndani ya? wiki", in_weeks),
        ("baada|ndani ya? mwezi|miezi {n}", in_months),
        ("baada|ndani ya? mwezi", in_months),
        ("wiki ijayo|inayokuja|ijao|ujao", in_weeks),
        ("mwezi ujao|unaokuja|ujayo", in_months),
        ("mwezi ujao|unaokuja|ujayo tarehe {day}", day_next_month),
        ("tarehe {day} mwezi|ya|wa? ujao|unaokuja|ujayo", day_next_month),
        ("tarehe {day} ya|wa mwezi ujao|unaokuja|ujayo", day_next_month),
        ("siku? ya? {wd} hii", this_weekday),
        ("siku? ya? {wd} ya? wiki ijayo|inayokuja|ijao", weekday_next_week),
        ("wiki ijayo|inayokuja|ijao siku? ya? {wd}", weekday_next_week),
        ("siku? ya? {wd} ijayo|inayokuja|ijao?", next_weekday),
        ("tarehe {day} mwezi? wa? {mon} {year}?", day_of_month),
        ("tarehe {day} mwezi wa? {monnum} {year}?", day_of_month),
        ("tarehe {day}", day_of_month),
        ("{mon} tarehe? {day} {year}?", day_of_month),
        ("{day} {mon} {year}?", day_of_month),
        ("mwisho wa mwezi huu?", end_of_this_month),
        ("mwisho wa mwezi ujao|unaokuja", end_of_next_month),
        ("mwisho wa wiki", weekend),
        ("wikendi|wikend", weekend),
    ],
}
PATTERNS: dict[str, list[Pattern]] = {
    lang: [_compile(spec, resolve) for spec, resolve in specs] for lang, specs in _SPECS.items()
}


def _vocabulary(lang: str) -> set[str]:
    words = calendar_vocabulary(lang)
    for pattern in PATTERNS[lang]:
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

for _lang in PATTERNS:
    register_words(_lang, _vocabulary(_lang), keep=_LOOK_ALIKES.get(_lang, ()))
