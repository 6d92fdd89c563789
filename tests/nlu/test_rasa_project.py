"""The Rasa project is consistent: domain ↔ actions ↔ messages, `rasa data validate` clean, and
the dialogue test stories predicted without a single error by the trained model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk.executor import ActionExecutor

from actions.forms import DIGRESSIONS, HARDSHIP_YIELDS_TO
from i18n import message_keys
from kopa.paths import NLU_DIR, RASA_BIN

BUILTIN_ACTIONS = {"action_listen", "action_restart", "action_default_fallback"}


def _domain() -> dict[str, Any]:
    merged: dict[str, Any] = {"actions": [], "responses": {}, "slots": {}, "forms": {}}
    for path in sorted((NLU_DIR / "domain").glob("*.yml")):
        part = yaml.safe_load(path.read_text()) or {}
        merged["actions"] += part.get("actions", [])
        for section in ("responses", "slots", "forms"):
            merged[section].update(part.get(section, {}))
    return merged


def _rasa(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    if not RASA_BIN.exists():
        pytest.fail("Rasa is not installed: run `make setup`")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [str(RASA_BIN), *args],
        cwd=NLU_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_domain_actions_are_exactly_the_registered_actions() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    registered = set(executor.actions)
    declared = set(_domain()["actions"])
    assert declared == registered - BUILTIN_ACTIONS


def test_every_reply_comes_from_an_action_that_knows_the_conversation_language() -> None:
    """A domain response can only read the language slot, empty until the borrower chooses a
    language or is verified: a first message in French would be answered in the channel's
    default. Every reply is said by an action (``actions.common.say``)."""
    assert not _domain().get("responses")
    from actions.replies import Reply

    known = set(message_keys())
    assert {cls.key for cls in Reply.__subclasses__()} <= known


def test_form_answers_exclude_exactly_the_digressions() -> None:
    slots = _domain()["slots"]
    (mapping,) = slots["hardship_reason"]["mappings"]
    assert set(mapping["not_intent"]) == DIGRESSIONS | HARDSHIP_YIELDS_TO
    # The identity answer is read by the validator itself: Rasa never copies the typed date of
    # birth or ID digits into a slot (actions/verification.py).
    assert slots["verification_value"]["mappings"] == [{"type": "custom"}]


def test_no_slot_that_chooses_an_account_can_be_filled_from_typed_entities() -> None:
    for name, slot in _domain()["slots"].items():
        for mapping in slot["mappings"]:
            assert mapping["type"] != "from_entity" or name == "language", name


def test_rasa_data_validate_is_clean() -> None:
    result = _rasa(
        "data", "validate", "--fail-on-warnings",
        "--domain", "domain", "--data", "data", "--config", "config.yml",
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_dialogue_test_stories_pass(tmp_path: Path) -> None:
    from kopa.train import ensure_model

    model = ensure_model()
    result = _rasa(
        "test", "core",
        "--model", str(model),
        "--stories", str(NLU_DIR / "tests" / "test_stories.yml"),
        "--out", str(tmp_path),
        "--fail-on-prediction-errors",
        timeout=600,
    )  # fmt: skip
    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text() if failed.exists() else result.stdout[-3000:]
    assert result.returncode == 0, details + result.stderr[-2000:]
