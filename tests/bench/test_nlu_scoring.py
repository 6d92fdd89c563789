"""bench/nlu's scores: what counts as a bare fallback follows what the dialogue does with it."""

from __future__ import annotations

from typing import Any

from bench.nlu.scoring import bare_fallback, score


def row(intent: str, predicted: str, ranking: list[tuple[str, float]]) -> dict[str, Any]:
    top = ranking[0][1] if ranking else 0.0
    return {
        "intent": intent,
        "predicted": predicted,
        "confidence": 0.2 if predicted == "nlu_fallback" else top,
        "ranking": [list(r) for r in ranking],
        "language_entity": None,
        "predicted_language_entity": None,
    }


UNSURE_ACCOUNT = row("ask_balance", "nlu_fallback", [("ask_balance", 0.18), ("ask_next_due", 0.16)])
UNSURE_SMALL_TALK = row("ask_balance", "nlu_fallback", [("greet", 0.19), ("thanks", 0.12)])
UNSURE_HARDSHIP = row("hardship", "nlu_fallback", [("greet", 0.19), ("hardship", 0.11)])
ANSWERED = row("ask_balance", "ask_balance", [("ask_balance", 0.9)])


def test_a_fallback_with_requests_to_offer_is_a_question_not_a_bare_fallback() -> None:
    assert not bare_fallback(UNSURE_ACCOUNT)
    assert not bare_fallback(UNSURE_HARDSHIP)  # the difficulty is acknowledged first
    assert bare_fallback(UNSURE_SMALL_TALK)
    assert not bare_fallback(ANSWERED)


def test_the_two_fallback_rates_are_over_in_scope_messages() -> None:
    out_of_scope = row("out_of_scope", "nlu_fallback", [("greet", 0.19)])
    scores = score([UNSURE_ACCOUNT, UNSURE_SMALL_TALK, UNSURE_HARDSHIP, ANSWERED, out_of_scope])
    assert scores.in_scope_fallback_rate == 3 / 4
    assert scores.in_scope_bare_fallback_rate == 1 / 4
    assert scores.out_of_scope_recall == 1.0
