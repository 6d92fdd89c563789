"""``python -m bench.notify``: how fast the notifier plans, delivers and claims.

1. Plan: ``kopa seed``'s synthetic portfolio (``portfolio``) of about 100 000 loans, planned
   at one instant on SQLite and on PostgreSQL (outbox rows and ledger events written).
2. Deliver: a campaign of ``rate x seconds`` reminders, several ``kopa notify worker`` processes
   sharing the Redis limiter set to the fake Telegram server's own limit; throughput is measured
   at the fake server, as a fraction of its limit, with the most it saw in any one second.
3. Claim: ``claim()`` latency (p50/p95) over a backlog of one million outbox rows (PostgreSQL),
   and the query plan of the claim.

Results go to a rich table and to the "Notifier" section of ``bench/README.md``.
Services: ``KOPA_BENCH_DATABASE_URL`` (default the local PostgreSQL ``test`` database, used only
to create and drop databases of its own) and ``KOPA_BENCH_REDIS_URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "bench" / "README.md"
CHART = ROOT / "bench" / "notify_delivery.png"
PG_BASE = os.environ.get(
    "KOPA_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("KOPA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
TOKEN = "4242:bench-token"  # noqa: S105 - the fake server accepts any token
console = Console()


# -- machine and databases -------------------------------------------------------------------
def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration):
        ram = "RAM unknown"
    return f"{cpu}, {os.cpu_count()} cores, {ram}, Python {platform.python_version()}"


@contextmanager
def fresh_postgres() -> Iterator[str]:
    from api.core.db import build_engine
    from api.core.migrate import upgrade

    name = f"kopa_bench_{uuid.uuid4().hex[:8]}"
    admin = build_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_BASE).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- 1. planning -----------------------------------------------------------------------------
PLAN_AT = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def bench_plan(url: str, borrowers: int) -> dict[str, Any]:
    from api.core.db import build_engine
    from notifier.planner import Planner
    from portfolio.synthetic.seed import seed_portfolio

    seeded = seed_portfolio(
        url, borrowers=borrowers, seed=11, today=PLAN_AT.date(), pepper="bench-pepper"
    )
    engine = build_engine(url)
    with engine.connect() as conn:
        loans = conn.execute(text("SELECT count(*) FROM loan")).scalar_one()
    started = time.perf_counter()
    with Session(engine) as session:
        result = Planner().plan(session, PLAN_AT, write=True)
        session.commit()
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    with Session(engine) as session:
        again = Planner().plan(session, PLAN_AT, write=True)
        session.commit()
    replan = time.perf_counter() - started
    engine.dispose()
    planned = sum(1 for c in result.candidates if c.status == "planned")
    return {
        "loans": int(loans),
        "seed_seconds": round(seeded.seconds, 1),
        "candidates": len(result.candidates),
        "planned": planned,
        "suppressed": len(result.candidates) - planned,
        "inserted": result.inserted,
        "seconds": round(seconds, 2),
        "loans_per_second": round(loans / seconds),
        "replan_inserted": again.inserted,
        "replan_seconds": round(replan, 2),
    }


# -- 2. delivery -----------------------------------------------------------------------------
# The fake stands for a remote provider, which counts requests by its own clock as they arrive.
# Sharing the workers' two cores, the fake's clock waited for a core: requests sent evenly were
# stamped in bunches, and it counted up to 1000 in a second of sends paced at 960.
FAKE_NICENESS = -10


def _provider_priority() -> None:
    try:
        os.nice(FAKE_NICENESS)
    except PermissionError:
        pass  # not root: the fake runs at the workers' priority


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _noon_zone() -> str:
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def _campaign_rows(url: str, count: int, config: Any) -> int:
    """``count`` borrowers, each with a verified Telegram chat and an installment due in 3 days."""
    from zoneinfo import ZoneInfo

    from api.core.db import build_engine
    from notifier.planner import Planner

    engine = build_engine(url)
    zone = _noon_zone()
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO branch (id, code, name, country, timezone, currency, "
                "payment_instructions, extra_holidays, created_at) VALUES "
                "(1, 'BENCH', 'Bench', 'ZZ', :tz, 'KES', '{}', '[]', :now)"
            ),
            {"tz": zone, "now": now},
        )
        borrowers, identities, loans, installments = [], [], [], []
        for n in range(1, count + 1):
            borrowers.append({"id": n, "ext": f"BB{n}", "phone": f"+2547{n:08d}", "now": now})
            identities.append({"id": n, "user": str(800000000 + n), "b": n, "now": now})
            loans.append({"id": n, "ext": f"BL{n}", "ref": f"BR{n:07d}", "b": n, "today": today})
            installments.append({"id": n, "loan": n, "due": today + timedelta(days=3)})
        conn.execute(
            text(
                "INSERT INTO borrower (id, external_id, branch_id, full_name, phone_e164, "
                "preferred_language, dob_hash, national_id_last4_hash, created_at) VALUES "
                "(:id, :ext, 1, 'Bench Borrower', :phone, 'en', 'x', 'y', :now)"
            ),
            borrowers,
        )
        conn.execute(
            text(
                "INSERT INTO borrower_channel_identity (id, channel, external_user_id, "
                "borrower_id, verified_at, failed_attempts, created_at) VALUES "
                "(:id, 'telegram', :user, :b, :now, 0, :now)"
            ),
            identities,
        )
        conn.execute(
            text(
                "INSERT INTO loan (id, external_id, account_reference, borrower_id, product, "
                "principal, currency, annual_interest_rate, frequency, disbursed_on, status, "
                "cycle, collection_paused, created_at) VALUES (:id, :ext, :ref, :b, 'bench', "
                "1000, 'KES', 18, 'monthly', :today, 'active', 1, false, CURRENT_TIMESTAMP)"
            ),
            loans,
        )
        conn.execute(
            text(
                "INSERT INTO loan_installment (id, loan_id, seq, due_date, principal_due, "
                "interest_due, fees_due, principal_paid, interest_paid, fees_paid, status) "
                "VALUES (:id, :loan, 1, :due, 1000, 0, 0, 0, 0, 0, 'pending')"
            ),
            installments,
        )
    with Session(engine) as session:
        result = Planner(config).plan(session, datetime.now(UTC), write=True)
        session.commit()
    engine.dispose()
    return result.inserted


class CpuMeter:
    """CPU seconds spent by each part of the delivery set-up between :meth:`start` and
    :meth:`stop`: the workers, their judging processes, PostgreSQL (every server process, so
    its background writers too), Redis and the fake provider. How much of the machine a rate
    needs tells on which machines the delivery target holds."""

    def __init__(self, workers: list[subprocess.Popen[bytes]], fake: subprocess.Popen[bytes]):
        self._worker_pids = [proc.pid for proc in workers]
        self._fake_pid = fake.pid
        self._before: dict[int, tuple[str, float]] = {}
        self._started = 0.0

    def _sample(self) -> dict[int, tuple[str, float]]:
        groups: dict[int, str] = {self._fake_pid: "fake"}
        for pid in self._worker_pids:
            groups[pid] = "workers"
            with _gone_is_fine():
                for child in psutil.Process(pid).children(recursive=True):
                    groups[child.pid] = "judging"
        for proc in psutil.process_iter(["name"]):
            name = proc.info["name"] or ""
            if name in ("postgres", "postmaster"):
                groups[proc.pid] = "PostgreSQL"
            elif name.startswith("redis-server"):
                groups[proc.pid] = "Redis"
        sample = {}
        for pid, group in groups.items():
            with _gone_is_fine():
                times = psutil.Process(pid).cpu_times()
                sample[pid] = (group, times.user + times.system)
        return sample

    def start(self) -> None:
        self._before = self._sample()
        self._started = time.monotonic()

    def stop(self) -> tuple[dict[str, float], float]:
        """Cores used by each part (CPU seconds per second of wall time) and in all, and the
        CPU seconds in all."""
        after = self._sample()
        wall = time.monotonic() - self._started
        used: dict[str, float] = {}
        for pid, (group, seconds) in after.items():
            earlier = self._before.get(pid, (group, 0.0))[1]
            used[group] = used.get(group, 0.0) + seconds - earlier
        cores = {group: round(seconds / wall, 2) for group, seconds in sorted(used.items())}
        cores["all"] = round(sum(used.values()) / wall, 2)
        return cores, sum(used.values())


@contextmanager
def _gone_is_fine() -> Iterator[None]:
    try:
        yield
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes at the default niceness beside the delivery: a host whose
    cores other work also wants (the API, Rasa, another tenant)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def bench_deliver(
    rate: float,
    seconds: float,
    workers: int,
    max_seconds: float,
    storm_at: float | None = None,
    busy: int = 0,
) -> dict[str, Any]:
    """``storm_at``: that many seconds in, the fake answers three requests with 429. ``busy``:
    that many CPU-bound processes run beside the delivery (:func:`busy_processes`)."""
    from notifier.config import CampaignConfig

    count = int(rate * seconds)
    config_data = {
        "version": 1,
        "defaults": {"closed_weekdays": [], "installment_steps": [-3]},
        "channels": {"telegram": {"per_second": rate, "per_chat_per_second": 1}},
        "delivery": {"lease_seconds": 30},
    }
    tmp = Path(tempfile.mkdtemp(prefix="kopa-bench-"))
    config_path = tmp / "campaigns.yml"
    config_path.write_text(yaml.safe_dump(config_data))
    config = CampaignConfig.model_validate(config_data)
    port = _free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "kopa.cli", "fake", "telegram", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_provider_priority,
    )
    fake_url = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(100):
            try:
                httpx.put(f"{fake_url}/_fake/rate_limit", json={"per_second": rate}, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with fresh_postgres() as url:
            planned = _campaign_rows(url, count, config)
            from api.core.db import build_engine

            engine = build_engine(url)
            # Workers are long-running: a campaign comes due while they poll. It is held back
            # until every worker is up, so that one worker's start-up (imports, connections,
            # under a full CPU) is not counted as delivery time.
            with engine.begin() as conn:
                conn.execute(text("UPDATE outbox_message SET send_at = send_at + interval '1 day'"))
            env = {
                **os.environ,
                "KOPA_ENV": "test",
                "KOPA_DATABASE_URL": url,
                "KOPA_TELEGRAM__TOKEN": TOKEN,
                "KOPA_TELEGRAM__API_BASE_URL": f"{fake_url}/bot",
                "KOPA_WHATSAPP__ENABLED": "false",
                "KOPA_REDIS_URL": REDIS,
                "KOPA_NOTIFY_CAMPAIGNS": str(config_path),
                "KOPA_NOTIFY_PLAN_EVERY_SECONDS": "0",
                "KOPA_NOTIFY_POLL_SECONDS": "0.1",
                "KOPA_NOTIFY_REDIS_PREFIX": f"kopa-bench:{uuid.uuid4().hex}",
            }
            logs = [(tmp / f"worker-{n}.log").open("w") for n in range(workers)]
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "kopa.cli", "notify", "worker", "--worker-id", f"b{n}"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=logs[n],
                )
                for n in range(workers)
            ]
            _wait_for_workers(engine, procs)
            with busy_processes(busy):
                meter = CpuMeter(procs, fake)
                meter.start()
                with engine.begin() as conn:
                    conn.execute(
                        text("UPDATE outbox_message SET send_at = send_at - interval '1 day'")
                    )
                started = time.monotonic()
                deadline = started + max_seconds
                while time.monotonic() < deadline:
                    if storm_at is not None and time.monotonic() - started >= storm_at:
                        storm = {"kind": "rate_limit", "times": 3, "retry_after": 1}
                        httpx.post(f"{fake_url}/_fake/faults", json=storm, timeout=5)
                        storm_at = None
                    left = _count(
                        engine,
                        "SELECT count(*) FROM outbox_message WHERE status IN "
                        "('pending', 'retry', 'claimed', 'ready', 'sending')",
                    )
                    if left == 0:
                        break
                    time.sleep(0.5)
                cores, cpu_seconds = meter.stop()
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT status, count(*) FROM outbox_message GROUP BY status")
                ).all()
                statuses = {str(status): int(count) for status, count in rows}
            engine.dispose()
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            totals: dict[str, int] = {}
            for proc in procs:
                out, _ = proc.communicate(timeout=20)
                # Each worker prints its totals as one JSON line when it stops.
                for name, value in json.loads(out.decode().strip().splitlines()[-1]).items():
                    if isinstance(value, int):
                        totals[name] = totals.get(name, 0) + value
        log = httpx.get(f"{fake_url}/_fake/sent", params={"method": "sendMessage"}, timeout=60)
        entries = log.json()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=10)
    errors = [
        line.strip()
        for n in range(workers)
        for line in (tmp / f"worker-{n}.log").read_text().splitlines()
        if " ERROR " in line or "Traceback" in line
    ]
    for line in errors[:5]:
        console.print(f"[red]worker error:[/red] {line}")
    ok = sorted(float(e["at"]) for e in entries if e["outcome"] == "ok")
    refused_at = sorted(
        float(e["at"]) for e in entries if e["outcome"] in ("rate_limited", "rate_limit")
    )
    chats = {str(e["payload"]["chat_id"]) for e in entries if e["outcome"] == "ok"}
    # Refused by the fake's own limit (injected 429s are counted apart).
    refused = sum(1 for e in entries if e["outcome"] == "rate_limited")
    injected = sum(1 for e in entries if e["outcome"] == "rate_limit")
    span = (ok[-1] - ok[0]) if len(ok) > 1 else float("nan")
    # Steady state: leave out the first and last second (start-up and the tail of the queue).
    steady = [t for t in ok if ok[0] + 1.0 <= t <= ok[-1] - 1.0]
    steady_rate = len(steady) / (steady[-1] - steady[0]) if len(steady) > 1 else float("nan")
    best, start = 0, 0
    for end, at in enumerate(ok):
        while at - ok[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return {
        "rate_limit": rate,
        "workers": workers,
        "busy": busy,
        "planned": planned,
        "delivered": len(ok),
        "duplicates": len(ok) - len(chats),
        "refused_429": refused,
        "injected_429": injected,
        "seconds": round(span, 2),
        "throughput": round(len(ok) / span, 1) if span == span else None,
        "fraction": round(len(ok) / span / rate, 3) if span == span else None,
        "steady_fraction": round(steady_rate / rate, 3) if steady_rate == steady_rate else None,
        "max_in_any_second": best,
        # Cores busy while the campaign was being delivered, per part of the set-up.
        "cpu_cores": cores,
        "cpu_ms_per_message": round(cpu_seconds * 1000 / len(ok), 2) if ok else None,
        # Sends and refusals per second from the first send, for the chart.
        "per_second": _per_second(ok, ok[0] if ok else 0.0),
        "refused_per_second": _per_second(refused_at, ok[0] if ok else 0.0),
        "statuses": statuses,
        "worker_totals": totals,
        "worker_errors": errors,
    }


def _count(engine: Any, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _wait_for_workers(engine: Any, procs: list[subprocess.Popen[bytes]]) -> None:
    """Until each worker process has connected (it warms up its pool before its first poll)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a notify worker exited at start-up")
        connected = _count(
            engine,
            "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'kopa-notify %'",
        )
        if connected >= len(procs):
            return
        time.sleep(0.1)
    raise RuntimeError("the notify workers did not connect within 120 s")


