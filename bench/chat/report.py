"""The chat benchmark's results: the rich table, the scaling chart, the targets and the "Chat"
section of ``bench/README.md`` (each run's figures; earlier runs kept under "Earlier runs")."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.readme import README, replace_section

MESSAGE = "hello"
CHART = Path(__file__).resolve().parent / "scaling.png"
CPU_PARTS = ("rasa", "actions", "api", "gateway", "client+fake")
CPU_HEADER = "CPU s (Rasa / actions / API / gateways / client+fake)"

# The targets on this machine (issue 16): the gateway adds at most 20 % to the p95 of a
# bare Rasa turn, and loses no turn at 200 conversations.
MAX_P95_RATIO = 1.2
NO_FAILED_AT = 200


# Throughput "grows" with one more replica while it gains at least this share.
GROWTH = 0.10


def cpu_text(row: dict[str, Any]) -> str:
    cpu = row.get("cpu") or {}
    return " / ".join(f"{cpu.get(part, 0.0):.1f}" for part in CPU_PARTS)


def render_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Chat turn latency ('{MESSAGE}', replies: all of the turn)")
    columns = (
        "Replicas", "Path", "Conversations", "Turns", "Failed", "p50 ms", "p95 ms", "ok/s",
        "host CPU busy %", CPU_HEADER,
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "Path" else "right")
    for row in rows:
        table.add_row(
            str(row["replicas"]),
            row["path"],
            str(row["concurrency"]),
            str(row["turns"]),
            str(row["failed"]),
            f"{row['p50']:.0f}",
            f"{row['p95']:.0f}",
            f"{row['throughput']:.1f}",
            busy_text(row),
            cpu_text(row),
        )
    return table


def busy_text(row: dict[str, Any]) -> str:
    busy = row.get("host_busy")
    return "n/a" if busy is None else f"{100 * busy:.0f}"


def scaling(rows: list[dict[str, Any]]) -> list[str]:
    """Per path and load: throughput against replicas, and the replica count after which one
    more no longer adds ``GROWTH`` (with how busy the host's cores were)."""
    lines = []
    for path_name in sorted({r["path"] for r in rows}):
        for level in sorted({r["concurrency"] for r in rows}):
            series = sorted(
                (r for r in rows if r["path"] == path_name and r["concurrency"] == level),
                key=lambda r: r["replicas"],
            )
            if len(series) < 2:
                continue
            steps = " → ".join(f"{r['throughput']:.1f} ({busy_text(r)} %)" for r in series)
            peak = series[-1]
            for before, after in itertools.pairwise(series):
                if after["throughput"] < before["throughput"] * (1 + GROWTH):
                    peak = before
                    break
            grows = (
                f"grows up to {peak['replicas']} replicas"
                if peak is not series[-1]
                else f"grows up to the most replicas run ({peak['replicas']})"
            )
            lines.append(
                f"- {path_name}, {level} conversations: ok turns/s (host CPU busy) with "
                f"{', '.join(str(r['replicas']) for r in series)} replicas: {steps}; {grows}."
            )
    return lines


def ratios(rows: list[dict[str, Any]]) -> dict[tuple[int, int], tuple[float, float]]:
    """(replicas, conversations) -> gateway turn / bare Rasa turn, at p50 and p95."""
    out = {}
    for replicas, level in sorted({(r["replicas"], r["concurrency"]) for r in rows}):
        same = [r for r in rows if (r["replicas"], r["concurrency"]) == (replicas, level)]
        bare = next(r for r in same if r["path"].startswith("Rasa"))
        full = next(r for r in same if r["path"].startswith("Gate"))
        out[(replicas, level)] = (full["p50"] / bare["p50"], full["p95"] / bare["p95"])
    return out


def missed_targets(rows: list[dict[str, Any]]) -> list[str]:
    missed = [
        f"{replicas} replica(s), {level} conversations: gateway p95 x{p95:.2f} of bare Rasa"
        for (replicas, level), (_p50, p95) in ratios(rows).items()
        if p95 > MAX_P95_RATIO
    ]
    missed += [
        f"{r['replicas']} replica(s), {r['path']}: {r['failed']} failed turns at {r['concurrency']}"
        for r in rows
        if r["concurrency"] >= NO_FAILED_AT and r["failed"]
    ]
    return missed


def draw_chart(rows: list[dict[str, Any]], path: Path = CHART) -> None:
    """Turns per second and p95 against the number of replicas, per path and load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for path_name in sorted({r["path"] for r in rows}):
        for level in sorted({r["concurrency"] for r in rows}):
            series = sorted(
                (r for r in rows if r["path"] == path_name and r["concurrency"] == level),
                key=lambda r: r["replicas"],
            )
            label = f"{path_name}, {level} conv."
            replicas = [r["replicas"] for r in series]
            left.plot(replicas, [r["throughput"] for r in series], marker="o", label=label)
            right.plot(replicas, [r["p95"] / 1000 for r in series], marker="o", label=label)
    left.set(xlabel="Rasa replicas", ylabel="ok turns / s", title="Throughput")
    right.set(xlabel="Rasa replicas", ylabel="p95 turn (s)", title="p95 latency")
    for axis in (left, right):
        axis.set_xticks(sorted({r["replicas"] for r in rows}))
        axis.grid(alpha=0.3)
    left.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def results_markdown(
    rows: list[dict[str, Any]], *, machine: str, when: str, load: str, command: str
) -> list[str]:
    lines = [
        f"Machine: {machine}. Run: {when} (`{command}`); load average before the run {load}.",
        'A failed turn is one where the borrower got "try again shortly" or Rasa answered',
        "nothing; latencies are of ok turns. CPU seconds are per part during that row's runs;",
        "host CPU busy is the share of all the host's cores not idle meanwhile (PostgreSQL and",
        "Redis included).",
        "",
        f"| Replicas | Path | Conversations | Turns | Failed | p50 ms | p95 ms | ok turns/s | "
        f"host CPU busy % | {CPU_HEADER} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['replicas']} | {row['path']} | {row['concurrency']} | {row['turns']} | "
            f"{row['failed']} | {row['p50']:.0f} | {row['p95']:.0f} | "
            f"{row['throughput']:.1f} | {busy_text(row)} | {cpu_text(row)} |"
        )
    lines.append("")
    lines += scaling(rows)
    for (replicas, level), (p50, p95) in ratios(rows).items():
        lines.append(
            f"- {replicas} replica(s), {level} conversation(s): gateway turn / bare Rasa turn "
            f"p50 ×{p50:.2f}, p95 ×{p95:.2f} (target p95 ≤ ×{MAX_P95_RATIO})."
        )
    missed = missed_targets(rows)
    lines.append(f"- Targets: {'missed: ' + '; '.join(missed) if missed else 'met'}.")
    return lines


def keep_history(old_section: str, intro: list[str]) -> str:
    """The "Earlier runs" of the section a new run replaces, with that replaced run on top.

    The replaced run keeps its own description (the method changes between runs, e.g. the
    gateway moved out of the load client's process), its figures and the notes written under
    them (its description only when it differs from ``intro``); only the chart goes, since the
    file now shows the new run. Subsections other than "Earlier runs" (notes of other
    measurements) come back first, unchanged."""
    body = old_section.split("\n", 1)[1] if "\n" in old_section else ""
    first_sub = re.search(r"^### ", body, re.M)
    run = body[: first_sub.start()] if first_sub else body
    subsections = body[first_sub.start() :] if first_sub else ""
    run = "\n".join(line for line in run.splitlines() if not line.startswith("![")).strip()
    run = re.sub(r"\n{3,}", "\n\n", run.removeprefix("\n".join(intro)).strip())
    parts = re.split(r"(?=^### )", subsections, flags=re.M)
    earlier = next((p for p in parts if p.startswith("### Earlier runs")), "")
    others = [p.rstrip("\n") for p in parts if p.strip() and not p.startswith("### Earlier runs")]
    earlier_body = earlier.split("\n", 1)[1].strip() if "\n" in earlier else ""
    when = re.search(r"Run: ([^(]+?) \(", run)
    replaced = f"#### Run of {when.group(1)}\n\n{run}" if when else run
    history = "\n\n".join(p for p in (replaced, earlier_body) if p)
    return "\n\n".join([*others, "### Earlier runs\n\n" + history]) + "\n"


def write_readme(
    rows: list[dict[str, Any]], intro: list[str], results: list[str], readme: Path = README
) -> None:
    lines = ["## Chat", "", *intro, "", *results]
    if len({r["replicas"] for r in rows}) > 1:
        lines += ["", f"![scaling with replicas](chat/{CHART.name})"]
    section = "\n".join(lines) + "\n"
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    found = re.search(r"^## Chat\n.*?(?=^## |\Z)", text, re.S | re.M)
    if found:
        section += "\n" + keep_history(found.group(0), intro)
    replace_section("Chat", section, readme)
