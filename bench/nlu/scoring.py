"""Scores of one pipeline's predictions: what a borrower notices, per language and intent."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from actions.session import guesses, hardship_likely

LANGUAGES = ("en", "fr", "es", "sw")
OTHER_LANGUAGES = "other_languages"
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
OTHER_LANGUAGE = "other_language"


@dataclass(frozen=True)
class Scores:
    """What a borrower notices, for one pipeline on one language (or all of them)."""

    examples: int
    intent_accuracy: float
    in_scope_accuracy: float
    macro_f1: float
    out_of_scope_recall: float
    in_scope_fallback_rate: float
    in_scope_bare_fallback_rate: float
    language_entity_accuracy: float | None


def bare_fallback(row: dict[str, Any]) -> bool:
    """A fallback the dialogue can offer no guess for (``actions/session.py``): the reply only
    says what the bot can do. With a guess it asks "Did you mean…" (or, for an account question
    before the identity check, starts the check and answers the likeliest); with hardship among
    the top intents it acknowledges the difficulty first."""
    if row["predicted"] != FALLBACK:
        return False
    ranking = [(FALLBACK, row["confidence"]), *((name, c) for name, c in row.get("ranking", []))]
    return not guesses(ranking) and not hardship_likely(ranking)


def effective(predicted: str) -> str:
    return OUT_OF_SCOPE if predicted == FALLBACK else predicted


def share(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def per_intent_f1(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    f1s = {}
    for label in sorted({row["intent"] for row in rows}):
        tp = sum(1 for r in rows if r["intent"] == label and effective(r["predicted"]) == label)
        fp = sum(1 for r in rows if r["intent"] != label and effective(r["predicted"]) == label)
        fn = sum(1 for r in rows if r["intent"] == label and effective(r["predicted"]) != label)
        f1s[label] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return f1s


def score(rows: Sequence[dict[str, Any]]) -> Scores:
    """Score predictions; each row has ``intent``, ``predicted`` and the language entity pair."""
    f1s = per_intent_f1(rows)
    out_of_scope = [r for r in rows if r["intent"] == OUT_OF_SCOPE]
    in_scope = [r for r in rows if r["intent"] != OUT_OF_SCOPE]
    with_entity = [r for r in rows if r.get("language_entity")]
    return Scores(
        examples=len(rows),
        intent_accuracy=share(
            sum(effective(r["predicted"]) == r["intent"] for r in rows), len(rows)
        ),
        in_scope_accuracy=share(
            sum(r["predicted"] == r["intent"] for r in in_scope), len(in_scope)
        ),
        macro_f1=sum(f1s.values()) / len(f1s) if f1s else 0.0,
        out_of_scope_recall=share(
            sum(effective(r["predicted"]) == OUT_OF_SCOPE for r in out_of_scope), len(out_of_scope)
        ),
        in_scope_fallback_rate=share(
            sum(r["predicted"] == FALLBACK for r in in_scope), len(in_scope)
        ),
        in_scope_bare_fallback_rate=share(sum(bare_fallback(r) for r in in_scope), len(in_scope)),
        language_entity_accuracy=(
            share(
                sum(r["predicted_language_entity"] == r["language_entity"] for r in with_entity),
                len(with_entity),
            )
            if with_entity
            else None
        ),
    )


def per_intent_recall(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    by_intent: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_intent[r["intent"]].append(effective(r["predicted"]) == r["intent"])
    return {intent: sum(hits) / len(hits) for intent, hits in sorted(by_intent.items())}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of one pipeline on one split: per language, overall, per intent."""
    scores = {lang: score([r for r in rows if r["lang"] == lang]) for lang in LANGUAGES}
    scores["all"] = score([r for r in rows if r["lang"] in LANGUAGES])
    others = [r for r in rows if r["lang"] == OTHER_LANGUAGES]
    confusion = Counter(
        (r["intent"], effective(r["predicted"])) for r in rows if r["lang"] in LANGUAGES
    )
    return {
        "scores": {scope: asdict(s) for scope, s in scores.items()},
        "other_language_rate": (
            share(sum(r["predicted"] == OTHER_LANGUAGE for r in others), len(others))
            if others
            else None
        ),
        "other_language_examples": len(others),
        "other_language_predictions": dict(Counter(r["predicted"] for r in others)),
        "per_intent_recall": {
            lang: per_intent_recall([r for r in rows if r["lang"] == lang]) for lang in LANGUAGES
        },
        "confusion": [[gold, predicted, n] for (gold, predicted), n in sorted(confusion.items())],
    }
