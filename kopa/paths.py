"""Where the repository's own files live, wherever the command is started from."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NLU_DIR = ROOT / "nlu"
MODELS_DIR = NLU_DIR / "models"
RASA_VENV = ROOT / ".venv-rasa"
RASA_BIN = RASA_VENV / "bin" / "rasa"
VAR_DIR = ROOT / "var"
