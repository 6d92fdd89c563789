"""Seed and import speed for a 100000-borrower portfolio, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.seed_import [--borrowers 100000] [--no-postgres] [--no-readme]

Steps, each in a fresh process so that its peak memory is its own:

1. ``kopa seed`` into an empty SQLite file;
2. the same portfolio written as an import folder (CSV, from the same generator and seed);
3. ``kopa import`` of that folder into an empty SQLite file, then again (nothing changes);
4. 1 and 3 on PostgreSQL, in a scratch database created on the ``KOPA_TEST_DATABASE_URL`` server
   (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) and dropped afterwards.

Prints a rich table and rewrites the "Seed and import" section of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "bench" / "README.md"
SECTION = "## Seed and import"
SEED = 2026
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PEPPER = "bench-pepper"


def _phase(kind: str, url: str, borrowers: int, folder: str, today: str) -> dict[str, Any]:
    """Run one step in this process; answer seconds, rows and peak memory."""
    day = date.fromisoformat(today)
    started = time.perf_counter()
    if kind == "seed":
        from api.core.migrate import upgrade
        from portfolio.synthetic.seed import seed_portfolio

        upgrade(url)
        started = time.perf_counter()  # the schema is not part of the seed
        report = seed_portfolio(
            url, borrowers=borrowers, seed=SEED, today=day, pepper=PEPPER, migrate=False
        )
        rows, detail = report.rows, report.counts
    elif kind == "export":
        from portfolio.importer.export import write_synthetic_export

        counts = write_synthetic_export(Path(folder), borrowers=borrowers, seed=SEED, today=day)
        rows, detail = sum(counts.values()), counts
    elif kind == "import":
        from api.core.migrate import upgrade
        from portfolio.importer import run_import

        upgrade(url)
        started = time.perf_counter()  # the schema is not part of the import
        result = run_import(Path(folder), database_url=url, pepper=PEPPER)
        # Rows read from the files; consents come from borrowers.csv, not rows of their own.
        rows = sum(
            result.created[kind] + result.updated.get(kind, 0) + result.unchanged.get(kind, 0)
            for kind in result.created
            if kind != "consents"
        )
        detail = {"changes": result.changes}
    else:
        raise ValueError(kind)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "rows": rows, "peak_mib": peak_kib / 1024, "detail": detail}


def _run(kind: str, url: str, borrowers: int, folder: Path, today: date) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.seed_import",
        "--phase",
        kind,
        url,
        str(borrowers),
        str(folder),
        today.isoformat(),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = match.group(1).strip() if match else cpu
    ram = "?"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        match = re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text())
        ram = f"{int(match.group(1)) / 1024 / 1024:.0f} GiB" if match else ram
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram} RAM, Python {platform.python_version()}, "
        f"load average {load:.1f} at start"
    )


def _postgres_scratch(base: str) -> tuple[str, Any]:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from api.core.db import build_engine

    name = f"kopa_bench_{uuid.uuid4().hex[:8]}"
    admin = build_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(base).set(database=name).render_as_string(hide_password=False), drop


def _write_readme(table_md: str, machine: str, borrowers: int) -> None:
    body = (
        f"{SECTION}\n\n"
        f"`.venv/bin/python -m bench.seed_import` ({borrowers:,} borrowers, seed {SEED}). "
        "Each step runs in its own process; peak memory is "
        "that process's maximum resident set size (`resource`). Rows are all rows written "
        "(seed) or read from the CSV files (export, import).\n\n"
        f"Machine: {machine}. The machine was shared with other work (Rasa trainings, test "
        "suites) during the run, so these are pessimistic.\n\n"
        f"{table_md}\n\n"
        "Notes: the seed draws rows in Python and hands them to the driver in chunks "
        "(`executemany` on SQLite, `COPY` on PostgreSQL), writing one chunk while drawing the "
        "next. The import validates every row first, then writes new borrowers, loans, "
        "schedules and the payments of new loans in bulk; payments of loans that already "
        "existed go one by one through `record_payment` (about a few milliseconds each). "
        "The re-import reads and checks everything and changes nothing.\n"
    )
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(body + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    README.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--borrowers", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--phase", nargs=5, metavar=("KIND", "URL", "N", "FOLDER", "TODAY"))
    args = parser.parse_args()
    if args.phase:
        kind, url, n, folder, today = args.phase
        print(json.dumps(_phase(kind, url, int(n), folder, today)))
        return

    console = Console()
    machine = _machine()
    today = datetime.now(UTC).date()
    n = args.borrowers
    results: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="kopa-bench-") as tmp:
        folder = Path(tmp) / "export"
        plan: list[tuple[str, str, str]] = [
            ("seed", "SQLite", f"sqlite:///{tmp}/seed.db"),
            ("export", "CSV files", ""),
            ("import", "SQLite", f"sqlite:///{tmp}/import.db"),
            ("re-import", "SQLite", f"sqlite:///{tmp}/import.db"),
        ]
        drops = []
        if not args.no_postgres:
            base = os.environ.get("KOPA_TEST_DATABASE_URL", DEFAULT_PG)
            seed_pg, drop_seed = _postgres_scratch(base)
            import_pg, drop_import = _postgres_scratch(base)
            drops = [drop_seed, drop_import]
            plan += [
                ("seed", "PostgreSQL", seed_pg),
                ("import", "PostgreSQL", import_pg),
                ("re-import", "PostgreSQL", import_pg),
            ]
        try:
            for step, where, url in plan:
                console.print(f"{step} on {where}...")
                kind = "import" if step == "re-import" else step
                results.append((step, where, _run(kind, url, n, folder, today)))
        finally:
            for drop in drops:
                drop()

    table = Table(title=f"Seed and import, {n:,} borrowers")
    headers = ("step", "database", "rows", "seconds", "rows/s", "peak MiB")
    for header in headers:
        table.add_column(header, justify="left" if header in {"step", "database"} else "right")
    lines = ["| " + " | ".join(headers) + " |", "|---|---|---:|---:|---:|---:|"]
    for step, where, r in results:
        cells = (
            step,
            where,
            f"{r['rows']:,}",
            f"{r['seconds']:.1f}",
            f"{r['rows'] / r['seconds']:,.0f}",
            f"{r['peak_mib']:.0f}",
        )
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    console.print(machine)
    for step, where, r in results:
        if step == "re-import" and r["detail"]["changes"] != 0:
            raise SystemExit(f"re-import on {where} changed {r['detail']['changes']} rows")
    if not args.no_readme:
        _write_readme("\n".join(lines), machine, n)
        console.print(f"updated {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
