"""The language gate (nlu/components/language_gate.py) answers other languages, and only them.

The gate is trained on the real training data and loaded back through Rasa's model storage, in the
Rasa environment (``tests/nlu/rasa_scripts/gate_check.py``); no DIET training, about 15 s.
Measured on the old split (every message is in a language the bot speaks) and on the tuning set of
other languages, never on the frozen held-out split (``bench/nlu`` measures that).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kopa.paths import NLU_DIR, RASA_VENV, ROOT

SCRIPT = Path(__file__).parent / "rasa_scripts" / "gate_check.py"
OTHER_LANGUAGES = ROOT / "bench" / "nlu" / "dev" / "other_languages.yml"
OLD_SPLIT = sorted((NLU_DIR / "tests" / "nlu").glob("*.yml"))


@pytest.fixture(scope="module")
def decisions(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    python = RASA_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail("Rasa is not installed: run `make setup`")
    extra = tmp_path_factory.mktemp("gate") / "extra.yml"
    extra.write_text(
        yaml.safe_dump(
            {
                "version": "3.1",
                "nlu": [
                    {
                        "intent": "probe",
                        "examples": "- 我想知道我还欠多少钱\n- ok\n- 5000\n- jajaja\n"
                        "- nataka kulipa loan yangu kesho\n- je veux payer mon crédit demain\n",
                    }
                ],
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    storage = tmp_path_factory.mktemp("storage")
    env = {**os.environ, "PYTHONPATH": str(NLU_DIR), "TF_CPP_MIN_LOG_LEVEL": "3"}
    files = [str(p) for p in (*OLD_SPLIT, OTHER_LANGUAGES, extra)]
    result = subprocess.run(
        [str(python), str(SCRIPT), str(storage), str(NLU_DIR / "data" / "nlu"), *files],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return rows


def _gated(rows: list[dict[str, Any]]) -> list[str]:
    return [r["text"] for r in rows if r["intent"] == "other_language"]


def test_no_message_in_a_supported_language_is_gated(decisions: list[dict[str, Any]]) -> None:
    old = [r for r in decisions if r["file"] in {p.name for p in OLD_SPLIT}]

    assert len(old) > 1000
    assert _gated(old) == []


def test_most_messages_in_other_languages_are_gated(decisions: list[dict[str, Any]]) -> None:
    other = [r for r in decisions if r["file"] == OTHER_LANGUAGES.name]

    assert len(_gated(other)) / len(other) >= 0.85


def test_non_latin_script_is_gated_and_short_or_code_switched_messages_are_not(
    decisions: list[dict[str, Any]],
) -> None:
    probes = {r["text"]: r for r in decisions if r["file"] == "extra.yml"}

    assert probes["我想知道我还欠多少钱"]["intent"] == "other_language"
    assert probes["我想知道我还欠多少钱"]["ranking"] == ["other_language", "ask_balance"]
    for text in ("ok", "5000", "jajaja", "nataka kulipa loan yangu kesho"):
        assert probes[text]["intent"] == "ask_balance", text
    assert probes["je veux payer mon crédit demain"]["intent"] == "ask_balance"


def test_a_message_of_a_few_words_is_known_by_the_language_it_is_written_in(
    decisions: list[dict[str, Any]],
) -> None:
    """The old split's files are one language each: a message of 3 words or more is answered in
    its language when the detector is sure; it is never taken for another supported one."""
    for path in OLD_SPLIT:
        lang = path.stem.split("_")[0]
        rows = [r for r in decisions if r["file"] == path.name and len(r["text"].split()) >= 3]
        named = [r["written_in"] for r in rows if r["written_in"] is not None]
        wrong = [r["text"] for r in rows if r["written_in"] not in (None, lang)]
        assert len(named) / len(rows) >= 0.75, (lang, len(named), len(rows))
        assert len(wrong) / len(rows) <= 0.03, (lang, wrong)


def test_short_messages_name_no_language(decisions: list[dict[str, Any]]) -> None:
    probes = {r["text"]: r["written_in"] for r in decisions if r["file"] == "extra.yml"}
    assert probes["ok"] is None and probes["5000"] is None and probes["jajaja"] is None
    assert probes["je veux payer mon crédit demain"] == "fr"
