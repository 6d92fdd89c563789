"""The results as rich tables and as the "NLU" section of the benchmark README."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.nlu.paths import README
from bench.nlu.scoring import LANGUAGES

LABELS = {
    "kopa": "Kopa pipeline",
    "diet": "DIET intents (Kopa's pipeline until 2026-12-07)",
    "kopa-main-data": "Kopa pipeline without variety2, 3, 5",
    "kopa-ngrams": "Kopa n-grams only (Kopa's pipeline until 2026-12-07, evening)",
    "rasa_default": "Rasa default",
    "before": "before (no gate, no variety data)",
    "use": "Kopa + USE sentence features",
    "kopa-without-variety": "Kopa pipeline without `*_variety.yml`",
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


METRICS = (
    ("in_scope_accuracy", "in-scope accuracy"),
    ("out_of_scope_recall", "out-of-scope recall"),
    ("macro_f1", "macro-F1"),
    ("in_scope_fallback_rate", "in-scope to fallback"),
    ("in_scope_bare_fallback_rate", "in-scope to bare fallback"),
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
                [LABELS.get(name, name), scope, *[_pct(scores.get(m)) for m, _ in METRICS], other]
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
            "`out_of_scope` messages answered as out of scope or fallback; in-scope to fallback: "
            "share of in-scope messages that got `nlu_fallback` (the dialogue then asks \"Did you "
            "mean…\" with the likeliest requests as buttons, or acknowledges a hardship first); "
            "in-scope to bare fallback: those of them for which the dialogue has no guess to offer "
            "(`actions/session.py`: no request at 0.05 or more, no hardship at 0.1 or more among "
            "the top four), so the reply only says what the bot can do; other language: share "
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
