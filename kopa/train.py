"""Train the Rasa model only when its inputs changed.

The model file is named after a fingerprint of everything that shapes it (config, domain,
training data, the pinned Rasa environment), so an unchanged project reuses the model it has.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from rich.console import Console

from kopa.paths import MODELS_DIR, NLU_DIR, RASA_BIN, ROOT

TRAINING_INPUTS = ("config.yml", "components", "domain", "data", "requirements.lock")


def fingerprint(nlu_dir: Path = NLU_DIR, inputs: tuple[str, ...] = TRAINING_INPUTS) -> str:
    digest = hashlib.sha256()
    for name in inputs:
        path = nlu_dir / name
        # Bytecode caches appear when Rasa imports nlu/components: they shape nothing.
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            if not file.exists():
                continue
            digest.update(str(file.relative_to(nlu_dir)).encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:16]


def model_path(nlu_dir: Path = NLU_DIR) -> Path:
    return MODELS_DIR / f"kopa-{fingerprint(nlu_dir)}.tar.gz"


def rasa_cache(nlu_dir: Path = NLU_DIR) -> Path:
    """Rasa's cache of trained graph nodes, one per version of Kopa's own components.

    Rasa reuses a node trained earlier from the same config and data without looking at the
    component's code, so after a change to ``nlu/components`` it would pack the older code's
    pickled model, which the new code may not even load.
    """
    return nlu_dir / ".rasa" / f"cache-{fingerprint(nlu_dir, ('components',))}"


def ensure_model(console: Console | None = None, force: bool = False) -> Path:
    """Return the model for the current inputs, training it first if there is none."""
    console = console or Console(stderr=True)
    target = model_path()
    if target.exists() and not force:
        console.print(f"[green]model up to date[/] {target.relative_to(ROOT)}")
        return target
    if not RASA_BIN.exists():
        raise SystemExit("Rasa is not installed: run `make setup` first")
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    command = [
        str(RASA_BIN),
        "train",
        "--config",
        str(NLU_DIR / "config.yml"),
        "--domain",
        str(NLU_DIR / "domain"),
        "--data",
        str(NLU_DIR / "data"),
        "--out",
        str(MODELS_DIR),
        "--fixed-model-name",
        target.name.removesuffix(".tar.gz"),
    ]
    cache = rasa_cache()
    with console.status(f"training the Rasa model ({target.name}); this takes a few minutes"):
        # Rasa reports usage telemetry unless told not to; nothing leaves this machine.
        env = {
            **os.environ,
            "RASA_TELEMETRY_ENABLED": "false",
            "RASA_CACHE_DIRECTORY": str(cache),
        }
        result = subprocess.run(  # noqa: S603 - our own Rasa binary and paths
            command, cwd=NLU_DIR, capture_output=True, text=True, check=False, env=env
        )
    if result.returncode != 0 or not target.exists():
        console.print(result.stdout[-4000:], result.stderr[-4000:], markup=False)
        raise SystemExit("rasa train failed")
    for stale in MODELS_DIR.glob("kopa-*.tar.gz"):
        if stale != target:
            stale.unlink()
    for stale_cache in cache.parent.glob("cache*"):
        if stale_cache != cache:
            shutil.rmtree(stale_cache)
    console.print(f"[green]trained[/] {target.relative_to(ROOT)}")
    return target
