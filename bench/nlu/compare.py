"""Compare two sets of ``python -m bench.nlu --out`` results on the frozen split, seed-averaged.

``python -m bench.nlu.compare --before a42.json a7.json --after b42.json b7.json`` prints, per
language, in-scope accuracy, out-of-scope recall and the share of in-scope messages sent to a bare
fallback, each averaged over the runs given (one per ``--seed``), and lists the language × intent
recalls that move by more than 2 points. Run each side with the same seeds: a frozen-split intent
has about 36 messages, so one message is 2.8 points, and one training per side mostly measures the
seed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.nlu.scoring import LANGUAGES

SPLIT = "frozen"
MOVE = 0.02


def _frozen(paths: Sequence[Path]) -> list[dict[str, Any]]:
    runs = []
    for path in paths:
        pipelines = json.loads(path.read_text(encoding="utf-8"))["pipelines"]
        runs.append(next(iter(pipelines.values()))["splits"][SPLIT])
    return runs


def _mean(runs: Sequence[dict[str, Any]], *keys: str) -> float:
    """The mean over ``runs`` of ``run[keys[0]][keys[1]]...`` (0 where a run lacks it)."""
    values = []
    for run in runs:
        value: Any = run
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(float(value or 0.0))
    return mean(values)


def intent_moves(
    before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]
) -> list[tuple[float, str, str, float, float]]:
    """(change, language, intent, before, after) of each recall that moves by more than 2 points."""
    moves = []
    for lang in LANGUAGES:
        for intent in before[0]["per_intent_recall"][lang]:
            b = _mean(before, "per_intent_recall", lang, intent)
            a = _mean(after, "per_intent_recall", lang, intent)
            if abs(a - b) > MOVE:
                moves.append((a - b, lang, intent, b, a))
    return sorted(moves)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nlu.compare", description=__doc__)
    parser.add_argument("--before", type=Path, nargs="+", required=True)
    parser.add_argument("--after", type=Path, nargs="+", required=True)
    args = parser.parse_args(argv)
    before, after = _frozen(args.before), _frozen(args.after)
    console = Console()

    table = Table(title=f"{SPLIT} split, mean of {len(before)} / {len(after)} runs, before → after")
    keys = {
        "in-scope accuracy %": "in_scope_accuracy",
        "out-of-scope recall %": "out_of_scope_recall",
        "to fallback %": "in_scope_fallback_rate",
        "to bare fallback %": "in_scope_bare_fallback_rate",
    }
    columns = ("language", *keys)
    for column in columns:
        table.add_column(column, justify="left" if column == "language" else "right")
    for scope in (*LANGUAGES, "all"):
        cells = [scope]
        for key in keys.values():
            b = _mean(before, "scores", scope, key)
            a = _mean(after, "scores", scope, key)
            cells.append(f"{100 * b:.1f} → {100 * a:.1f}")
        table.add_row(*cells)
    console.print(table)
    other_b = _mean(before, "other_language_rate")
    other_a = _mean(after, "other_language_rate")
    console.print(f"other languages given the list: {100 * other_b:.1f} → {100 * other_a:.1f}")

    moves = intent_moves(before, after)
    drops = [m for m in moves if m[0] < 0]
    console.print(f"language × intent recalls up > 2 points: {len(moves) - len(drops)}")
    console.print(f"down > 2 points: {len(drops)}")
    for change, lang, intent, b, a in drops:
        console.print(f"  {lang} {intent}: {100 * b:.1f} → {100 * a:.1f} ({100 * change:+.1f})")


if __name__ == "__main__":
    main()
