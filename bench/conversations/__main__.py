"""``python -m bench.conversations``: play every frozen borrower conversation script.

The scripts (``tests/conversation/scripts/<lang>/*.yml``, written blind to the dialogue) run one
after another through one running stack (loan API on SQLite, action server, Rasa), each from its
persona's documented state (``tests/conversation/script_runner.py``). Prints a table per language
(passed or the first failing expectation), writes ``bench/conversations/results.json`` and the
"Conversations" section of ``bench/README.md``, and exits non-zero unless every script passes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.chat.__main__ import machine
from bench.readme import replace_section
from i18n import SUPPORTED_LOCALES
from kopa.paths import ROOT
from tests.conversation.script_checks import ScriptResult
from tests.conversation.script_format import COMPLAINTS, Script, load_scripts
from tests.conversation.script_runner import ScriptPlayer

RESULTS = Path(__file__).resolve().parent / "results.json"
HEADING = "Conversations"


def first_failure(result: ScriptResult) -> str:
    if result.passed:
        return ""
    failure = result.failures[0]
    where = "outcome" if failure.turn is None else f"turn {failure.turn}"
    return f"{where}: {COMPLAINTS.get(failure.kind, failure.kind)} ({failure.got})"


def language_table(language: str, results: list[ScriptResult]) -> Table:
    passed = sum(r.passed for r in results)
    table = Table(title=f"{language}: {passed}/{len(results)} passed", title_justify="left")
    table.add_column("script", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("first failing expectation")
    for result in results:
        mark = "[green]passed[/]" if result.passed else "[red]failed[/]"
        table.add_row(result.script.id, mark, first_failure(result))
    return table


def complaint_counts(results: list[ScriptResult]) -> Counter[str]:
    """How many scripts hit each kind of failure (a script counts once per kind)."""
    counts: Counter[str] = Counter()
    for result in results:
        counts.update({COMPLAINTS.get(f.kind, f.kind) for f in result.failures})
    return counts


def summary(
    results: list[ScriptResult], *, timing: dict[str, float], when: str, load: str
) -> dict[str, Any]:
    languages = {
        lang: {
            "passed": sum(r.passed for r in results if r.script.language == lang),
            "total": sum(r.script.language == lang for r in results),
        }
        for lang in SUPPORTED_LOCALES
        if any(r.script.language == lang for r in results)
    }
    return {
        "run": when,
        "commit": commit(),
        "machine": machine(),
        "load_average_before": load,
        "seconds": {k: round(v, 1) for k, v in timing.items()},
        "passed": sum(r.passed for r in results),
        "total": len(results),
        "languages": languages,
        "complaints": dict(complaint_counts(results).most_common()),
        "scripts": [r.as_json() for r in results],
    }


def commit() -> str:
    """The commit the dialogue was played at ("+changes": with uncommitted changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+changes" if dirty else head


def readme_section(data: dict[str, Any]) -> str:
    seconds = data["seconds"]
    lines = [
        f"## {HEADING}",
        "",
        "`python -m bench.conversations` plays the frozen borrower conversation scripts",
        "(`tests/conversation/scripts/`, written blind to the dialogue; issue 15) through the real",
        "stack, as WhatsApp chats from the personas' own phones, each from its persona's seeded",
        "state (`tests/conversation/script_runner.py`; the same checks as",
        "`tests/conversation/test_scripts.py`). A script passes when every expectation of every",
        "turn and its outcome in the loan API's database hold. Per-script details, with",
        "transcripts: `bench/conversations/results.json`.",
        "",
        f"Machine: {data['machine']}. Run: {data['run']} on commit {data['commit']}; load "
        f"average before the run {data['load_average_before']}. Wall time "
        f"{seconds['total']:.0f} s: stack start {seconds['stack_start']:.0f} s, "
        f"{data['total']} scripts {seconds['play']:.0f} s.",
        "",
        "| language | passed | scripts |",
        "|---|---:|---:|",
    ]
    for lang, counts in data["languages"].items():
        lines.append(f"| {lang} | {counts['passed']} | {counts['total']} |")
    lines.append(f"| all | {data['passed']} | {data['total']} |")
    if data["complaints"]:
        lines += [
            "",
            "What went wrong, as the borrower would say it (scripts hitting it, each counted once",
            "per kind):",
            "",
            "| failure | scripts |",
            "|---|---:|",
        ]
        lines += [f"| {complaint} | {count} |" for complaint, count in data["complaints"].items()]
    else:
        lines += ["", "Nothing went wrong: every expectation of every script held."]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lang", action="append", help="only these languages (repeatable)")
    parser.add_argument("--only", help="only scripts whose id contains this text")
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--rasa-timeout", type=float, default=600.0, help="seconds Rasa may take to load its model"
    )
    args = parser.parse_args(argv)
    scripts: list[Script] = [
        s
        for s in load_scripts()
        if (not args.lang or s.language in args.lang) and (not args.only or args.only in s.id)
    ]
    console = Console()
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    began = time.perf_counter()
    results: list[ScriptResult] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as running:
        with console.status("starting the loan API, action server and Rasa..."):
            player = running.enter_context(
                ScriptPlayer.start(Path(tmp), rasa_timeout=args.rasa_timeout)
            )
        started = time.perf_counter()
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[script]}"),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("scripts", total=len(scripts), script="")
            for script in scripts:
                progress.update(task, script=script.id)
                results.append(player.play(script))
                progress.advance(task)
    finished = time.perf_counter()
    timing = {"total": finished - began, "stack_start": started - began, "play": finished - started}
    for lang in SUPPORTED_LOCALES:
        chosen = [r for r in results if r.script.language == lang]
        if chosen:
            console.print(language_table(lang, chosen))
    data = summary(results, timing=timing, when=when, load=load)
    args.results.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    console.print(f"{data['passed']}/{data['total']} scripts passed in {timing['total']:.0f} s")
    for complaint, count in data["complaints"].items():
        console.print(f"  {count:3d}  {complaint}")
    if not args.no_readme and not args.lang and not args.only:
        replace_section(HEADING, readme_section(data))
        console.print("wrote the Conversations section of bench/README.md")
    return 0 if data["passed"] == data["total"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
