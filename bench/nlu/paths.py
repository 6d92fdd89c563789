"""Where the benchmark finds the Rasa environment, the data, the pipelines and its outputs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
TRAINING_DATA = ROOT / "nlu" / "data" / "nlu"
COMPONENTS = ROOT / "nlu"
SPLITS = {"old": ROOT / "nlu" / "tests" / "nlu", "frozen": ROOT / "nlu" / "tests" / "heldout"}
SYNONYMS = TRAINING_DATA / "languages.yml"
PIPELINES = {
    "kopa": ROOT / "nlu" / "config.yml",
    "rasa_default": HERE / "default_config.yml",
}


README = ROOT / "bench" / "README.md"
RESULTS = HERE / "results.json"
CHART = HERE / "results.png"
CONFUSION_CHART = HERE / "confusion.png"


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