def _per_second(stamps: list[float], start: float) -> list[int]:
    counts: list[int] = []
    for at in stamps:
        second = max(0, int(at - start))
        counts.extend([0] * (second + 1 - len(counts)))
        counts[second] += 1
    return counts


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


# -- 3. claim latency ------------------------------------------------------------------------
def bench_claim(backlog: int, runnable: int, rounds: int) -> dict[str, Any]:
    from api.core.db import build_engine
    from bench.notify.backlog import claim_plans, load_backlog, plan_problems
    from notifier.outbox import claim

    with fresh_postgres() as url:
        now = datetime.now(UTC)
        started = time.perf_counter()
        load_backlog(url, backlog, runnable, now)
        load_seconds = time.perf_counter() - started
        engine = build_engine(url)
        factory = sessionmaker(bind=engine)
        latencies = []
        for n in range(rounds):
            with factory() as session, session.begin():
                t0 = time.perf_counter()
                ids = claim(
                    session, now=datetime.now(UTC), worker_id=f"c{n}", limit=100, lease_seconds=30
                )
                session.flush()
            latencies.append((time.perf_counter() - t0) * 1000)
            assert len(ids) == 100
        plans = claim_plans(engine)
        engine.dispose()
    latencies.sort()
    problems = plan_problems(plans["custom"])
    if plans["generic_plans"]:
        problems += [f"generic plan: {p}" for p in plan_problems(plans["generic"])]
    return {
        "backlog": backlog,
        "runnable": runnable,
        "load_seconds": round(load_seconds, 1),
        "rounds": rounds,
        "batch": 100,
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 2),
        "uses_partial_index": not problems,
        "plan_problems": problems,
    }


CLAIM_P95_MS = 50.0  # matrix row L-4


def claim_misses(claim: dict[str, Any]) -> list[str]:
    """How the claim misses matrix row L-4 (partial index, no seq scan, p95 < 50 ms)."""
    misses = list(claim["plan_problems"])
    if claim["p95_ms"] >= CLAIM_P95_MS:
        misses.append(f"claim p95 {claim['p95_ms']} ms >= {CLAIM_P95_MS} ms")
    return misses


# -- report ----------------------------------------------------------------------------------
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


CPU_PARTS = ("workers", "judging", "PostgreSQL", "fake", "Redis")


def _beside(run: dict[str, Any]) -> str:
    return f" beside {run['busy']} busy" if run.get("busy") else ""


def _cores(cores: dict[str, float]) -> str:
    return ", ".join(f"{part} {cores.get(part, 0.0)}" for part in CPU_PARTS) + f"; {cores['all']}"


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
    console.print(table)
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
