"""The frozen borrower conversation scripts, one test per script, through the running stack.

Each test plays one file of ``tests/conversation/scripts/<lang>/`` (see
``tests/conversation/script_runner.py``) and fails with every expectation the bot missed: the
turn, what was expected, and what the borrower read. The stack is this module's own (its own
seeded demo portfolio), started once and reused by every script.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from i18n import SUPPORTED_LOCALES, day, message_keys, money, render
from kopa.paths import RASA_BIN
from tests.api.factories import today
from tests.conversation.persona_facts import PersonaFacts
from tests.conversation.script_checks import Outcome, Reply, TurnRecord, check_outcome, check_turn
from tests.conversation.script_format import COMPLAINTS, PERSONAS, VOCABULARY, Script, load_scripts
from tests.conversation.script_runner import ScriptPlayer, seed_template

SCRIPTS = load_scripts()


@pytest.fixture(scope="module")
def player(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScriptPlayer]:
    if not RASA_BIN.exists():
        if os.environ.get("KOPA_REQUIRE_SERVICES") == "1":
            pytest.fail("Rasa is not installed: run `make setup` (KOPA_REQUIRE_SERVICES=1)")
        pytest.skip("Rasa is not installed: run `make setup` to play the conversation scripts")
    with ScriptPlayer.start(tmp_path_factory.mktemp("scripts")) as started:
        yield started


@pytest.mark.stack
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.id for s in SCRIPTS])
def test_script(player: ScriptPlayer, script: Script) -> None:
    result = player.play(script)
    assert result.passed, f"{script.story}\n{result.report()}"


# --- the runner's own ground (no stack) ---------------------------------------------------------


def test_there_are_scripts_for_every_persona_and_language() -> None:
    assert len(SCRIPTS) >= 40
    assert {s.persona for s in SCRIPTS} <= set(PERSONAS)
    assert {s.language for s in SCRIPTS} == {"en", "fr", "es", "sw"}
    assert len({s.id for s in SCRIPTS}) == len(SCRIPTS)
    for script in SCRIPTS:
        assert script.id == f"{script.path.parent.name}-{script.path.stem}"


def test_every_expectation_of_the_scripts_is_understood() -> None:
    value_checked = {"language", "discloses", "shows", "mentions_amount", "no_payment_demand"}
    known = value_checked | set(VOCABULARY) | {"not_a_wrong_answer"}
    used = {name for s in SCRIPTS for t in s.turns for name in t.expect}
    assert used <= known


def test_the_vocabulary_names_message_keys_that_exist() -> None:
    keys = set(message_keys())
    for word, entry in VOCABULARY.items():
        assert set(entry.keys) <= keys, f"{word}: {set(entry.keys) - keys} are no message keys"
        assert entry.keys or entry.prefixes, word


def test_every_failure_kind_has_a_borrower_complaint() -> None:
    words = {w for w in VOCABULARY if w not in ("payment_demand", "loan_terms")}
    assert words - {"payment_demand"} <= set(COMPLAINTS)
    assert {"no_payment_demand", "not_a_wrong_answer", "discloses", "language"} <= set(COMPLAINTS)


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PersonaFacts]:
    return seed_template(tmp_path_factory.mktemp("template") / "demo.db")


def turn(keys: list[str], texts: list[str], locale: str = "en", tries: int = 0) -> TurnRecord:
    return TurnRecord("...", [Reply(k, locale) for k in keys], texts, tries)


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_a_balance_is_seen_in_any_formatting_and_only_as_itself(
    facts: dict[str, PersonaFacts], locale: str
) -> None:
    brian = facts["brian"]
    shown = render(
        "conv.balance", locale, reference="X", outstanding=money(brian.outstanding, "KES")
    )
    assert brian.shows("balance", [shown], []) is None
    assert brian.leaks([shown], [], today()) is not None
    whole = f"{brian.outstanding:.0f}"
    for text in (whole, f"{int(whole):,}", f"{int(whole):,}".replace(",", ".") + ",00"):
        assert brian.leaks([f"it is {text} now"], [], today()) is not None
    for text in ("1" + whole, whole + "1", f"{int(whole):,}1", f"9,{whole}"):
        assert brian.leaks([f"it is {text} now"], [], today()) is None, text
    assert brian.shows("balance", ["You owe something."], []) is not None


def test_a_due_date_leaks_unless_the_borrower_named_it(facts: dict[str, PersonaFacts]) -> None:
    amina = facts["amina"]
    assert amina.next_due is not None
    for locale in SUPPORTED_LOCALES:
        text = render("conv.promise.confirm", locale, amount=money("1000", "KES"),
                      date=day(amina.next_due))  # fmt: skip
        assert amina.leaks([text], ["nataka kuahidi kulipa"], today()) is not None
        assert amina.leaks([text], [amina.next_due.strftime("%d/%m/%Y")], today()) is None


def test_no_fixed_message_of_the_catalog_looks_like_account_data(
    facts: dict[str, PersonaFacts],
) -> None:
    texts = []
    for key in message_keys():
        for locale in SUPPORTED_LOCALES:
            try:
                texts.append(render(key, locale))
            except (KeyError, IndexError):
                continue  # has placeholders: its values are what the checks look at
    for persona in facts.values():
        assert persona.leaks(texts, [], today()) is None


def test_a_turn_fails_on_each_kind_of_miss(facts: dict[str, PersonaFacts]) -> None:
    brian = facts["brian"]
    good = turn(["conv.verify.ask_dob"], [render("conv.verify.ask_dob", "en")])
    expect = {"language": "en", "asks_identity": True, "discloses": False}
    assert check_turn(1, expect, good, brian, said=["hi"], day=today()) == []
    swahili = turn(["conv.verify.ask_dob"], [render("conv.verify.ask_dob", "sw")], "sw")
    counted = turn(["conv.verify.failed", "conv.verify.ask_dob"], ["no"], tries=1)
    demand = turn(["conv.promise.ask_amount"], ["How much? You owe KES 18,200.00."])
    cases = [
        (swahili, {"language": "en"}, "language"),
        (counted, {"not_a_wrong_answer": True}, "not_a_wrong_answer"),
        (demand, {"discloses": False}, "discloses"),
        (demand, {"no_payment_demand": True}, "no_payment_demand"),
        (demand, {"empathy": True}, "empathy"),
        (good, {"shows": ["next_due"]}, "shows:next_due"),
        (good, {"mentions_amount": "2500"}, "mentions_amount"),
        (good, {"officer": True}, "officer"),
        (turn([], []), {"language": "en"}, "no_reply"),
    ]
    for record, expectation, kind in cases:
        failures = check_turn(2, expectation, record, brian, said=["hi"], day=today())
        assert [f.kind for f in failures] == [kind], (expectation, failures)
    late = turn(["conv.verify.ask_dob", "conv.hardship.ask_reason"], ["..."])
    assert [
        f.kind for f in check_turn(1, {"empathy": True}, late, brian, said=[], day=today())
    ] == ["empathy"]


def test_an_outcome_is_compared_with_the_records() -> None:
    got = Outcome(
        failed_tries=1,
        locked=False,
        promises=[(Decimal("2500.00"), date(2026, 12, 11))],  # a Friday
        cases={"hardship": 1},
        opted_out=False,
        language="en",
    )
    wanted = {
        "failed_tries": 1,
        "locked": False,
        "promises": 1,
        "promise": {"amount": "2500", "weekday": "friday", "in_days": 7},
        "cases": {"hardship": 1, "officer_request": 0},
        "opted_out": False,
        "language": "en",
    }
    assert check_outcome(wanted, got, local_today=date(2026, 12, 4)) == []
    wrong = {"failed_tries": 0, "promise": {"weekday": "thursday"}, "cases": {}, "opted_out": True}
    kinds = [f.kind for f in check_outcome(wrong, got, local_today=date(2026, 12, 4))]
    assert kinds == [
        "outcome:failed_tries",
        "outcome:promise",
        "outcome:cases",
        "outcome:opted_out",
    ]
