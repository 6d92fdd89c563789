"""Answers to the identity check, read by their form (``actions.parsing.identity``)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.parsing.identity import (
    MIN_AGE_YEARS,
    read_identity_answer,
)

TODAY = date(2026, 12, 4)
BORN = date(1988, 5, 12)
MONTH_NAMES = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"],
    "sw": ["Januari", "Februari", "Machi", "Aprili", "Mei", "Juni", "Julai", "Agosti",
           "Septemba", "Oktoba", "Novemba", "Desemba"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "locale", "dob", "last4"),
    [
        ("12/05/1988", "en", BORN, None),
        ("12.05.1988", "fr", BORN, None),
        ("12-05-88", "sw", BORN, None),
        ("1988-05-12", "en", BORN, None),
        ("12 05 1988", "en", BORN, None),
        ("12 mai 1988", "fr", BORN, None),
        ("le 12 mai 1988", "fr", BORN, None),
        ("May 12, 1988", "en", BORN, None),
        ("12th of May 1988", "en", BORN, None),
        ("9 de mayo del 92", "es", date(1992, 5, 9), None),
        ("nací el 9 de mayo del 92", "es", date(1992, 5, 9), None),
        ("15 Machi 1990", "sw", date(1990, 3, 15), None),
        ("nilizaliwa tarehe 15 Machi 1990", "sw", date(1990, 3, 15), None),
        ("ok. my ID number is 28113307", "en", None, "3307"),
        ("CNI 1752198806150", "fr", None, "6150"),
        ("4821", "en", None, "4821"),
        (
            "mi número de cliente es 442794, nací el 9 de mayo del 92",
            "es",
            date(1992, 5, 9),
            "2794",
        ),
        ("ID 28113307 born 12/05/1988", "en", BORN, "3307"),
    ],
)
def test_answers_are_read_by_their_form(
    text: str, locale: str, dob: date | None, last4: str | None
) -> None:
    found = read_identity_answer(text, locale, TODAY)
    assert (found.dob, found.id_last4) == (dob, last4)
    assert not found.impossible_birth_date


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("ok thanks bye", "en"),
        ("and when is the next one due", "en"),
        ("asante sana", "sw"),
        ("oui", "fr"),
        ("sí, así está bien", "es"),
        ("10 000 FCFA", "fr"),
        ("KSh 1,500", "en"),
        ("1500 ksh", "en"),
        ("500 pesos el viernes", "es"),
        ("vendredi prochain", "fr"),
        ("le puedo dar 500 pesos el viernes y el resto en la quincena", "es"),
        ("mafuriko yamesomba duka langu, sina kitu", "sw"),
        ("my numbers are 12345 and 67890", "en"),  # two different IDs: which one?
    ],
)
def test_what_is_no_answer_gives_nothing(text: str, locale: str) -> None:
    found = read_identity_answer(text, locale, TODAY)
    assert (found.dob, found.id_last4, found.impossible_birth_date) == (None, None, False)


@pytest.mark.parametrize(
    ("text", "locale", "other_words"),
    [
        ("ok. my ID number is 28113307", "en", 0),
        ("CNI 1752198806150", "fr", 0),
        ("nací el 9 de mayo del 92", "es", 0),
        ("namba ya kitambulisho ni 30114821", "sw", 0),
        ("28113307, and when is the next one due?", "en", 4),
        ("je suis née le 12 mai 1988, je dois combien ?", "fr", 2),
    ],
)
def test_the_words_beside_an_answer_are_counted(text: str, locale: str, other_words: int) -> None:
    assert read_identity_answer(text, locale, TODAY).other_words == other_words


@pytest.mark.parametrize("text", ["12/05/2030", "1 January 2026", "3 mars 2020"])
def test_a_date_that_cannot_be_a_birth_date_is_told_apart(text: str) -> None:
    found = read_identity_answer(text, "fr", TODAY)
    assert (found.dob, found.impossible_birth_date) == (None, True)


def test_only_offered_factors_are_answers() -> None:
    found = read_identity_answer("28113307 12/05/1988", "en", TODAY)
    assert found.answers(["dob"]) == {"dob": "1988-05-12"}
    assert found.answers(["national_id"]) == {"national_id": "3307"}
    assert found.answers(["dob", "national_id"]) == {"dob": "1988-05-12", "national_id": "3307"}


birth_dates = st.dates(min_value=date(1920, 1, 1), max_value=date(2026 - MIN_AGE_YEARS, 1, 1))


@given(born=birth_dates, locale=st.sampled_from(sorted(MONTH_NAMES)), style=st.integers(0, 4))
def test_any_birth_date_written_any_common_way_is_read(born: date, locale: str, style: int) -> None:
    month = MONTH_NAMES[locale][born.month - 1]
    text = [
        f"{born.day:02d}/{born.month:02d}/{born.year}",
        f"{born.day}.{born.month}.{born.year}",
        f"{born.day} {month} {born.year}",
        f"{born.day} de {month} de {born.year}",
        born.isoformat(),
    ][style]
    assert read_identity_answer(text, locale, TODAY).dob == born


@given(
    digits=st.text("0123456789", min_size=4, max_size=16),
    prefix=st.sampled_from(
        ["", "ID ", "CNI ", "my ID number is ", "namba ya kitambulisho ", "mi cédula es "]
    ),
)
def test_an_id_number_is_read_for_its_last_four_digits(digits: str, prefix: str) -> None:
    assert read_identity_answer(prefix + digits, "en", TODAY).id_last4 == digits[-4:]


@given(text=st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=200))
def test_text_without_digits_is_never_an_id(text: str) -> None:
    assert read_identity_answer(text, "en", TODAY).id_last4 is None


@given(
    amount=st.integers(1, 999),
    thousands=st.integers(1, 99),
    currency=st.sampled_from(["FCFA", "ksh", "KES", "pesos", "shilingi"]),
)
def test_money_is_never_an_id(amount: int, thousands: int, currency: str) -> None:
    for text in (
        f"{thousands} {amount:03d} {currency}",
        f"{thousands},{amount:03d}",
        f"{currency} {thousands}{amount:03d}",
        f"{thousands}{amount:03d} {currency}",
    ):
        assert read_identity_answer(text, "fr", TODAY).id_last4 is None, text
