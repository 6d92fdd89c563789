"""`make train` never packs a component trained by older code of Kopa's NLU components."""

from __future__ import annotations

from pathlib import Path

from kopa.train import fingerprint, rasa_cache


def _project(root: Path) -> Path:
    (root / "components").mkdir(parents=True)
    (root / "components" / "classifier.py").write_text("VERSION = 1\n")
    (root / "data").mkdir()
    (root / "data" / "en.yml").write_text("- hello\n")
    (root / "config.yml").write_text("pipeline: []\n")
    return root


def test_changed_component_code_gets_a_cache_of_its_own(tmp_path: Path) -> None:
    nlu = _project(tmp_path)
    before = rasa_cache(nlu)
    (nlu / "components" / "classifier.py").write_text("VERSION = 2\n")
    assert rasa_cache(nlu) != before
    assert rasa_cache(nlu).parent == nlu / ".rasa"


def test_new_training_data_keeps_the_cache_of_unchanged_components(tmp_path: Path) -> None:
    nlu = _project(tmp_path)
    cache, model = rasa_cache(nlu), fingerprint(nlu)
    (nlu / "data" / "en.yml").write_text("- hello\n- hi\n")
    assert rasa_cache(nlu) == cache
    assert fingerprint(nlu) != model
