"""``python -m bench.notify``: how fast the notifier plans, delivers and claims.

1. Plan: ``kopa seed``'s synthetic portfolio (``portfolio``) of about 100 000 loans, planned
   at one instant on SQLite and on PostgreSQL (outbox rows and ledger events written).
2. Deliver: a campaign of ``rate x seconds`` reminders, several ``kopa notify worker`` processes
   sharing the Redis limiter set to the fake Telegram server's own limit; throughput is measured
   at the fake server, as a fraction of its limit, with the most it saw in any one second.
3. Claim: ``claim()`` latency (p50/p95) over a backlog of one million outbox rows (PostgreSQL),
   and the query plan of the claim.

Results go to a rich table and to the "Notifier" section of ``bench/README.md``. The parts:
``planning``, ``campaign`` and ``delivery`` (with ``cpu``), ``claiming`` (with ``backlog``),
``report``; ``host`` holds the machine's facts and the throwaway databases.
Services: ``KOPA_BENCH_DATABASE_URL`` (default the local PostgreSQL ``test`` database, used only
to create and drop databases of its own) and ``KOPA_BENCH_REDIS_URL``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from typing import Any

from rich.console import Console

from bench.notify.claiming import bench_claim, claim_misses
from bench.notify.delivery import bench_deliver
from bench.notify.host import fresh_postgres, machine
from bench.notify.planning import bench_plan
from bench.notify.report import CHART, README, chart, render, summary_table, write_readme

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--borrowers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="delivery runs at --rate")
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--runnable", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument(
        "--skip", action="append", default=[], help="plan-sqlite|plan-pg|deliver|claim"
    )
    parser.add_argument("--max-seconds", type=float, default=90.0, help="delivery time budget")
    parser.add_argument(
        "--sustainable-rate", type=float, default=40.0, help="a second delivery run (0: none)"
    )
    parser.add_argument(
        "--busy",
        type=int,
        default=2,
        help="one more run at --rate beside this many CPU-bound processes (0: none)",
    )
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument(
        "--storm-at", type=float, default=None, help="inject three 429s this many seconds in"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "plan": {}}
    # Delivery first: planning leaves PostgreSQL busy (checkpoints, dropped databases).
    if "deliver" not in args.skip:
        results["deliver"] = []
        # Runs on a shared machine vary: several, each on a fresh database and fake server.
        for n in range(args.repeat):
            console.print(f"delivering at {args.rate:.0f}/s, run {n + 1} of {args.repeat} ...")
            results["deliver"].append(
                bench_deliver(
                    args.rate, args.seconds, args.workers, args.max_seconds, args.storm_at
                )
            )
        if args.busy:
            console.print(f"delivering at {args.rate:.0f}/s beside {args.busy} busy processes ...")
            results["deliver"].append(
                bench_deliver(
                    args.rate, args.seconds, args.workers, args.max_seconds, busy=args.busy
                )
            )
        if args.sustainable_rate:
            results["deliver"].append(
                bench_deliver(
                    args.sustainable_rate, args.max_seconds / 3, args.workers, args.max_seconds
                )
            )
    if "plan-sqlite" not in args.skip:
        with tempfile.TemporaryDirectory() as tmp:
            console.print("planning on SQLite ...")
            results["plan"]["SQLite"] = bench_plan(f"sqlite:///{tmp}/bench.db", args.borrowers)
    if "plan-pg" not in args.skip:
        console.print("planning on PostgreSQL ...")
        with fresh_postgres() as url:
            results["plan"]["PostgreSQL"] = bench_plan(url, args.borrowers)
    if "claim" not in args.skip:
        console.print("claiming from the backlog ...")
        results["claim"] = bench_claim(args.backlog, args.runnable, args.rounds)
    console.print(summary_table(results))
    console.print_json(json.dumps(results, default=str))
    if results.get("deliver"):
        chart(results["deliver"], CHART)
        console.print(f"wrote {CHART}")
    if not args.no_readme:
        write_readme(render(results))
        console.print(f"wrote the Notifier section of {README}")
    misses = claim_misses(results["claim"]) if "claim" in results else []
    if misses:
        console.print(f"[red]L-4 missed:[/red] {'; '.join(misses)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
