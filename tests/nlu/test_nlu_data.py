"""The NLU training data and its held-out split are complete, consistent and kept apart.

These checks read the YAML only (no training), so they run in the main environment in well under
a second. The model quality itself is measured by ``python -m bench.nlu``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TRAIN_DIR = ROOT / "nlu" / "data" / "nlu"
HELD_OUT_DIR = ROOT / "nlu" / "tests" / "nlu"
LANGUAGES = ("en", "fr", "es", "sw")
INTENTS = (
    "greet",
    "goodbye",
    "thanks",
    "affirm",
    "deny",
    "bot_challenge",
    "ask_balance",
    "ask_next_due",
    "ask_schedule",
    "ask_payment_history",
    "how_to_pay",
    "report_payment",
    "promise_to_pay",
    "hardship",
    "request_officer",
    "opt_out",
    "opt_in",
    "change_language",
    "ask_loan_terms",
    "complaint",
    "out_of_scope",
    "inform",
)
MIN_TRAINING_PER_INTENT = 25
MIN_HELD_OUT_PER_INTENT = 10

# `[text](entity)` and `[text]{"entity": ...}` annotations inside Rasa training examples.
ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<entity>[^)]+)\)|\{(?P<json>[^}]+)\})")


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    assert isinstance(document, dict), path
    return document


def _examples(path: Path) -> dict[str, list[str]]:
    """Map each intent of a Rasa NLU file to its raw (annotated) examples."""
    found: dict[str, list[str]] = defaultdict(list)
    for block in _load(path).get("nlu", []):
        if "intent" in block:
            lines = block["examples"].splitlines()
            found[block["intent"]] += [
                ln.strip()[2:] for ln in lines if ln.strip().startswith("- ")
            ]
    return found


def _plain(example: str) -> str:
    return ANNOTATION.sub(lambda m: m.group("text"), example)


def normalize(example: str) -> str:
    """Fold case, accents, punctuation and spacing, so near-copies count as copies."""
    text = unicodedata.normalize("NFKD", _plain(example).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    folded = " ".join(re.sub(r"[^\w\s]", " ", text).split())
    # Emoji-only answers ("👍") have no word characters; compare them as typed.
    return folded or " ".join(text.split())


def _language_files(directory: Path, lang: str) -> list[Path]:
    """``<lang>.yml`` and the language's other files (``<lang>_variety.yml``, ...)."""
    return sorted(directory.glob(f"{lang}.yml")) + sorted(directory.glob(f"{lang}_*.yml"))


def _split(directory: Path) -> dict[str, dict[str, list[str]]]:
    split: dict[str, dict[str, list[str]]] = {}
    for lang in LANGUAGES:
        merged: dict[str, list[str]] = defaultdict(list)
        for path in _language_files(directory, lang):
            for intent, examples in _examples(path).items():
                merged[intent] += examples
        split[lang] = merged
    return split


TRAINING = _split(TRAIN_DIR)
HELD_OUT = _split(HELD_OUT_DIR)


@pytest.mark.parametrize("path", sorted([*TRAIN_DIR.glob("*.yml"), *HELD_OUT_DIR.glob("*.yml")]))
def test_every_file_is_rasa_3_yaml(path: Path) -> None:
    assert _load(path)["version"] == "3.1"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_intent_has_training_and_held_out_examples(lang: str) -> None:
    training = {intent: len(TRAINING[lang].get(intent, [])) for intent in INTENTS}
    held_out = {intent: len(HELD_OUT[lang].get(intent, [])) for intent in INTENTS}

    assert {i: n for i, n in training.items() if n < MIN_TRAINING_PER_INTENT} == {}
    assert {i: n for i, n in held_out.items() if n < MIN_HELD_OUT_PER_INTENT} == {}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_no_intent_outside_the_agreed_list(lang: str) -> None:
    assert set(TRAINING[lang]) - set(INTENTS) == set()
    assert set(HELD_OUT[lang]) - set(INTENTS) == set()


def test_the_readme_lists_exactly_the_intents_the_data_uses() -> None:
    readme = (TRAIN_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Intents", 1)[1].split("\n\n", 2)[1]
    listed = [name.strip() for name in section.replace("\n", " ").split(",")]

    assert listed == list(INTENTS)


def test_no_held_out_example_appears_in_training() -> None:
    seen = {
        normalize(ex) for per_lang in TRAINING.values() for exs in per_lang.values() for ex in exs
    }
    leaked = sorted(
        f"{lang}/{intent}: {ex}"
        for lang, per_intent in HELD_OUT.items()
        for intent, exs in per_intent.items()
        for ex in exs
        if normalize(ex) in seen
    )

    assert leaked == []


@pytest.mark.parametrize("split", [TRAINING, HELD_OUT], ids=["training", "held-out"])
def test_no_text_is_labelled_with_two_intents(split: dict[str, dict[str, list[str]]]) -> None:
    labels: dict[str, set[str]] = defaultdict(set)
    for per_intent in split.values():
        for intent, exs in per_intent.items():
            for ex in exs:
                labels[normalize(ex)].add(intent)

    assert {text: sorted(ls) for text, ls in labels.items() if len(ls) > 1} == {}


def _synonyms() -> dict[str, str]:
    mapping: dict[str, str] = {}
    for block in _load(TRAIN_DIR / "languages.yml")["nlu"]:
        if "synonym" in block:
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    mapping[line.strip()[2:].casefold()] = block["synonym"]
    return mapping


def test_every_annotated_language_name_maps_to_a_supported_code() -> None:
    synonyms = _synonyms()
    annotated = {
        match.group("text")
        for split in (TRAINING, HELD_OUT)
        for per_intent in split.values()
        for exs in per_intent.values()
        for ex in exs
        for match in ANNOTATION.finditer(ex)
        if match.group("entity") == "language"
    }

    assert annotated, "change_language examples must annotate the language entity"
    assert sorted(name for name in annotated if name.casefold() not in synonyms) == []
    assert set(synonyms.values()) == set(LANGUAGES)


def test_normalize_folds_case_accents_punctuation_and_annotations() -> None:
    assert normalize("  Passez en [Français](language) !! ") == "passez en francais"
