"""Delivering a campaign: ``kopa notify worker`` processes sending to the fake Telegram server.

Throughput is measured at the fake server, which stands for the provider: a fraction of its
limit, with the most it saw in any one second, and the CPU each part of the set-up used.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import text

from bench.notify.campaign import campaign_config, campaign_rows
from bench.notify.cpu import CpuMeter, busy_processes
from bench.notify.host import REDIS, ROOT, fresh_postgres

TOKEN = "4242:bench-token"  # noqa: S105 - the fake server accepts any token
# The fake stands for a remote provider, which counts requests by its own clock as they arrive.
# Sharing the workers' two cores, the fake's clock waited for a core: requests sent evenly were
# stamped in bunches, and it counted up to 1000 in a second of sends paced at 960.
FAKE_NICENESS = -10
console = Console()


@dataclass
class _Observed:
    """What the delivery run saw besides the fake's log."""

    cores: dict[str, float]
    cpu_seconds: float
    statuses: dict[str, int]
    totals: dict[str, int]


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
    from api.core.db import build_engine

    count = int(rate * seconds)
    tmp = Path(tempfile.mkdtemp(prefix="kopa-bench-"))
    config_path, config = campaign_config(rate, tmp)
    with _fake_telegram(rate) as (fake, fake_url):
        with fresh_postgres() as url:
            planned = campaign_rows(url, count, config)
            engine = build_engine(url)
            # Workers are long-running: a campaign comes due while they poll. It is held back
            # until every worker is up, so that one worker's start-up (imports, connections,
            # under a full CPU) is not counted as delivery time.
            with engine.begin() as conn:
                conn.execute(text("UPDATE outbox_message SET send_at = send_at + interval '1 day'"))
            env = _worker_env(url, fake_url, config_path)
            with _notify_workers(env, tmp, workers) as procs:
                observed = _deliver(engine, procs, fake, fake_url, max_seconds, storm_at, busy)
        log = httpx.get(f"{fake_url}/_fake/sent", params={"method": "sendMessage"}, timeout=60)
        entries = log.json()
    errors = [
        line.strip()
        for n in range(workers)
        for line in (tmp / f"worker-{n}.log").read_text().splitlines()
        if " ERROR " in line or "Traceback" in line
    ]
    for line in errors[:5]:
        console.print(f"[red]worker error:[/red] {line}")
    return _figures(entries, rate, workers, busy, planned, observed, errors)


def _provider_priority() -> None:
    try:
        os.nice(FAKE_NICENESS)
    except PermissionError:
        pass  # not root: the fake runs at the workers' priority


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _fake_telegram(rate: float) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``kopa fake telegram`` with its own limit at ``rate`` a second; the process and its URL."""
    port = _free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "kopa.cli", "fake", "telegram", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_provider_priority,
    )
    fake_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.put(f"{fake_url}/_fake/rate_limit", json={"per_second": rate}, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield fake, fake_url
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=10)


def _worker_env(url: str, fake_url: str, config_path: Path) -> dict[str, str]:
    return {
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


@contextmanager
def _notify_workers(
    env: dict[str, str], tmp: Path, workers: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``workers`` worker processes, each logging to ``worker-<n>.log`` in ``tmp``."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
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
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def _deliver(
    engine: Any,
    procs: list[subprocess.Popen[bytes]],
    fake: subprocess.Popen[bytes],
    fake_url: str,
    max_seconds: float,
    storm_at: float | None,
    busy: int,
) -> _Observed:
    """Release the held-back campaign once the workers are up, wait until it is sent, stop them."""
    _wait_for_workers(engine, procs)
    with busy_processes(busy):
        meter = CpuMeter(procs, fake)
        meter.start()
        with engine.begin() as conn:
            conn.execute(text("UPDATE outbox_message SET send_at = send_at - interval '1 day'"))
        _wait_until_sent(engine, fake_url, max_seconds, storm_at)
        cores, cpu_seconds = meter.stop()
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, count(*) FROM outbox_message GROUP BY status")
        ).all()
        statuses = {str(status): int(count) for status, count in rows}
    engine.dispose()
    return _Observed(cores, cpu_seconds, statuses, _stop_workers(procs))


def _wait_until_sent(
    engine: Any, fake_url: str, max_seconds: float, storm_at: float | None
) -> None:
    """Until no outbox row is left to send, or ``max_seconds``; inject the storm on the way."""
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


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    """Stop the workers; answer the totals they report, summed."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    totals: dict[str, int] = {}
    for proc in procs:
        out, _ = proc.communicate(timeout=20)
        # Each worker prints its totals as one JSON line when it stops.
        for name, value in json.loads(out.decode().strip().splitlines()[-1]).items():
            if isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
    return totals


def _figures(
    entries: list[dict[str, Any]],
    rate: float,
    workers: int,
    busy: int,
    planned: int,
    observed: _Observed,
    errors: list[str],
) -> dict[str, Any]:
    """The run's figures from the fake's log of ``sendMessage`` requests."""
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
        "max_in_any_second": _most_in_one_second(ok),
        # Cores busy while the campaign was being delivered, per part of the set-up.
        "cpu_cores": observed.cores,
        "cpu_ms_per_message": round(observed.cpu_seconds * 1000 / len(ok), 2) if ok else None,
        # Sends and refusals per second from the first send, for the chart.
        "per_second": _per_second(ok, ok[0] if ok else 0.0),
        "refused_per_second": _per_second(refused_at, ok[0] if ok else 0.0),
        "statuses": observed.statuses,
        "worker_totals": observed.totals,
        "worker_errors": errors,
    }


def _most_in_one_second(ok: list[float]) -> int:
    best, start = 0, 0
    for end, at in enumerate(ok):
        while at - ok[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


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
