"""Run every benchmark in turn (``make bench``); each one rewrites its own section of README.md.

They run one after another, never together: each measures the machine, so they must not compete
for its two cores. Any benchmark that fails is reported and the rest still run.
"""

from __future__ import annotations

import subprocess
import sys

from rich.console import Console

BENCHMARKS = (
    "bench.seed_import",
    "bench.nlu",
    "bench.chat",
    "bench.notify",
    "bench.conversations",
    "bench.risk",
)


def main() -> int:
    console = Console()
    failed = []
    for module in BENCHMARKS:
        console.rule(f"[bold]{module}")
        result = subprocess.run([sys.executable, "-m", module], check=False)
        if result.returncode != 0:
            failed.append(module)
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)}")
        return 1
    console.print("[green]all benchmarks ran; results are in bench/README.md[/]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
