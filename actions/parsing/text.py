"""Normalisation, tokenisation and typo-tolerant word lookup shared by the amount and date parsers.

Borrowers type on phones: accents go missing, letters get doubled or dropped, languages mix.
Everything downstream works on accent-free lower-case tokens, and each token remembers where it
came from in the original text so a parser can report the words it understood.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

LANGUAGES: tuple[str, ...] = ("en", "fr", "es", "sw")

# Letters that Unicode decomposition leaves alone but phones produce.
_EXTRA_FOLDS = {"œ": "oe", "æ": "ae", "ß": "ss", "’": "'", "‘": "'", "`": "'", "ʼ": "'"}

_TOKEN_RE = re.compile(
    r"""
     (?P<iso>\d{4}-\d{1,2}-\d{1,2})(?!\d)
    |(?P<dmy>\d{1,2}(?P<sep>[/.-])\d{1,2}(?P=sep)\d{2,4})(?![\d/.-]\d)
    |(?P<dm>\d{1,2}/\d{1,2})(?![\d/])
    |(?P<time>\d{1,2}(?::\d{2}|h\d{2}|h(?![^\W\d_])))
    |(?P<word>2mor+o+w*|2day|dm1)  # SMS spellings that start with a digit
    |(?P<num>\d+(?:[.,' ]\d{3}(?!\d))*(?:[.,]\d+)?)
    |(?P<word2>[^\W\d_]+)
    |(?P<sym>/=|[$€£₦₵₹%])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    """One token of normalised text.

    ``kind`` is ``word``, ``num`` (digits, possibly with separators), ``iso`` (2026-12-15),
    ``dmy`` (15/12/2026), ``dm`` (15/12), ``time`` (10:30, 15h) or ``sym`` ($, %, /=).
    ``start``/``end`` index the original, un-normalised text.
    """

    kind: str
    text: str
    start: int
    end: int


def normalize(text: str) -> tuple[str, list[int]]:
    """Lower-case, fold accents and typographic quotes, and map every output char to its source.

    Returns:
        The folded text and, for each of its characters, the index of the original character.
    """
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = _EXTRA_FOLDS.get(char) or _EXTRA_FOLDS.get(char.lower())
        if folded is None:
            folded = unicodedata.normalize("NFKD", char.lower())
        for piece in folded:
            if unicodedata.combining(piece):
                continue
            out.append(piece)
            origin.append(index)
    return "".join(out), origin


def tokenize(text: str) -> list[Token]:
    """Split free text into tokens, keeping the original span of each."""
    folded, origin = normalize(text)
    tokens: list[Token] = []
    for match in _TOKEN_RE.finditer(folded):
        kind = match.lastgroup  # the outer group closes last, so never the inner "sep"
        assert kind is not None
        kind = "word" if kind == "word2" else kind
        start, end = match.span()
        tokens.append(Token(kind, match.group(), origin[start], origin[end - 1] + 1))
    return tokens


_INT_PART = re.compile(r"^(\d+(?:[.,' ]\d{3})*)(?:[.,](\d+))?$")


def number_value(text: str) -> Decimal | None:
    """The value of a ``num`` token.

    A separator followed by exactly three digits groups thousands in every language ("1,500",
    "1.500", "1 500"): none of the currencies we lend in has three decimal places, so reading
    "1.500" as one and a half would never be what a borrower meant. One or two digits after the
    last separator are decimals ("1500.50", "1500,5"). "0.500" keeps its decimal meaning.
    """
    match = _INT_PART.match(text)
    if match is None:
        return None
    whole, decimals = match.group(1), match.group(2)
    digits = re.sub(r"[.,' ]", "", whole)
    if decimals is None and whole != digits and re.fullmatch(r"0[.,]\d{3}", whole):
        return Decimal("0." + whole[2:])
    if decimals is not None and len(decimals) > 2 and whole == digits:
        # "1,2345" is not money as anyone writes it; keep the digits' plain decimal reading.
        return Decimal(f"{digits}.{decimals}")
    return Decimal(f"{digits}.{decimals}") if decimals else Decimal(digits)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _substitution_keys(word: str) -> set[str]:
    return {word[:i] + "*" + word[i + 1 :] for i in range(len(word))}


class Lexicon:
    """The words one language's grammars know, with one-typo tolerance for long words.

    A token that is not itself a known word maps to the single known word it is one typo away
    from: a letter missing ("prochin" -> "prochain", "ishrini" -> "ishirini"), one too many
    ("tommorow" -> "tomorrow"), or one wrong ("thousend" -> "thousand"). The length limits are
    set so that real words stay themselves: a wrong correction invents an amount or a date
    ("cierto" is not "ciento", "cuanto" is not "cuarto", "ville" is not "mille"), so short
    words, ambiguous corrections and the ``keep`` list are left as typed.
    """

    MIN_MISSING = 6  # token length for "a letter missing"
    MIN_OTHER = 7  # token length for "one too many" and "one wrong"

    def __init__(self, words: Iterable[str], keep: Iterable[str] = ()) -> None:
        self.words = frozenset(words)
        self._keep = frozenset(keep)
        self._by_deletion: dict[str, set[str]] = {}
        self._by_substitution: dict[str, set[str]] = {}
        for word in self.words:
            if len(word) + 1 >= self.MIN_MISSING:
                for key in _deletions(word):
                    self._by_deletion.setdefault(key, set()).add(word)
            if len(word) >= self.MIN_OTHER:
                for key in _substitution_keys(word):
                    self._by_substitution.setdefault(key, set()).add(word)
        self._cache: dict[str, str] = {}

    def canonical(self, token: str, *, fuzzy: bool = True) -> str:
        """The known word ``token`` stands for, or ``token`` itself."""
        if not fuzzy or token in self.words or token in self._keep:
            return token
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        result = token
        # Kinds of typo from most to least common; the first kind with one answer wins.
        for candidates in self._corrections(token):
            if len(candidates) == 1:
                result = next(iter(candidates))
                break
            if candidates:
                break
        if len(self._cache) < 10_000:
            self._cache[token] = result
        return result

    def _corrections(self, token: str) -> Iterator[set[str]]:
        if len(token) >= self.MIN_MISSING:  # a letter missing
            yield self._by_deletion.get(token, set())
        if len(token) >= self.MIN_OTHER:
            yield {key for key in _deletions(token) if key in self.words}  # one too many
            wrong: set[str] = set()  # one wrong
            for key in _substitution_keys(token):
                wrong |= self._by_substitution.get(key, set())
            yield wrong


def language_order(locale: str) -> tuple[str, ...]:
    """The conversation language first, then the others (text is often code-switched)."""
    primary = locale.replace("-", "_").split("_")[0].lower()
    if primary not in LANGUAGES:
        primary = "en"
    return (primary, *(lang for lang in LANGUAGES if lang != primary))


_REGISTERED: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}
_KEEP: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}
_LEXICONS: dict[str, Lexicon] = {}


def register_words(lang: str, words: Iterable[str], keep: Iterable[str] = ()) -> None:
    """Add words a grammar of ``lang`` knows; ``keep`` lists look-alikes never to correct."""
    _REGISTERED[lang].update(words)
    _KEEP[lang].update(keep)
    _LEXICONS.pop(lang, None)


def canonical_words(tokens: Iterable[Token], lang: str, *, fuzzy: bool) -> list[str | None]:
    """Each word token as the known ``lang`` word it stands for; None for other tokens.

    ``fuzzy`` corrects typos; it is meant for the conversation language only, where a near miss
    is far more likely a typo than a word of another language.
    """
    lexicon = _LEXICONS.get(lang)
    if lexicon is None:
        lexicon = _LEXICONS[lang] = Lexicon(_REGISTERED[lang], _KEEP[lang])
    out: list[str | None] = []
    for token in tokens:
        if token.kind != "word":
            out.append(None)
        elif token.text.startswith("2mor"):
            out.append("tomorrow")
        else:
            out.append(lexicon.canonical(token.text, fuzzy=fuzzy))
    return out
