"""The "Chat" section of bench/README.md: a new run replaces the figures, never the history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.chat.report import missed_targets, results_markdown, scaling, write_readme

INTRO = ["The gateways run as processes of their own."]
OLD = """# Benchmarks

## Chat

Gateway, fake server and load client share one Python process.

Machine: X. Run: 2026-12-05 09:10 UTC (`python -m bench.chat --replicas 1,2`); load 0.1.

| Replicas | Path | p95 ms |
|---|---|---|
| 1 | Gateway, full turn | 28244 |

![scaling with replicas](chat/scaling.png)

Reading it: the gateway's p95 misses the target.

### Inbound burst beside a campaign

L-3 figures.

### Earlier runs

One Rasa server (2026-11-29): p95 3821.

## Seed and import

Untouched.
"""


def rows(gateway_p95: float, failed: int = 0) -> list[dict[str, Any]]:
    def row(path: str, p95: float, replicas: int) -> dict[str, Any]:
        return {
            "path": path, "concurrency": 200, "turns": 400, "failed": failed if
            path.startswith("Gate") else 0, "p50": 1000.0, "p95": p95, "throughput": 10.0,
            "replicas": replicas, "cpu": {"rasa": 30.0, "gateway": 5.0},
        }  # fmt: skip

    return [
        row(path, p95, replicas)
        for replicas in (1, 2)
        for path, p95 in (("Rasa REST (bare)", 10_000.0), ("Gateway, full turn", gateway_p95))
    ]


def run(readme: Path, when: str, gateway_p95: float) -> None:
    results = results_markdown(
        rows(gateway_p95), machine="M", when=when, load="0.0", command="python -m bench.chat"
    )
    write_readme(rows(gateway_p95), INTRO, results, readme)


def test_a_new_run_moves_the_previous_one_under_earlier_runs(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(OLD)

    run(readme, "2026-12-07 08:00 UTC", gateway_p95=11_000.0)
    text = readme.read_text()
    chat, rest = text.split("## Seed and import")

    assert rest == "\n\nUntouched.\n"
    current, history = chat.split("### Earlier runs")
    assert "Run: 2026-12-07 08:00 UTC" in current and "| 1 | Gateway, full turn | 200 |" in current
    assert "### Inbound burst beside a campaign\n\nL-3 figures." in current
    assert "28244" not in current and "chat/scaling.png" in current
    # The replaced run keeps its method, its figures and its notes; the chart is the new run's.
    assert "#### Run of 2026-12-05 09:10 UTC" in history
    for kept in ("share one Python process", "| 1 | Gateway, full turn | 28244 |", "Reading it"):
        assert kept in history
    assert "scaling.png" not in history
    assert history.index("2026-12-05") < history.index("One Rasa server (2026-11-29)")

    run(readme, "2026-12-08 08:00 UTC", gateway_p95=11_000.0)
    history = readme.read_text().split("### Earlier runs")[1]
    runs = [line for line in history.splitlines() if line.startswith("#### Run of")]
    assert runs == ["#### Run of 2026-12-07 08:00 UTC", "#### Run of 2026-12-05 09:10 UTC"]
    # A description equal to the current one is not repeated in the history.
    assert "The gateways run as processes of their own." not in history


def test_targets_p95_ratio_and_no_failed_turn_at_200() -> None:
    assert missed_targets(rows(12_000.0)) == []
    assert len(missed_targets(rows(12_100.0))) == 2
    assert missed_targets(rows(12_000.0, failed=3)) == [
        "1 replica(s), Gateway, full turn: 3 failed turns at 200",
        "2 replica(s), Gateway, full turn: 3 failed turns at 200",
    ]


def test_the_scaling_line_names_the_replica_count_after_which_throughput_stops_growing() -> None:
    def row(replicas: int, throughput: float, busy: float) -> dict[str, Any]:
        return {
            "path": "Gateway, full turn", "concurrency": 64, "replicas": replicas,
            "throughput": throughput, "host_busy": busy,
        }  # fmt: skip

    levelling = scaling([row(1, 6.0, 0.55), row(2, 10.0, 0.85), row(3, 10.5, 0.97)])
    still_growing = scaling([row(1, 6.0, 0.55), row(2, 10.0, 0.85), row(3, 12.0, 0.97)])

    assert levelling == [
        "- Gateway, full turn, 64 conversations: ok turns/s (host CPU busy) with 1, 2, 3 "
        "replicas: 6.0 (55 %) → 10.0 (85 %) → 10.5 (97 %); grows up to 2 replicas."
    ]
    assert still_growing[0].endswith("grows up to the most replicas run (3).")
