"""Telling distress in what a borrower writes, so that a person in difficulty meets sympathy
before procedure even when the NLU could not place the message."""

from __future__ import annotations

import re
import unicodedata

# Words of distress in the four languages (folded: no accents), for a message the NLU could not
# place: it is acknowledged as hardship, never answered with "I can't help with that".
DISTRESS_WORDS = (
    "lost my job", "no job", "sick", "hospital", "died", "funeral", "flood", "fire", "stolen",
    "nothing left", "can't pay", "cant pay", "cannot pay", "broke", "struggling", "desperate",
    "perdu mon travail", "chomage", "malade", "hopital", "deces", "inondation", "incendie",
    "vole", "plus rien", "peux pas payer", "galere",
    "perdi mi trabajo", "desempleado", "enfermo", "murio", "inundacion", "incendio", "robaron",
    "no tengo nada", "no puedo pagar",
    "nimefutwa", "sina kazi", "nimepoteza kazi", "mgonjwa", "hospitali", "amefariki", "msiba",
    "mafuriko", "kuibiwa", "nimeibiwa", "sina kitu", "sina pesa", "siwezi kulipa",
    "shida",
)  # fmt: skip
_DISTRESS = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in DISTRESS_WORDS) + r")\b")


def fold(text: str) -> str:
    """Lower case, no accents, plain apostrophes."""
    decomposed = unicodedata.normalize("NFKD", text.lower().replace("\u2019", "'"))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def sounds_like_distress(text: str) -> bool:
    return _DISTRESS.search(fold(text)) is not None


# Words of a borrower explaining a payment they missed or a promise they could not keep (folded):
# they hear a kind word before any question, whatever the NLU made of the message.
MISSED_PAYMENT_WORDS = (
    "couldn't pay", "could not pay", "wasn't able to pay", "was not able to pay", "came late",
    "paid late", "was late", "is late", "i know i said", "i promised", "i had promised",
    "pas pu payer", "n'ai pas pu", "j'avais promis", "avais promis", "a ete retarde",
    "ete retardee", "en retard",
    "no pude", "no me pagaron", "quede de pagar", "quede en pagar", "habia prometido",
    "se retraso", "me retrase",
    "sikuweza kulipa", "sikuweza", "nilichelewa", "imechelewa", "umechelewa", "niliahidi",
    "nilisema nitalipa",
)  # fmt: skip
_MISSED_PAYMENT = re.compile(
    r"\b(?:" + "|".join(re.escape(w) for w in MISSED_PAYMENT_WORDS) + r")\b"
)


def explains_missed_payment(text: str) -> bool:
    return _MISSED_PAYMENT.search(fold(text)) is not None


def kind_word_before_the_check(text: str) -> str | None:
    """The message key that acknowledges distress or a missed payment told in ``text``."""
    if sounds_like_distress(text):
        return "conv.hardship.sorry"
    if explains_missed_payment(text):
        return "conv.empathy.missed_payment"
    return None
