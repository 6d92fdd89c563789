"""Which language the bot answers in: the one chosen (or the verified borrower's), else the one
the borrower writes in, else the channel's hint."""

from __future__ import annotations

from typing import Any

from actions.common import language
from tests.actions.helpers_actions import make_tracker


def _user(text: str, written_in: str | None = None) -> dict[str, Any]:
    parse_data: dict[str, Any] = {"text": text, "intent": {"name": "inform"}}
    if written_in:
        parse_data["written_in"] = written_in
    return {"event": "user", "text": text, "parse_data": parse_data}


def test_an_unknown_chat_is_answered_in_the_language_it_writes_in() -> None:
    tracker = make_tracker(
        text="2794",
        slots={"language": None},
        metadata={"locale": "en"},  # the phone's app is in English: a shared phone
        events=[_user("hola buenas tardes, cuanto debo?", "es")],
    )
    assert language(tracker) == "es"  # "2794" says nothing: the last clear message decides


def test_a_chosen_language_wins_over_the_written_one() -> None:
    tracker = make_tracker(slots={"language": "fr"}, events=[_user("how much do I owe", "en")])
    assert language(tracker) == "fr"


def test_a_new_session_forgets_the_language_written_before() -> None:
    tracker = make_tracker(
        slots={"language": None},
        metadata={"locale": "sw"},
        events=[_user("je veux mon solde", "fr"), {"event": "session_started"}],
    )
    assert language(tracker) == "sw"
