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
