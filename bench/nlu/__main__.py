"""Benchmark Kopa's NLU pipeline against Rasa's default pipeline on two test splits.

``python -m bench.nlu`` (with ``.venv/bin/python``) trains each pipeline on ``nlu/data/nlu``,
parses every example of both test splits with each model (``bench/nlu/predict.py`` under
``.venv-rasa``), scores them with the same code, prints the tables, and writes
``bench/nlu/results.json``, the charts and the "NLU" section of ``bench/README.md``.

The splits: ``old`` is ``nlu/tests/nlu/<lang>.yml``, written together with the training data;
``frozen`` is ``nlu/tests/heldout/<lang>.yml`` and ``other_languages.yml``, written blind to the
training data and never used to tune anything (its messages are not copied into the results:
only counts are).

Scoring. An ``nlu_fallback`` prediction counts as ``out_of_scope`` for accuracy and macro-F1: both
get a reply saying what the assistant can do, so it is right for an out-of-scope message and wrong
for any other. In-scope accuracy is over the messages whose intent is not ``out_of_scope``;
out-of-scope recall is the share of ``out_of_scope`` messages answered as out of scope (or
fallback); "to bare fallback" is the share of in-scope messages that got ``nlu_fallback``; "other
language" is the share of ``other_languages.yml`` messages that got ``other_language`` (answered
with the list of languages the bot speaks). Macro-F1 averages the F1 of the intents of the
language's file.

``--pipeline NAME=CONFIG`` and ``--without GLOB`` run other configurations or leave training
files out (to measure what a training-data addition does), ``--out`` keeps their results apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
LABELS = {
    "kopa": "Kopa pipeline",
    "rasa_default": "Rasa default",
    "before": "before (no gate, no variety data)",
    "use": "Kopa + USE sentence features",
    "kopa-without-variety": "Kopa pipeline without `*_variety.yml`",
}
LANGUAGES = ("en", "fr", "es", "sw")
OTHER_LANGUAGES = "other_languages"
FALLBACK = "nlu_fallback"
OUT_OF_SCOPE = "out_of_scope"
OTHER_LANGUAGE = "other_language"
README = ROOT / "bench" / "README.md"
RESULTS = HERE / "results.json"
CHART = HERE / "results.png"
CONFUSION_CHART = HERE / "confusion.png"


@dataclass(frozen=True)
class Scores:
    """What a borrower notices, for one pipeline on one language (or all of them)."""

    examples: int
    intent_accuracy: float
    in_scope_accuracy: float
    macro_f1: float
    out_of_scope_recall: float
    in_scope_fallback_rate: float
    language_entity_accuracy: float | None


def _effective(predicted: str) -> str:
    return OUT_OF_SCOPE if predicted == FALLBACK else predicted


def _share(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def per_intent_f1(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    f1s = {}
    for label in sorted({row["intent"] for row in rows}):
        tp = sum(1 for r in rows if r["intent"] == label and _effective(r["predicted"]) == label)
        fp = sum(1 for r in rows if r["intent"] != label and _effective(r["predicted"]) == label)
        fn = sum(1 for r in rows if r["intent"] == label and _effective(r["predicted"]) != label)
        f1s[label] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return f1s


def score(rows: Sequence[dict[str, Any]]) -> Scores:
    """Score predictions; each row has ``intent``, ``predicted`` and the language entity pair."""
    f1s = per_intent_f1(rows)
    out_of_scope = [r for r in rows if r["intent"] == OUT_OF_SCOPE]
    in_scope = [r for r in rows if r["intent"] != OUT_OF_SCOPE]
    with_entity = [r for r in rows if r.get("language_entity")]
    return Scores(
        examples=len(rows),
        intent_accuracy=_share(
            sum(_effective(r["predicted"]) == r["intent"] for r in rows), len(rows)
        ),
        in_scope_accuracy=_share(
            sum(r["predicted"] == r["intent"] for r in in_scope), len(in_scope)
        ),
        macro_f1=sum(f1s.values()) / len(f1s) if f1s else 0.0,
        out_of_scope_recall=_share(
            sum(_effective(r["predicted"]) == OUT_OF_SCOPE for r in out_of_scope), len(out_of_scope)
        ),
        in_scope_fallback_rate=_share(
            sum(r["predicted"] == FALLBACK for r in in_scope), len(in_scope)
        ),
        language_entity_accuracy=(
            _share(
                sum(r["predicted_language_entity"] == r["language_entity"] for r in with_entity),
                len(with_entity),
            )
            if with_entity
            else None
        ),
    )


def per_intent_recall(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    by_intent: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_intent[r["intent"]].append(_effective(r["predicted"]) == r["intent"])
    return {intent: sum(hits) / len(hits) for intent, hits in sorted(by_intent.items())}


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of one pipeline on one split: per language, overall, per intent."""
    scores = {lang: score([r for r in rows if r["lang"] == lang]) for lang in LANGUAGES}
    scores["all"] = score([r for r in rows if r["lang"] in LANGUAGES])
    others = [r for r in rows if r["lang"] == OTHER_LANGUAGES]
    confusion = Counter(
        (r["intent"], _effective(r["predicted"])) for r in rows if r["lang"] in LANGUAGES
    )
    return {
        "scores": {scope: asdict(s) for scope, s in scores.items()},
        "other_language_rate": (
            _share(sum(r["predicted"] == OTHER_LANGUAGE for r in others), len(others))
            if others
            else None
        ),
        "other_language_examples": len(others),
        "other_language_predictions": dict(Counter(r["predicted"] for r in others)),
        "per_intent_recall": {
            lang: per_intent_recall([r for r in rows if r["lang"] == lang]) for lang in LANGUAGES
        },
        "confusion": [[gold, predicted, n] for (gold, predicted), n in sorted(confusion.items())],
    }


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


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
        progress.add_task(f"training {name} ({_shown(config)})", total=None)
        result = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=False, env=_env()
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
        "config": _shown(config),
        "training_data": _shown(data),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu, 1),
        "parse_seconds": parsed["parse_seconds"],
        "parse_ms_p50": round(statistics.median(r["parse_ms"] for r in rows), 1),
        "parse_ms_p95": round(_percentile([r["parse_ms"] for r in rows], 0.95), 1),
        "parse_cpu_ms_p50": round(statistics.median(r["parse_cpu_ms"] for r in rows), 1),
        "parse_cpu_ms_p95": round(_percentile([r["parse_cpu_ms"] for r in rows], 0.95), 1),
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
            if r["split"] == "old" and _effective(r["predicted"]) != r["intent"]
        ],
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


