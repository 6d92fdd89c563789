"""Currency words and symbols borrowers write next to amounts.

A word can stand for several currencies ("$" is also the peso sign, "shillings" are Kenyan,
Tanzanian or Ugandan, "francs" West or Central African or Rwandan). Each word carries the set of
ISO 4217 codes it can mean and, where one reading is by far the usual one, a default. The caller's
hint (the loan's currency) picks among the candidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_PESOS = frozenset({"MXN", "COP", "ARS", "CLP", "PHP", "DOP", "UYU", "CUP"})
_DOLLARS = frozenset({"USD", "CAD", "AUD", "LRD", "NAD", "ZWL"}) | _PESOS
_SHILLINGS = frozenset({"KES", "TZS", "UGX", "SOS"})
_CFA = frozenset({"XOF", "XAF"})
_FRANCS = _CFA | {"RWF", "BIF", "CDF", "GNF", "KMF", "DJF", "CHF"}


@dataclass(frozen=True)
class CurrencyWord:
    """What a currency word can mean."""

    candidates: frozenset[str]
    default: str | None


def _one(code: str) -> CurrencyWord:
    return CurrencyWord(frozenset({code}), code)


CURRENCY_WORDS: dict[str, CurrencyWord] = {
    # Kenya ("bob" is Kenyan slang for shillings, and BOB the boliviano's code).
    "ksh": _one("KES"),
    "kshs": _one("KES"),
    "kes": _one("KES"),
    "bob": CurrencyWord(frozenset({"KES", "BOB"}), "KES"),
    "sh": CurrencyWord(_SHILLINGS, "KES"),
    "shs": CurrencyWord(_SHILLINGS, "KES"),
    "/=": CurrencyWord(_SHILLINGS, "KES"),
    "shilling": CurrencyWord(_SHILLINGS, "KES"),
    "shillings": CurrencyWord(_SHILLINGS, "KES"),
    "shilingi": CurrencyWord(_SHILLINGS, "KES"),
    "tsh": _one("TZS"),
    "tshs": _one("TZS"),
    "tzs": _one("TZS"),
    "ush": _one("UGX"),
    "ushs": _one("UGX"),
    "ugx": _one("UGX"),
    # Francs.
    "cfa": CurrencyWord(_CFA, "XOF"),
    "fcfa": CurrencyWord(_CFA, "XOF"),
    "xof": _one("XOF"),
    "xaf": _one("XAF"),
    "franc": CurrencyWord(_FRANCS, "XOF"),
    "francs": CurrencyWord(_FRANCS, "XOF"),
    "frs": CurrencyWord(_FRANCS, "XOF"),
    "f": CurrencyWord(_FRANCS, "XOF"),
    "rwf": _one("RWF"),
    "frw": _one("RWF"),
    # Dollars and pesos: "$" is also the peso sign, so only the hint can say which peso.
    "$": CurrencyWord(_DOLLARS, "USD"),
    "usd": _one("USD"),
    "dollar": CurrencyWord(_DOLLARS - _PESOS, "USD"),
    "dollars": CurrencyWord(_DOLLARS - _PESOS, "USD"),
    "dolar": CurrencyWord(_DOLLARS - _PESOS, "USD"),
    "dolares": CurrencyWord(_DOLLARS - _PESOS, "USD"),
    "dola": CurrencyWord(_DOLLARS - _PESOS, "USD"),
    "peso": CurrencyWord(_PESOS, None),
    "pesos": CurrencyWord(_PESOS, None),
    "mxn": _one("MXN"),
    "cop": _one("COP"),
    "ars": _one("ARS"),
    "clp": _one("CLP"),
    "soles": _one("PEN"),
    "pen": _one("PEN"),
    "quetzal": _one("GTQ"),
    "quetzales": _one("GTQ"),
    "gtq": _one("GTQ"),
    "lempiras": _one("HNL"),
    "hnl": _one("HNL"),
    "bolivianos": _one("BOB"),
    # Elsewhere in Africa and beyond.
    "€": _one("EUR"),
    "eur": _one("EUR"),
    "euro": _one("EUR"),
    "euros": _one("EUR"),
    "£": _one("GBP"),
    "gbp": _one("GBP"),
    "₦": _one("NGN"),
    "ngn": _one("NGN"),
    "naira": _one("NGN"),
    "₵": _one("GHS"),
    "ghs": _one("GHS"),
    "cedis": _one("GHS"),
    "cedi": _one("GHS"),
    "etb": _one("ETB"),
    "birr": _one("ETB"),
    "zar": _one("ZAR"),
    "₹": _one("INR"),
    "inr": _one("INR"),
    "rupees": _one("INR"),
}


def currency_of(words: Iterable[str], hint: str | None) -> str | None:
    """The ISO code meant by the currency words next to one amount.

    Args:
        words: currency words, e.g. ["francs", "cfa"].
        hint: the currency the borrower owes in, if known.

    Returns:
        The hint when the words can mean it, else the most specific word's default, else None.
    """
    entries = [CURRENCY_WORDS[w] for w in words if w in CURRENCY_WORDS]
    if not entries:
        return None
    candidates = frozenset.intersection(*(entry.candidates for entry in entries))
    if not candidates:
        return None
    hint = hint.upper() if hint else None
    if hint in candidates:
        return hint
    for entry in sorted(entries, key=lambda entry: len(entry.candidates)):
        if entry.default in candidates:
            return entry.default
    return None
