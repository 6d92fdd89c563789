"""Benchmark Kopa's NLU pipeline against Rasa's default pipeline on the held-out split.

``python -m bench.nlu`` (with ``.venv/bin/python``) trains both pipelines on ``nlu/data/nlu``,
parses every example of ``nlu/tests/nlu/<lang>.yml`` with each model (``bench/nlu/predict.py``
under ``.venv-rasa``), scores both with the same code, prints one table, and writes
``bench/nlu/results.json``, ``bench/nlu/results.png`` and the "NLU" section of
``bench/README.md``.

Scoring. An ``nlu_fallback`` prediction counts as ``out_of_scope`` for accuracy and macro-F1: both
get the same reply (what the assistant can do), so it is right for an out-of-scope message and
wrong for any other. Macro-F1 averages the F1 of the intents present in the held-out split.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
TRAINING_DATA = ROOT / "nlu" / "data" / "nlu"
HELD_OUT = ROOT / "nlu" / "tests" / "nlu"
SYNONYMS = TRAINING_DATA / "languages.yml"
PIPELINES = {
    "kopa": ROOT / "nlu" / "config.yml",
    "rasa_default": HERE / "default_config.yml",
}
LABELS = {"kopa": "Kopa pipeline", "rasa_default": "Rasa default"}
LANGUAGES = ("en", "fr", "es", "sw")
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
README = ROOT / "bench" / "README.md"
RESULTS = HERE / "results.json"
CHART = HERE / "results.png"


@dataclass(frozen=True)
class Scores:
    """What a borrower notices, for one pipeline on one language (or all of them)."""

    examples: int
    intent_accuracy: float
    macro_f1: float
    out_of_scope_recall: float
    in_scope_fallback_rate: float
    language_entity_accuracy: float | None


def _effective(predicted: str) -> str:
    return OUT_OF_SCOPE if predicted == FALLBACK else predicted


def score(rows: Sequence[dict[str, Any]]) -> Scores:
    """Score predictions; each row has ``intent``, ``predicted`` and the language entity pair."""
    labels = sorted({row["intent"] for row in rows})
    f1s = []
    for label in labels:
        tp = sum(1 for r in rows if r["intent"] == label and _effective(r["predicted"]) == label)
        fp = sum(1 for r in rows if r["intent"] != label and _effective(r["predicted"]) == label)
        fn = sum(1 for r in rows if r["intent"] == label and _effective(r["predicted"]) != label)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    out_of_scope = [r for r in rows if r["intent"] == OUT_OF_SCOPE]
    in_scope = [r for r in rows if r["intent"] != OUT_OF_SCOPE]
    with_entity = [r for r in rows if r.get("language_entity")]
    return Scores(
        examples=len(rows),
        intent_accuracy=sum(_effective(r["predicted"]) == r["intent"] for r in rows) / len(rows),
        macro_f1=sum(f1s) / len(f1s),
        out_of_scope_recall=(
            sum(_effective(r["predicted"]) == OUT_OF_SCOPE for r in out_of_scope)
            / len(out_of_scope)
            if out_of_scope
            else 0.0
        ),
        in_scope_fallback_rate=(
            sum(r["predicted"] == FALLBACK for r in in_scope) / len(in_scope) if in_scope else 0.0
        ),
        language_entity_accuracy=(
            sum(r["predicted_language_entity"] == r["language_entity"] for r in with_entity)
            / len(with_entity)
            if with_entity
            else None
        ),
    )


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _run(command: list[str], console: Console, what: str) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        console.print(result.stdout[-3000:], result.stderr[-3000:], markup=False)
        raise SystemExit(f"{what} failed")


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train(name: str, config: Path, workdir: Path, console: Console) -> tuple[Path, float, float]:
    """Train one NLU-only model; return its path, the wall-clock and the CPU training time.

    CPU time is reported next to wall time because it hardly changes when other work shares the
    machine, so runs on a busy machine stay comparable.
    """
    started = time.perf_counter()
    cpu_started = _children_cpu_seconds()
    with console.status(f"training {LABELS[name]} ({_shown(config)})"):
        _run(
            [
                str(RASA_BIN),
                "train",
                "nlu",
                "--config",
                str(config),
                "--nlu",
                str(TRAINING_DATA),
                "--out",
                str(workdir),
                "--fixed-model-name",
                name,
            ],
            console,
            f"training {name}",
        )
    wall = time.perf_counter() - started
    return workdir / f"{name}.tar.gz", wall, _children_cpu_seconds() - cpu_started


def predict(model: Path, workdir: Path, console: Console) -> dict[str, Any]:
    out = workdir / f"{model.name}.predictions.json"
    with console.status(f"parsing the held-out split with {model.name}"):
        _run(
            [
                str(RASA_PYTHON),
                str(HERE / "predict.py"),
                "--model",
                str(model),
                "--held-out",
                str(HELD_OUT),
                "--synonyms",
                str(SYNONYMS),
                "--out",
                str(out),
            ],
            console,
            f"parsing with {model.name}",
        )
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    ram_gib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        meminfo = Path("/proc/meminfo").read_text()
        kib = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
        ram_gib = round(int(kib.group(1)) / 1024**2, 1) if kib else None
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "ram_gib": ram_gib,
        "load_average_at_start": round(os.getloadavg()[0], 1),
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _cell(results: dict[str, Any], name: str, scope: str, metric: str) -> str:
    return _pct(results["pipelines"][name]["scores"][scope][metric])


METRICS = (
    ("intent_accuracy", "intent accuracy %"),
    ("macro_f1", "macro-F1 %"),
    ("out_of_scope_recall", "out-of-scope recall %"),
    ("in_scope_fallback_rate", "in-scope sent to fallback %"),
)


def table(results: dict[str, Any]) -> Table:
    names = list(results["pipelines"])
    out = Table(title="NLU on the held-out split (higher is better, except fallback)")
    out.add_column("language")
    for _, title in METRICS:
        for name in names:
            out.add_column(f"{title}\n{LABELS[name]}", justify="right")
    for scope in (*LANGUAGES, "all"):
        out.add_row(scope, *[_cell(results, n, scope, m) for m, _ in METRICS for n in names])
    return out


def markdown(results: dict[str, Any]) -> str:
    names = list(results["pipelines"])
    header = ["language"] + [f"{title} ({LABELS[n]})" for _, title in METRICS for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for scope in (*LANGUAGES, "all"):
        cells = [scope] + [_cell(results, n, scope, m) for m, _ in METRICS for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    host = results["machine"]
    extra = []
    for name in names:
        data = results["pipelines"][name]
        entity = data["scores"]["all"]["language_entity_accuracy"]
        extra.append(
            f"- {LABELS[name]} (`{data['config']}`): trained in {data['train_seconds']:.0f} s "
            f"({data['train_cpu_seconds']:.0f} s of CPU), "
            f"parsed {data['scores']['all']['examples']} messages in "
            f"{data['parse_seconds']:.0f} s; `language` entity resolved to the right code in "
            f"{_pct(entity)} % of held-out `change_language` examples that name one."
        )
    busy = ""
    if host["load_average_at_start"] > host["cores"]:
        busy = (
            f" The machine was shared with other work (load average "
            f"{host['load_average_at_start']} at the start), so wall-clock times are longer than "
            "on an idle machine; CPU times and scores are not affected."
        )
    return "\n".join(
        [
            "## NLU",
            "",
            "Intent classification on the held-out split `nlu/tests/nlu/<lang>.yml` (never used "
            "for training), both pipelines trained on the same `nlu/data/nlu` in one run of "
            "`python -m bench.nlu`. An `nlu_fallback` prediction counts as `out_of_scope` (same "
            "reply); out-of-scope recall is the share of held-out `out_of_scope` messages answered "
            "as out of scope or fallback; in-scope sent to fallback is the share of all other "
            "messages that got no intent.",
            "",
            *lines,
            "",
            *extra,
            "",
            f"Machine: {host['cpu']}, {host['cores']} cores, {host['ram_gib']} GiB RAM. "
            f"Run {results['finished_at']}.{busy} Details: `bench/nlu/results.json`; chart: "
            "`bench/nlu/results.png`.",
            "",
            "![NLU benchmark](nlu/results.png)",
            "",
        ]
    )


def update_readme(section: str, readme: Path = README) -> None:
    """Replace the "## NLU" section of the benchmark README, leaving the others as they are."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## NLU\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    readme.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def chart(results: dict[str, Any], path: Path = CHART) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["pipelines"])
    scopes = (*LANGUAGES, "all")
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.8))
    width = 0.8 / len(names)
    for ax, (metric, title) in zip(axes, METRICS, strict=True):
        top = 0.0
        for i, name in enumerate(names):
            values = [100 * results["pipelines"][name]["scores"][s][metric] for s in scopes]
            positions = [x + i * width for x in range(len(scopes))]
            ax.bar(positions, values, width, label=LABELS[name] if ax is axes[0] else None)
            top = max(top, *values)
        ax.set_title(title)
        ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(scopes))], scopes)
        # Fallback rates are a few percent: on a 0-100 axis they would not show.
        ax.set_ylim(0, 100 if metric != "in_scope_fallback_rate" else max(5.0, 1.25 * top))
        ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="upper center", ncol=len(names), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nlu", description=__doc__)
    parser.add_argument("--pipelines", nargs="+", choices=list(PIPELINES), default=list(PIPELINES))
    parser.add_argument(
        "--no-write", action="store_true", help="print only (for tuning): keep results files"
    )
    parser.add_argument("--keep-predictions", type=Path, help="copy the raw predictions here")
    parser.add_argument(
        "--kopa-config", type=Path, help="try another config in place of nlu/config.yml (tuning)"
    )
    args = parser.parse_args(argv)
    console = Console()
    if not RASA_BIN.exists():
        raise SystemExit("Rasa is not installed: run `make setup` first")

    pipelines = dict(PIPELINES)
    if args.kopa_config:
        pipelines["kopa"] = args.kopa_config.resolve()
    results: dict[str, Any] = {"machine": machine(), "pipelines": {}}
    with tempfile.TemporaryDirectory(prefix="kopa-bench-nlu-") as tmp:
        workdir = Path(tmp)
        for name in args.pipelines:
            model, train_seconds, train_cpu = train(name, pipelines[name], workdir, console)
            parsed = predict(model, workdir, console)
            rows = parsed["predictions"]
            scores = {lang: score([r for r in rows if r["lang"] == lang]) for lang in LANGUAGES}
            scores["all"] = score(rows)
            results["pipelines"][name] = {
                "config": _shown(pipelines[name]),
                "train_seconds": round(train_seconds, 1),
                "train_cpu_seconds": round(train_cpu, 1),
                "parse_seconds": parsed["parse_seconds"],
                "scores": {scope: asdict(s) for scope, s in scores.items()},
                "errors": [
                    {k: r[k] for k in ("lang", "text", "intent", "predicted", "confidence")}
                    for r in rows
                    if _effective(r["predicted"]) != r["intent"]
                ],
            }
            console.print(
                f"{LABELS[name]}: trained in {train_seconds:.0f} s ({train_cpu:.0f} s of CPU)"
            )
            if args.keep_predictions:
                args.keep_predictions.mkdir(parents=True, exist_ok=True)
                target = args.keep_predictions / f"{name}.json"
                target.write_text(json.dumps(rows, ensure_ascii=False, indent=1), "utf-8")
    results["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    console.print(table(results))
    if args.no_write:
        return
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", "utf-8")
    chart(results)
    update_readme(markdown(results))
    console.print(f"wrote {RESULTS.relative_to(ROOT)}, {CHART.relative_to(ROOT)}, bench/README.md")


if __name__ == "__main__":
    main()
