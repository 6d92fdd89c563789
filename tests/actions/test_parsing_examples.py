"""What a borrower types in the promise-to-pay form, and what Kopa must read from it.

One table per language. ``TODAY`` is a Wednesday, so "wednesday" must mean next week's, and
"le 5" (already past this month) must mean 5 January of the next year.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from actions.parsing import ParsedAmount, parse_promise

TODAY = date(2026, 12, 9)  # a Wednesday
FRI, SAT, MON, WED_NEXT = (
    date(2026, 12, 11),
    date(2026, 12, 12),
    date(2026, 12, 14),
    date(2026, 12, 16),
)
TOMORROW, IN_2, IN_3 = date(2026, 12, 10), date(2026, 12, 11), date(2026, 12, 12)
THE_15TH, END_OF_MONTH = date(2026, 12, 15), date(2026, 12, 31)


def amount(
    value: str | None = None, fraction: Fraction | None = None, currency: str | None = None
) -> ParsedAmount:
    return ParsedAmount(Decimal(value) if value is not None else None, fraction, currency)


HALF, THIRD, THREE_QUARTERS = Fraction(1, 2), Fraction(1, 3), Fraction(3, 4)

# (text, currency hint, expected amount, expected date)
Case = tuple[str, str | None, ParsedAmount | None, date | None]

EN: list[Case] = [
    ("1500 next friday", None, amount("1500"), FRI),
    ("half on the 15th", None, amount(fraction=HALF), THE_15TH),
    ("1500 on the 15th", None, amount("1500"), THE_15TH),
    ("KSh 1,500 tomorrow", None, amount("1500", currency="KES"), TOMORROW),
    ("$500 today", None, amount("500", currency="USD"), TODAY),
    ("500 bob day after tomorrow", None, amount("500", currency="KES"), IN_2),
    ("1.5k in 3 days", None, amount("1500"), IN_3),
    ("2k next week", None, amount("2000"), WED_NEXT),
    ("one thousand five hundred on friday", None, amount("1500"), FRI),
    ("fifteen hundred by the end of the month", None, amount("1500"), END_OF_MONTH),
    ("a third on 2026-12-20", None, amount(fraction=THIRD), date(2026, 12, 20)),
    ("1500.50 on 15/12", None, amount("1500.50"), THE_15TH),
    ("1 500 shillings", "KES", amount("1500", currency="KES"), None),
    ("wednesday", None, None, WED_NEXT),
    ("this wednesday", None, None, TODAY),
    ("I'll pay 1,500 on the 5th", None, amount("1500"), date(2027, 1, 5)),
    ("December 24", None, None, date(2026, 12, 24)),
    ("tommorow", None, None, TOMORROW),
    ("on the twenty first", None, None, date(2026, 12, 21)),
    ("two thousand five hundred and fifty shillings", "TZS", amount("2550", currency="TZS"), None),
    ("three quarters in two weeks", None, amount(fraction=THREE_QUARTERS), date(2026, 12, 23)),
    ("1500 at 3pm tomorrow", None, amount("1500"), TOMORROW),
    ("a hundred thousand on saturday", None, amount("100000"), SAT),
]

FR: list[Case] = [
    ("1500 vendredi prochain", None, amount("1500"), FRI),
    ("vendredi prochin", None, None, FRI),
    ("la moitié le 15", None, amount(fraction=HALF), THE_15TH),
    ("1.500 demain", None, amount("1500"), TOMORROW),
    ("1 500 FCFA après-demain", None, amount("1500", currency="XOF"), IN_2),
    ("15 000 FCFA le 15 décembre", "XAF", amount("15000", currency="XAF"), THE_15TH),
    ("1,5k apres demain", None, amount("1500"), IN_2),
    ("mille cinq cents dans 3 jours", None, amount("1500"), IN_3),
    ("deux mille aujourd'hui", None, amount("2000"), TODAY),
    ("quatre-vingt-dix mille la semaine prochaine", None, amount("90000"), WED_NEXT),
    ("un tiers à la fin du mois", None, amount(fraction=THIRD), END_OF_MONTH),
    ("1500,50 le 1er janvier", None, amount("1500.50"), date(2027, 1, 1)),
    ("le 5", None, None, date(2027, 1, 5)),
    ("lundi", None, None, MON),
    ("ce mercredi", None, None, TODAY),
    ("je paie 2000 francs demain à 15h", None, amount("2000", currency="XOF"), TOMORROW),
    ("très bien, demain", None, None, TOMORROW),
    ("mille deux cents samedi", None, amount("1200"), SAT),
    ("soixante et onze mille le quinze", None, amount("71000"), THE_15TH),
]

ES: list[Case] = [
    ("el lunes", None, None, MON),
    ("mil quinientos pesos el próximo viernes", "MXN", amount("1500", currency="MXN"), FRI),
    ("1.500 mañana", None, amount("1500"), TOMORROW),
    ("manana", None, None, TOMORROW),
    ("pasado manana", None, None, IN_2),
    ("la mitad el 15", None, amount(fraction=HALF), THE_15TH),
    ("dos mil en 3 días", None, amount("2000"), IN_3),
    ("$500 hoy", "COP", amount("500", currency="COP"), TODAY),
    ("el 15 de diciembre", None, None, THE_15TH),
    ("quinientos la proxima semana", None, amount("500"), WED_NEXT),
    ("fin de mes", None, None, END_OF_MONTH),
    ("1,5k el viernes", None, amount("1500"), FRI),
    ("un tercio el 20", None, amount(fraction=THIRD), date(2026, 12, 20)),
    ("veinticinco mil el día 5", None, amount("25000"), date(2027, 1, 5)),
    ("este miércoles", None, None, TODAY),
    ("tres cuartos el sábado", None, amount(fraction=THREE_QUARTERS), SAT),
    ("doscientos cincuenta mil quinientos", None, amount("250500"), None),
    ("1.500,50 el viernes que viene", None, amount("1500.50"), FRI),
    ("mil quinientos pesos", None, amount("1500"), None),
]

SW: list[Case] = [
    ("kesho", None, None, TOMORROW),
    ("elfu moja na mia tano", None, amount("1500"), None),
    ("elfu mbili ijumaa", None, amount("2000"), FRI),
    ("mia tano leo", None, amount("500"), TODAY),
    ("elfu kumi na tano tarehe 15", None, amount("15000"), THE_15TH),
    ("nusu kesho kutwa", None, amount(fraction=HALF), IN_2),
    ("500 bob jumamosi ijayo", None, amount("500", currency="KES"), SAT),
    ("shilingi 1,500 baada ya siku tatu", "TZS", amount("1500", currency="TZS"), IN_3),
    ("tarehe 15 Desemba", None, None, THE_15TH),
    ("Desemba 15", None, None, THE_15TH),
    ("mwisho wa mwezi", None, None, END_OF_MONTH),
    ("nitalipa elfu mbili kesho saa nne asubuhi", None, amount("2000"), TOMORROW),
    ("robo tatu wiki ijayo", None, amount(fraction=THREE_QUARTERS), WED_NEXT),
    ("laki moja na elfu ishirini", None, amount("120000"), None),
    ("Ksh 2k jumatatu", None, amount("2000", currency="KES"), MON),
    ("tarehe kumi na tano", None, None, THE_15TH),
    ("theluthi moja tarehe 20", None, amount(fraction=THIRD), date(2026, 12, 20)),
    ("elfu 2 na mia 5", None, amount("2500"), None),
    ("jumatano", None, None, WED_NEXT),
    ("tarehe 5", None, None, date(2027, 1, 5)),
]

TABLE = [("en", *c) for c in EN] + [("fr", *c) for c in FR]
TABLE += [("es", *c) for c in ES] + [("sw", *c) for c in SW]


@pytest.mark.parametrize(
    ("locale", "text", "hint", "expected_amount", "expected_date"),
    TABLE,
    ids=[f"{row[0]}:{row[1]}" for row in TABLE],
)
def test_promise_examples(
    locale: str,
    text: str,
    hint: str | None,
    expected_amount: ParsedAmount | None,
    expected_date: date | None,
) -> None:
    parsed_amount, parsed_date = parse_promise(text, locale, TODAY, currency_hint=hint)
    assert parsed_amount == expected_amount
    assert (parsed_date.value if parsed_date else None) == expected_date