METRICS = (
    ("in_scope_accuracy", "in-scope accuracy"),
    ("out_of_scope_recall", "out-of-scope recall"),
    ("macro_f1", "macro-F1"),
    ("in_scope_fallback_rate", "in-scope to bare fallback"),
)


def _rows(results: dict[str, Any], split: str) -> list[list[str]]:
    lines = []
    for name, data in results["pipelines"].items():
        summary = data["splits"].get(split)
        if summary is None:
            continue
        for scope in (*LANGUAGES, "all"):
            scores = summary["scores"][scope]
            other = _pct(summary["other_language_rate"]) if scope == "all" else ""
            lines.append(
                [LABELS.get(name, name), scope, *[_pct(scores[m]) for m, _ in METRICS], other]
            )
    return lines


HEADER = ["pipeline", "language", *[f"{title} %" for _, title in METRICS], "other language %"]


def table(results: dict[str, Any], split: str) -> Table:
    out = Table(title=f"NLU on the {split} split")
    for column in HEADER:
        out.add_column(column, justify="left" if column in HEADER[:2] else "right")
    for row in _rows(results, split):
        out.add_row(*row)
    return out


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def cost_rows(results: dict[str, Any]) -> list[list[str]]:
    return [
        [
            LABELS.get(name, name),
            f"`{data['config']}`",
            f"{data['train_cpu_seconds']:.0f}",
            f"{data['train_seconds']:.0f}",
            f"{data['parse_ms_p50']:.1f} / {data['parse_ms_p95']:.1f}",
            f"{data['parse_cpu_ms_p50']:.1f} / {data['parse_cpu_ms_p95']:.1f}",
        ]
        for name, data in results["pipelines"].items()
    ]


