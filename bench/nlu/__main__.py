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
fallback); "to fallback" is the share of in-scope messages that got ``nlu_fallback``, "to bare
fallback" the share of those for which the dialogue has no guess to offer ("Did you mean…") and
no hardship to acknowledge (``scoring.bare_fallback``), so the reply only says what it can do; "other
language" is the share of ``other_languages.yml`` messages that got ``other_language`` (answered
with the list of languages the bot speaks). Macro-F1 averages the F1 of the intents of the
language's file.

``--pipeline NAME=CONFIG`` and ``--without GLOB`` run other configurations or leave training
files out (to measure what a training-data addition does), ``--out`` keeps their results apart.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.nlu.charts import chart, confusion_chart
from bench.nlu.host import machine
from bench.nlu.paths import CHART, CONFUSION_CHART, PIPELINES, RASA_BIN, RESULTS, SPLITS, shown
from bench.nlu.pipelines import run_pipeline, training_data, with_seed
from bench.nlu.report import LABELS, markdown, table, update_readme


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
    console.print(f"wrote {shown(RESULTS)}, {shown(CHART)}, {shown(CONFUSION_CHART)}, README")


if __name__ == "__main__":
    main()
