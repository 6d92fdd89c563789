"""How the promise parser behaves at the edges a borrower runs into.

Mixed languages, two answers in one message, amounts next to dates and times, currency words
whose meaning depends on the loan, calendar corners, and the time one parse takes.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actions.parsing import parse_amount, parse_date, parse_promise

TODAY = date(2026, 12, 9)  # a Wednesday
TOMORROW = date(2026, 12, 10)
NEXT_FRIDAY = date(2026, 12, 11)


@pytest.mark.parametrize(
    ("text", "locale", "value", "day"),
    [
        ("I'll pay elfu mbili kesho", "en", Decimal(2000), TOMORROW),
        ("je paie 2000 tomorrow", "fr", Decimal(2000), TOMORROW),
        ("nitalipa 1500 next friday", "sw", Decimal(1500), NEXT_FRIDAY),
        ("pagaré mil quinientos demain", "es", Decimal(1500), TOMORROW),
        ("nitalipa one thousand five hundred ijumaa", "sw", Decimal(1500), NEXT_FRIDAY),
    ],
)
def test_code_switched_text_is_understood(
    text: str, locale: str, value: Decimal, day: date
) -> None:
    amount, when = parse_promise(text, locale, TODAY)
    assert amount is not None and amount.value == value
    assert when is not None and when.value == day


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("très bien, merci", "fr"),  # Spanish "tres" is not read into French text
        ("je paierai une partie", "fr"),  # an article is not the amount 1
        ("moja kwa moja", "sw"),
        ("asante sana", "sw"),
        ("ok", "en"),
        ("", "es"),
        ("???", "en"),
    ],
)
def test_text_without_an_amount_gives_none(text: str, locale: str) -> None:
    assert parse_amount(text, locale) is None


def test_a_single_number_word_as_the_whole_answer_is_an_amount() -> None:
    assert parse_amount("moja", "sw") is not None


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("I can pay 1000 or 2000", "en"),
        ("elfu moja au elfu mbili", "sw"),
        ("1500 ou 2000", "fr"),
    ],
)
def test_two_different_amounts_are_ambiguous(text: str, locale: str) -> None:
    assert parse_amount(text, locale) is None


def test_the_same_amount_twice_is_one_amount_with_its_currency() -> None:
    amount = parse_amount("1500, yes KSh 1,500", "en")
    assert amount is not None
    assert (amount.value, amount.currency) == (Decimal(1500), "KES")


@pytest.mark.parametrize(
    ("text", "locale"),
    [("kesho au jumatatu", "sw"), ("demain ou lundi", "fr"), ("friday or monday", "en")],
)
def test_two_different_dates_are_ambiguous(text: str, locale: str) -> None:
    assert parse_date(text, locale, TODAY) is None


def test_a_weekday_and_its_matching_day_agree() -> None:
    parsed = parse_date("friday the 11th", "en", TODAY)
    assert parsed is not None and parsed.value == NEXT_FRIDAY


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("1500", "en"),
        ("15", "fr"),
        ("2026", "es"),
        ("15 000", "fr"),
        ("mil quinientos", "es"),
        ("elfu kumi na tano", "sw"),
        ("le 15 000", "fr"),
        ("el 15 mil", "es"),
    ],
)
def test_an_amount_is_never_read_as_a_date(text: str, locale: str) -> None:
    assert parse_date(text, locale, TODAY) is None


@pytest.mark.parametrize(
    ("text", "locale", "value"),
    [
        ("1500 in 3 days", "en", Decimal(1500)),
        ("elfu moja baada ya siku tatu", "sw", Decimal(1000)),
        ("500 dans 3 jours", "fr", Decimal(500)),
        ("500 en 3 días", "es", Decimal(500)),
        ("2000 kesho saa tatu na nusu asubuhi", "sw", Decimal(2000)),
        ("2000 demain à 15h30", "fr", Decimal(2000)),
        ("1000 at 3pm", "en", Decimal(1000)),
        ("mil a las 3", "es", Decimal(1000)),
        ("1500 on 15/12", "en", Decimal(1500)),
    ],
)
def test_numbers_in_dates_and_times_are_not_the_amount(
    text: str, locale: str, value: Decimal
) -> None:
    amount = parse_amount(text, locale)
    assert amount is not None and amount.value == value


@pytest.mark.parametrize(
    ("text", "hint", "currency"),
    [
        ("$500", None, "USD"),
        ("$500", "MXN", "MXN"),
        ("500 pesos", None, None),
        ("500 pesos", "COP", "COP"),
        ("500 bob", None, "KES"),
        ("500 bob", "BOB", "BOB"),
        ("15 000 F CFA", None, "XOF"),
        ("15 000 francs CFA", "XAF", "XAF"),
        ("500 ksh", "UGX", "KES"),  # the text names the currency; the hint cannot override it
        ("1500/=", "TZS", "TZS"),
        ("un millón de pesos", "ARS", "ARS"),
        ("1500", "KES", None),  # no currency written
    ],
)
def test_currency_words_resolve_with_the_hint(
    text: str, hint: str | None, currency: str | None
) -> None:
    amount = parse_amount(text, "es", currency_hint=hint)
    assert amount is not None
    assert amount.currency == currency


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("50%", Fraction(1, 2)), ("1/2", Fraction(1, 2)), ("3/4", Fraction(3, 4))],
)
def test_percentages_and_written_fractions(text: str, fraction: Fraction) -> None:
    amount = parse_amount(text, "en")
    assert amount is not None and amount.fraction == fraction and amount.value is None


@pytest.mark.parametrize(
    ("text", "locale", "matched"),
    [
        ("I will pay NEXT Friday please", "en", "NEXT Friday"),
        ("Après-demain, promis", "fr", "Après-demain"),
        ("nitalipa tarehe 15 Desemba 2026", "sw", "tarehe 15 Desemba 2026"),
        ("el próximo viernes!", "es", "el próximo viernes"),
    ],
)
def test_matched_gives_the_borrowers_own_words(text: str, locale: str, matched: str) -> None:
    parsed = parse_date(text, locale, TODAY)
    assert parsed is not None and parsed.matched == matched


@pytest.mark.parametrize("locale", ["fr_SN", "fr-FR", "FR"])
def test_locale_variants_select_the_language(locale: str) -> None:
    parsed = parse_date("lun", locale, TODAY)  # an abbreviation only read in French text
    assert parsed is not None and parsed.value == date(2026, 12, 14)


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("on the 31st", date(2026, 11, 5), date(2026, 12, 31)),  # November has no 31st
        ("29 February", date(2027, 3, 1), date(2028, 2, 29)),
        ("05/01", TODAY, date(2027, 1, 5)),  # already past this year
        ("12/25", TODAY, date(2026, 12, 25)),  # written month first
        ("2026-01-05", TODAY, date(2026, 1, 5)),  # explicit, even if past: the form refuses it
        ("end of the month", date(2027, 2, 10), date(2027, 2, 28)),
        ("fin du mois prochain", TODAY, date(2027, 1, 31)),
        ("in 2 months", date(2027, 12, 31), date(2028, 2, 29)),
        ("le 9", TODAY, TODAY),  # today is not past
    ],
)
def test_calendar_corners(text: str, today: date, expected: date) -> None:
    parsed = parse_date(text, "en" if text.isascii() else "fr", today)
    assert parsed is not None and parsed.value == expected


IN_N_DAYS = {
    "en": "in {} days",
    "fr": "dans {} jours",
    "es": "en {} días",
    "sw": "baada ya siku {}",
}
WEEKDAYS = {
    "en": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
    "sw": ["jumatatu", "jumanne", "jumatano", "alhamisi", "ijumaa", "jumamosi", "jumapili"],
}
DAYS = st.dates(min_value=date(2024, 1, 1), max_value=date(2035, 12, 31))
LOCALES = st.sampled_from(["en", "fr", "es", "sw"])


@settings(deadline=None)  # timing is tested on its own; CI machines are shared
@given(today=DAYS, n=st.integers(min_value=1, max_value=366), locale=LOCALES)
def test_in_n_days_counts_from_today(today: date, n: int, locale: str) -> None:
    parsed = parse_date(IN_N_DAYS[locale].format(n), locale, today)
    assert parsed is not None and parsed.value == today + timedelta(days=n)


@settings(deadline=None)  # timing is tested on its own; CI machines are shared
@given(today=DAYS, weekday=st.integers(min_value=0, max_value=6), locale=LOCALES)
def test_a_bare_weekday_is_the_next_one_after_today(today: date, weekday: int, locale: str) -> None:
    parsed = parse_date(WEEKDAYS[locale][weekday], locale, today)
    assert parsed is not None
    assert parsed.value.weekday() == weekday
    assert today < parsed.value <= today + timedelta(days=7)


DAY_OF_MONTH = {"en": "on the {}", "fr": "le {}", "es": "el {}", "sw": "tarehe {}"}


@settings(deadline=None)  # timing is tested on its own; CI machines are shared
@given(today=DAYS, day=st.integers(min_value=1, max_value=28), locale=LOCALES)
def test_a_day_of_month_is_never_in_the_past(today: date, day: int, locale: str) -> None:
    parsed = parse_date(DAY_OF_MONTH[locale].format(day), locale, today)
    assert parsed is not None
    assert parsed.value.day == day
    assert today <= parsed.value < today + timedelta(days=32)


SPEED_SAMPLES = [
    ("1500 next friday", "en"),
    ("je vais payer mille cinq cents francs CFA le 15 décembre si Dieu le veut", "fr"),
    ("nitalipa shilingi elfu kumi na tano tarehe 15 mwezi wa kumi na mbili saa nne asubuhi", "sw"),
    ("pagaré la mitad, o sea mil quinientos pesos, el próximo viernes por la mañana", "es"),
    ("half on the 15th", "en"),
    ("elfu moja na mia tano kesho kutwa", "sw"),
]


def test_a_parse_takes_well_under_10_ms() -> None:
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        for text, locale in SPEED_SAMPLES:
            parse_promise(text, locale, TODAY)
    mean_ms = (time.perf_counter() - start) / (rounds * len(SPEED_SAMPLES)) * 1000
    assert mean_ms < 5


@pytest.mark.parametrize(
    ("text", "locale", "expected"),
    [
        ("tomorow", "en", TOMORROW),  # a letter missing
        ("tommorow", "en", TOMORROW),  # one too many
        ("2moro", "en", TOMORROW),  # SMS spelling, not the amount 2
        ("vendredi prochin", "fr", NEXT_FRIDAY),
        ("apres demain", "fr", date(2026, 12, 11)),
        ("el proximo viernes", "es", NEXT_FRIDAY),
        ("thursday next week", "en", date(2026, 12, 17)),
        ("jeudi de la semaine prochaine", "fr", date(2026, 12, 17)),
        ("el jueves de la semana que viene", "es", date(2026, 12, 17)),
        ("alhamisi ya wiki ijayo", "sw", date(2026, 12, 17)),
        ("d'ici 2 semaines", "fr", date(2026, 12, 23)),
        ("dentro de 2 semanas", "es", date(2026, 12, 23)),
        ("I pay 1500 the 15", "en", date(2026, 12, 15)),
    ],
)
def test_typos_and_longer_date_phrases(text: str, locale: str, expected: date) -> None:
    parsed = parse_date(text, locale, TODAY)
    assert parsed is not None and parsed.value == expected


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("es cierto, ya pagué", "es"),  # "cierto" is not "ciento" (100)
        ("¿cuánto debo?", "es"),  # "cuánto" is not "cuarto" (a quarter)
        ("the money is there", "en"),  # "there" is not "three"
        ("pour la ville", "fr"),  # "ville" is not "mille"
    ],
)
def test_everyday_words_are_not_corrected_into_amounts(text: str, locale: str) -> None:
    assert parse_amount(text, locale) is None


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("I remain grateful", "fr"),  # not "demain"
        ("ya he pagado", "es"),  # not "pasado"
        ("ça marche", "fr"),
        ("mon salaire", "fr"),  # French "mon" is not Monday
        ("we will see", "fr"),
    ],
)
def test_everyday_words_are_not_read_as_dates(text: str, locale: str) -> None:
    assert parse_date(text, locale, TODAY) is None


@pytest.mark.parametrize(
    ("text", "locale", "expected"),
    [
        ("15", "en", date(2026, 12, 15)),
        ("5", "fr", date(2027, 1, 5)),
        ("quince", "es", date(2026, 12, 15)),
        ("kumi na tano", "sw", date(2026, 12, 15)),
        ("1500", "en", None),
        ("32", "en", None),
        ("elfu moja", "sw", None),
    ],
)
def test_a_bare_number_answering_which_day_is_the_day_of_month(
    text: str, locale: str, expected: date | None
) -> None:
    parsed = parse_date(text, locale, TODAY, bare_number_is_day=True)
    assert (parsed.value if parsed else None) == expected
    assert parse_date(text, locale, TODAY) is None


@pytest.mark.parametrize(
    ("text", "locale", "expected"),
    [
        ("I paid yesterday", "en", date(2026, 12, 8)),
        ("j'ai payé hier", "fr", date(2026, 12, 8)),
        ("pagué ayer", "es", date(2026, 12, 8)),
        ("nililipa jana", "sw", date(2026, 12, 8)),
        ("nililipa juzi", "sw", date(2026, 12, 7)),
        ("avant-hier", "fr", date(2026, 12, 7)),
        ("last friday", "en", date(2026, 12, 4)),
        ("vendredi dernier", "fr", date(2026, 12, 4)),
        ("el miércoles pasado", "es", date(2026, 12, 2)),  # today is a Wednesday
        ("ijumaa iliyopita", "sw", date(2026, 12, 4)),
    ],
)
def test_past_dates_for_reported_payments(text: str, locale: str, expected: date) -> None:
    parsed = parse_date(text, locale, TODAY)
    assert parsed is not None and parsed.value == expected


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("next month on the 5th", "en"),
        ("the 5th of next month", "en"),
        ("le 5 du mois prochain", "fr"),
        ("el 5 del mes que viene", "es"),
        ("nitalipa mwezi ujao tarehe 5", "sw"),
        ("tarehe 5 mwezi ujao", "sw"),
    ],
)
def test_a_day_of_next_month(text: str, locale: str) -> None:
    parsed = parse_date(text, locale, TODAY)
    assert parsed is not None and parsed.value == date(2027, 1, 5)


@pytest.mark.parametrize(
    ("text", "locale", "fraction"),
    [
        ("I'll pay the full amount on friday", "en", Fraction(1)),
        ("la totalité demain", "fr", Fraction(1)),
        ("todo lo que debo el lunes", "es", Fraction(1)),
        ("nitalipa yote kesho", "sw", Fraction(1)),
        ("nitalipa nusu ya deni", "sw", Fraction(1, 2)),
        ("two thirds", "en", Fraction(2, 3)),
        ("deux tiers", "fr", Fraction(2, 3)),
        ("la tercera parte", "es", Fraction(1, 3)),
        ("theluthi mbili", "sw", Fraction(2, 3)),
    ],
)
def test_shares_of_the_debt(text: str, locale: str, fraction: Fraction) -> None:
    amount = parse_amount(text, locale)
    assert amount is not None and amount.fraction == fraction and amount.value is None


PIECES = st.sampled_from(
    (
        "1500 1,5k 15/12 1/2 2026-12-15 12.10.2026 15h 10:30 % $ /= le el the on tarehe saa na "
        "et y de mil elfu mia half nusu kesho demain friday jumamosi next prochain proximo "
        "quatre vingt dix sept cent veinti kumi tano hundred a end of month mwisho wa mwezi ksh "
        "pesos fcfa 0 31 32"
    ).split()
)


@settings(deadline=None)
@given(
    words=st.lists(PIECES | st.text(max_size=6), max_size=12),
    locale=st.sampled_from(["en", "fr", "es", "sw", "xx", ""]),
    today=DAYS,
)
def test_any_text_parses_without_error(words: list[str], locale: str, today: date) -> None:
    amount, when = parse_promise(" ".join(words), locale, today, currency_hint="KES")
    if amount is not None:
        assert (amount.value is None) != (amount.fraction is None)
        assert amount.value is None or amount.value > 0
    if when is not None:
        assert when.matched
