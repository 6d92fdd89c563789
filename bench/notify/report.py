"""The results as a rich table, a chart of delivery per second and the README's Notifier section."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.notify.host import ROOT

README = ROOT / "bench" / "README.md"
CHART = ROOT / "bench" / "notify_delivery.png"
CPU_PARTS = ("workers", "judging", "PostgreSQL", "fake", "Redis")


def summary_table(results: dict[str, Any]) -> Table:
    table = Table(title="Notifier benchmark")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for db, r in results["plan"].items():
        table.add_row(f"plan {db}: loans", str(r["loans"]))
        table.add_row(f"plan {db}: seconds", str(r["seconds"]))
        table.add_row(f"plan {db}: planned / suppressed", f"{r['planned']} / {r['suppressed']}")
        table.add_row(f"plan {db}: second run inserts", str(r["replan_inserted"]))
    for d in results.get("deliver", []):
        name = f"deliver at {d['rate_limit']:.0f}/s" + _beside(d)
        table.add_row(f"{name}: delivered", f"{d['delivered']} of {d['planned']}")
        table.add_row(f"{name}: messages/s", str(d["throughput"]))
        table.add_row(f"{name}: fraction of limit", str(d["fraction"]))
        table.add_row(f"{name}: steady-state fraction", str(d["steady_fraction"]))
        table.add_row(f"{name}: most in any 1 s", str(d["max_in_any_second"]))
        table.add_row(f"{name}: duplicates / 429s", f"{d['duplicates']} / {d['refused_429']}")
        table.add_row(f"{name}: CPU cores in use", _cores(d["cpu_cores"]))
        table.add_row(f"{name}: CPU ms per message", str(d["cpu_ms_per_message"]))
    if "claim" in results:
        c = results["claim"]
        table.add_row("claim p50 / p95 (ms)", f"{c['p50_ms']} / {c['p95_ms']}")
        table.add_row("claim uses partial index", str(c["uses_partial_index"]))
    return table


def chart(runs: list[dict[str, Any]], path: Path) -> None:
    """Messages per second at the fake provider against its limit, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    for number, run in enumerate(runs, 1):
        rate = run["rate_limit"]
        series = [n / rate for n in run["per_second"]]
        label = f"run {number}: limit {rate:.0f}/s{_beside(run)}"
        ax.plot(range(len(series)), series, marker=".", label=label)
        refused = run["refused_per_second"]
        for second, count in enumerate(refused):
            if count:
                ax.annotate(f"{count}x429", (second, 1.0), fontsize=7, color="red")
    ax.axhline(1.0, color="red", linewidth=1, linestyle="--")
    ax.axhline(0.95, color="grey", linewidth=1, linestyle=":")
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("second of the campaign (first and last seconds are partial)")
    ax.set_ylabel("delivered / limit")
    ax.set_title("Notifier delivery at the fake Telegram server")
    ax.legend(loc="lower center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_readme(section: str) -> None:
    existing = README.read_text() if README.exists() else "# Benchmarks\n"
    lines = existing.splitlines()
    out: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("## "):
            skipping = line.strip() == "## Notifier"
            if skipping:
                continue
        if not skipping:
            out.append(line)
    text_ = "\n".join(out).rstrip() + "\n\n" + section.rstrip() + "\n"
    README.write_text(text_)


def render(results: dict[str, Any]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Notifier",
        "",
        f"`python -m bench.notify` on {results['machine']}, {when}. PostgreSQL 15, Redis, the "
        "fake provider and the workers all on this machine.",
        "",
    ]
    if results.get("note"):
        lines += [str(results["note"]), ""]
    plans = results.get("plan", {})
    if plans:
        lines += [
            "Planning one instant for the synthetic portfolio (`portfolio`), writing outbox "
            "rows and ledger events; a second run at the same instant must insert nothing:",
            "",
            "| database | loans | candidates | planned | suppressed | seconds | loans/s | "
            "second run inserts |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for db, r in plans.items():
            lines.append(
                f"| {db} | {r['loans']} | {r['candidates']} | {r['planned']} | "
                f"{r['suppressed']} | {r['seconds']} | {r['loans_per_second']} | "
                f"{r['replan_inserted']} ({r['replan_seconds']} s) |"
            )
        lines.append("")
    runs = results.get("deliver") or []
    if runs:
        lines += [
            f"Delivery: {runs[0]['workers']} `kopa notify worker` processes (PostgreSQL, the Redis "
            "limiter set to the fake Telegram server's own limit), measured at the fake server:",
            "",
            "| run | limit/s | busy processes beside | delivered | duplicates | seconds | "
            "messages/s | fraction of limit | steady-state fraction | most in any 1 s | "
            "refused (429) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for number, d in enumerate(runs, 1):
            lines.append(
                f"| {number} | {d['rate_limit']:.0f} | {d.get('busy', 0)} | "
                f"{d['delivered']} of {d['planned']} | "
                f"{d['duplicates']} | {d['seconds']} | {d['throughput']} | {d['fraction']} | "
                f"{d['steady_fraction']} | {d['max_in_any_second']} | {d['refused_429']} |"
            )
        lines += [
            "",
            f"![delivered per second]({CHART.name})",
            "",
            "CPU while delivering (cores busy, from the campaign's release to its last row; "
            "PostgreSQL counts every server process):",
            "",
            "| run | limit/s | " + " | ".join(CPU_PARTS) + " | in all | CPU ms per message |",
            "|---|---|" + "---|" * len(CPU_PARTS) + "---|---|",
        ]
        for number, d in enumerate(runs, 1):
            cores = d["cpu_cores"]
            lines.append(
                f"| {number} | {d['rate_limit']:.0f} | "
                + " | ".join(str(cores.get(part, 0.0)) for part in CPU_PARTS)
                + f" | {cores['all']} | {d['cpu_ms_per_message']} |"
            )
        lines.append("")
        for number, d in enumerate(runs, 1):
            totals = d.get("worker_totals", {})
            lines.append(
                f"- Run {number} ({d['rate_limit']:.0f}/s): the workers reported "
                + ", ".join(f"{name} {value}" for name, value in totals.items() if value)
                + "."
            )
        lines.append("")
    c = results.get("claim")
    if c:
        lines += [
            f"Claiming batches of {c['batch']} (`FOR UPDATE SKIP LOCKED`) from an outbox of "
            f"{c['backlog']} rows, {c['runnable']} of them due, {c['rounds']} rounds: "
            f"p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms; the claim uses the partial index "
            f"`ix_outbox_message_due`: {'yes' if c['uses_partial_index'] else 'no'}.",
            "",
        ]
    return "\n".join(lines)


def _beside(run: dict[str, Any]) -> str:
    return f" beside {run['busy']} busy" if run.get("busy") else ""


def _cores(cores: dict[str, float]) -> str:
    return ", ".join(f"{part} {cores.get(part, 0.0)}" for part in CPU_PARTS) + f"; {cores['all']}"