def markdown(results: dict[str, Any], notes: str = "") -> str:
    host = results["machine"]
    busy = ""
    if host["load_average_at_start"] > host["cores"]:
        busy = (
            f" The machine was shared with other work (load average "
            f"{host['load_average_at_start']} at the start): wall-clock times and latencies are "
            "longer than on an idle machine; CPU times and scores are not affected."
        )
    sections = []
    for split, title in (
        ("frozen", "Frozen held-out split (`nlu/tests/heldout/`, written blind, never tuned on)"),
        ("old", "Old split (`nlu/tests/nlu/`, written together with the training data)"),
    ):
        rows = _rows(results, split)
        if rows:
            sections += [f"### {title}", "", *_markdown_table(HEADER, rows), ""]
    cost_header = [
        "pipeline", "config", "training CPU s", "training wall s",
        "parse p50 / p95 ms (wall)", "parse p50 / p95 ms (CPU)",
    ]  # fmt: skip
    return "\n".join(
        [
            "## NLU",
            "",
            "`python -m bench.nlu`: each pipeline trained on `nlu/data/nlu` (NLU only), then every "
            "message of both test splits parsed one at a time. An `nlu_fallback` counts as "
            "`out_of_scope` (both get the reply saying what the bot can do). In-scope accuracy: "
            "share of in-scope messages given their intent; out-of-scope recall: share of "
            "`out_of_scope` messages answered as out of scope or fallback; in-scope to bare "
            "fallback: share of in-scope messages that got `nlu_fallback`; other language: share "
            "of `other_languages.yml` messages that got `other_language` (the reply lists the "
            "languages the bot speaks). Macro-F1 over the intents of each language's file.",
            "",
            *sections,
            "### Cost",
            "",
            *_markdown_table(cost_header, cost_rows(results)),
            "",
            notes,
            "",
            f"Machine: {host['cpu']}, {host['cores']} cores, {host['ram_gib']} GiB RAM. "
            f"Run {results['finished_at']}.{busy} Details (per-intent recall, confusion counts): "
            "`bench/nlu/results.json`; charts: `bench/nlu/results.png` (scores per language) and "
            "`bench/nlu/confusion.png` (the chosen pipeline on the frozen split).",
            "",
            "![NLU benchmark](nlu/results.png)",
            "",
            "![NLU confusion](nlu/confusion.png)",
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
    splits = [s for s in ("frozen", "old") if s in results["pipelines"][names[0]]["splits"]]
    scopes = (*LANGUAGES, "all")
    fig, axes = plt.subplots(
        len(splits), len(METRICS), figsize=(4 * len(METRICS), 3.6 * len(splits)), squeeze=False
    )
    width = 0.8 / len(names)
    for row, split in enumerate(splits):
        for ax, (metric, title) in zip(axes[row], METRICS, strict=True):
            top = 0.0
            for i, name in enumerate(names):
                scores = results["pipelines"][name]["splits"][split]["scores"]
                values = [100 * scores[s][metric] for s in scopes]
                positions = [x + i * width for x in range(len(scopes))]
                label = LABELS.get(name, name) if (row, ax) == (0, axes[0][0]) else None
                ax.bar(positions, values, width, label=label)
                top = max(top, *values)
            ax.set_title(f"{title} % ({split})", fontsize=10)
            ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(scopes))], scopes)
            # Fallback rates are a few percent: on a 0-100 axis they would not show.
            ax.set_ylim(0, 100 if metric != "in_scope_fallback_rate" else max(5.0, 1.25 * top))
            ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="upper center", ncol=len(names), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def confusion_chart(summary: dict[str, Any], title: str, path: Path = CONFUSION_CHART) -> None:
    """Row-normalised confusion matrix (gold intent → predicted intent) of one split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    gold = sorted({g for g, _, _ in summary["confusion"]})
    predicted = gold + sorted({p for _, p, _ in summary["confusion"]} - set(gold))
    counts = np.zeros((len(gold), len(predicted)))
    for g, p, n in summary["confusion"]:
        counts[gold.index(g), predicted.index(p)] = n
    shares = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(0.45 * len(predicted) + 3, 0.4 * len(gold) + 2))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(predicted)), predicted, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(gold)), gold, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("intent")
    for i in range(len(gold)):
        for j in range(len(predicted)):
            if counts[i, j]:
                colour = "white" if shares[i, j] > 0.6 else "black"
                ax.text(
                    j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=6, color=colour
                )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nlu", description=__doc__)
    parser.add_argument(
        "--pipeline",
        action="append",
        metavar="NAME=CONFIG",
        help="pipelines to run (default: kopa=nlu/config.yml and Rasa's default)",
    )
    parser.add_argument(
        "--without", action="append", default=[], metavar="GLOB", help="leave training files out"
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="train with this random_seed for the classifiers (compare additions over several)",
    )
    parser.add_argument("--out", type=Path, help="write the results JSON here only")
    parser.add_argument("--notes", type=Path, help="Markdown to put under the cost table")
    parser.add_argument("--readme-from", type=Path, help="only rewrite README/charts from a JSON")
    parser.add_argument(
        "--trained",
        action="append",
        default=[],
        metavar="NAME=MODEL,WALL_S,CPU_S",
        help="parse with a model trained earlier from the same config and data (its times)",
    )
    args = parser.parse_args(argv)
    console = Console()
    if args.readme_from:
        write_outputs(json.loads(args.readme_from.read_text("utf-8")), args.notes, console)
        return
    if not RASA_BIN.exists():
        raise SystemExit("Rasa is not installed: run `make setup` first")

    pipelines = dict(PIPELINES)
    if args.pipeline:
        pipelines = {}
        for spec in args.pipeline:
            name, config = spec.split("=", 1)
            pipelines[name] = Path(config).resolve()
    results: dict[str, Any] = {
        "machine": machine(),
        "pipelines": {},
        "without": args.without,
        "seed": args.seed,
    }
    with tempfile.TemporaryDirectory(prefix="kopa-bench-nlu-") as tmp:
        workdir = Path(tmp)
        data = training_data(workdir, args.without)
        trained = {}
        for spec in args.trained:
            name, rest = spec.split("=", 1)
            model, wall, cpu = rest.split(",")
            trained[name] = (Path(model), float(wall), float(cpu))
        for name, config in pipelines.items():
            if args.seed is not None:
                config = with_seed(config, args.seed, workdir)
            results["pipelines"][name] = run_pipeline(
                name, config, data, workdir, console, trained.get(name)
            )
    results["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    for split in SPLITS:
        console.print(table(results, split))
    if args.out:
        args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", "utf-8")
        console.print(f"wrote {args.out}")
        return
    write_outputs(results, args.notes, console)


def write_outputs(results: dict[str, Any], notes: Path | None, console: Console) -> None:
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", "utf-8")
    chart(results)
    chosen = next(iter(results["pipelines"].values()))
    split = "frozen" if "frozen" in chosen["splits"] else "old"
    confusion_chart(
        chosen["splits"][split],
        f"{LABELS.get(next(iter(results['pipelines'])), 'chosen')}, {split} split, en+fr+es+sw",
    )
    update_readme(markdown(results, notes.read_text("utf-8") if notes else ""))
    console.print(f"wrote {_shown(RESULTS)}, {_shown(CHART)}, {_shown(CONFUSION_CHART)}, README")


if __name__ == "__main__":
    main()
