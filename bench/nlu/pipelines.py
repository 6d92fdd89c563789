"""Training a pipeline and parsing the test splits with it, in Rasa's own environment."""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.nlu.paths import (
    COMPONENTS,
    HERE,
    RASA_BIN,
    RASA_PYTHON,
    ROOT,
    SPLITS,
    SYNONYMS,
    TRAINING_DATA,
    shown,
)
from bench.nlu.scoring import effective, percentile, summarise


def _env() -> dict[str, str]:
    # The model names Kopa's components as `components.<module>`; they live in nlu/.
    path = os.pathsep.join(filter(None, [str(COMPONENTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": path}


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def training_data(workdir: Path, without: Sequence[str]) -> Path:
    """The training directory, or a copy of it without the files matching ``without``."""
    if not without:
        return TRAINING_DATA
    target = workdir / "training-data"
    target.mkdir(exist_ok=True)
    for path in TRAINING_DATA.glob("*.yml"):
        if not any(path.match(pattern) for pattern in without):
            shutil.copy(path, target / path.name)
    return target


def with_seed(config: Path, seed: int, workdir: Path) -> Path:
    """A copy of ``config`` whose components that take a ``random_seed`` get ``seed``.

    One training per side cannot tell a training-data addition from the seed's noise (two seeds
    on the same data move dozens of per-intent recalls by more than 2 points): compare averages.
    """
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    for component in document.get("pipeline", []):
        if "random_seed" in component:
            component["random_seed"] = seed
    target = workdir / f"{config.stem}-seed{seed}.yml"
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return target


def train(
    name: str, config: Path, data: Path, workdir: Path, console: Console
) -> tuple[Path, float, float]:
    """Train one NLU-only model; return its path, the wall-clock and the CPU training time.

    CPU time is what counts here: it hardly changes when other work shares the machine, so runs
    on a busy machine stay comparable.
    """
    started = time.perf_counter()
    cpu_started = _children_cpu_seconds()
    command = [
        str(RASA_BIN), "train", "nlu",
        "--config", str(config),
        "--nlu", str(data),
        "--out", str(workdir),
        "--fixed-model-name", name,
    ]  # fmt: skip
    with _progress(console) as progress:
        progress.add_task(f"training {name} ({shown(config)})", total=None)
        # Every training from scratch: Rasa would reuse graph nodes trained earlier from the same
        # config and data, by older code of a component and with their CPU time uncounted.
        env = {**_env(), "RASA_CACHE_DIRECTORY": str(workdir / f"{name}.rasa-cache")}
        result = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=False, env=env
        )
    if result.returncode != 0:
        console.print(result.stdout[-3000:], result.stderr[-3000:], markup=False)
        raise SystemExit(f"training {name} failed")
    wall = time.perf_counter() - started
    return workdir / f"{name}.tar.gz", wall, _children_cpu_seconds() - cpu_started


def predict(model: Path, workdir: Path, console: Console) -> dict[str, Any]:
    out = workdir / f"{model.name}.predictions.json"
    command = [str(RASA_PYTHON), str(HERE / "predict.py"), "--model", str(model)]
    for split, directory in SPLITS.items():
        if any(directory.glob("*.yml")):
            command += ["--split", f"{split}={directory}"]
    command += ["--synonyms", str(SYNONYMS), "--out", str(out)]
    tail: list[str] = []
    with _progress(console) as progress:
        task = progress.add_task(f"parsing the test splits with {model.name}", total=None)
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("PROGRESS "):
                done, total = map(int, line.split()[1:3])
                progress.update(task, completed=done, total=total)
            else:
                tail = [*tail[-40:], line]
        process.wait()
    if process.returncode != 0:
        console.print("".join(tail), markup=False)
        raise SystemExit(f"parsing with {model.name} failed")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def run_pipeline(
    name: str,
    config: Path,
    data: Path,
    workdir: Path,
    console: Console,
    trained: tuple[Path, float, float] | None = None,
) -> dict[str, Any]:
    """Train (or take ``trained``: a model with its training wall and CPU seconds) and parse."""
    model, train_seconds, train_cpu = trained or train(name, config, data, workdir, console)
    parsed = predict(model, workdir, console)
    rows = parsed["predictions"]
    console.print(f"{name}: trained in {train_seconds:.0f} s ({train_cpu:.0f} s of CPU)")
    return {
        "config": shown(config),
        "training_data": shown(data),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu, 1),
        "parse_seconds": parsed["parse_seconds"],
        "parse_ms_p50": round(statistics.median(r["parse_ms"] for r in rows), 1),
        "parse_ms_p95": round(percentile([r["parse_ms"] for r in rows], 0.95), 1),
        "parse_cpu_ms_p50": round(statistics.median(r["parse_cpu_ms"] for r in rows), 1),
        "parse_cpu_ms_p95": round(percentile([r["parse_cpu_ms"] for r in rows], 0.95), 1),
        "splits": {
            split: summarise([r for r in rows if r["split"] == split])
            for split in SPLITS
            if any(r["split"] == split for r in rows)
        },
        # Messages of the old split only: the frozen split stays a measure, not a reading list.
        # Every old-split prediction is kept for tuning the fallback thresholds on that split.
        "old_split_predictions": [
            {k: r[k] for k in ("lang", "intent", "predicted", "confidence", "ranking")}
            for r in rows
            if r["split"] == "old"
        ],
        "old_split_errors": [
            {k: r[k] for k in ("lang", "text", "intent", "predicted", "confidence")}
            for r in rows
            if r["split"] == "old" and effective(r["predicted"]) != r["intent"]
        ],
    }
