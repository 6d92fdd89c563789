"""Run a piece of code inside Rasa's own virtualenv (Python 3.10, its pinned libraries), with
``nlu/`` on the path so that Kopa's components import as Rasa imports them."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from kopa.paths import NLU_DIR, RASA_VENV


def run_in_rasa(probe: str, argument: Any, timeout: float) -> Any:
    """Run ``probe`` with ``argument`` as JSON in ``sys.argv[1]``; its last printed line is JSON."""
    python = RASA_VENV / "bin" / "python"
    if not python.exists():
        pytest.fail("Rasa is not installed: run `make setup`")
    env = {**os.environ, "PYTHONPATH": str(NLU_DIR), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [str(python), "-c", probe, json.dumps(argument)],
        env=env, capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])
