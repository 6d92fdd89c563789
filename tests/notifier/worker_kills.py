"""Killing a worker at a known moment of a send: a trigger holds the update of one chat's row
into one status on an advisory lock the test holds, so the worker that makes it waits there and
is SIGKILLed there (with its judging process), as a crashed host would die.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from api.core.db import build_engine
from api.outbox.models import OutboxMessage
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from tests.notifier.worker_processes import (
    open_rows,
    outbox_rows,
    plan_campaign,
    start_workers,
    stop_workers,
    wait_until,
    worker_config,
)

# A trigger that makes the update of one chat's row into one status wait for an advisory lock
# the test holds: the worker that makes it is caught at a known moment, to be killed there.
# Every hold is armed before the workers start (a campaign may reach its row at any time).
_HOLD_LOCK = 0x686F6C64  # "hold"; hold n waits on _HOLD_LOCK + n
_HOLD_FUNCTION = """
CREATE OR REPLACE FUNCTION kopa_test_hold() RETURNS trigger AS $$
BEGIN
    IF NEW.recipient = TG_ARGV[0] AND NEW.status = TG_ARGV[1] AND OLD.status <> NEW.status THEN
        PERFORM pg_advisory_xact_lock(TG_ARGV[2]::bigint);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql
"""


@dataclass
class Kill:
    """Where a worker is killed: ``sent`` holds the commit of a send the provider accepted
    (after the call, before the commit); ``sending`` holds the mark that lets a request leave
    (before the call)."""

    chat: str
    moment: str  # "sent" | "sending"
    worker: str = ""  # the worker caught there and killed
    killed_at: float = 0.0  # time.time() of the kill


def _arm(admin: Any, kills: Sequence[Kill]) -> None:
    admin.execute(text(_HOLD_FUNCTION))
    for n, kill in enumerate(kills):
        key = _HOLD_LOCK + n
        admin.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        admin.execute(
            text(
                f"CREATE TRIGGER kopa_test_hold_{n} BEFORE UPDATE ON outbox_message FOR EACH ROW "
                f"EXECUTE FUNCTION kopa_test_hold('{kill.chat}', '{kill.moment}', '{key}')"
            )
        )


def _disarm(admin: Any, n: int) -> None:
    # Unlock first: dropping the trigger waits for the sessions the lock holds up.
    admin.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _HOLD_LOCK + n})
    admin.execute(text(f"DROP TRIGGER IF EXISTS kopa_test_hold_{n} ON outbox_message"))


def _next_held(admin: Any, armed: set[int], timeout: float) -> tuple[int, str]:
    """The first of the ``armed`` holds a worker waits on, and that worker's id (holds are
    reached in whatever order the campaign goes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = admin.execute(
            text(
                "SELECT l.objid, a.application_name FROM pg_locks l"
                " JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'"
                " AND NOT l.granted AND a.datname = current_database()"
            )
        ).all()
        for objid, name in waiting:
            n = int(objid) - (_HOLD_LOCK & 0xFFFFFFFF)
            if n in armed:
                return n, str(name).rsplit(" ", 1)[-1]
        time.sleep(0.02)
    statuses = admin.execute(
        text("SELECT status, count(*) FROM outbox_message GROUP BY status")
    ).all()
    raise AssertionError(f"no worker reached holds {sorted(armed)}: {dict(statuses)}")


def _kill_next(admin: Any, workers: Sequence[subprocess.Popen[bytes]], kills: list[Kill]) -> None:
    """SIGKILL the worker caught at the next hold reached, there; end its database sessions
    (its held transaction rolls back) and let the others go on."""
    armed = {n for n, kill in enumerate(kills) if not kill.worker}
    n, worker = _next_held(admin, armed, 240)  # three workers starting on a busy machine
    kill = kills[n]
    try:
        kill.worker = worker
        proc = workers[int(kill.worker.removeprefix("w"))]
        # The whole worker dies at once, as with its host: its judging process too (left
        # alone it would notice within 0.5 s, and meanwhile try its commit again).
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        for child in children:
            os.kill(int(child), signal.SIGKILL)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
        kill.killed_at = time.time()
        # A killed client does not end a session waiting on a lock: end its sessions (the
        # worker's and its judging process's) as a crashed host's would end.
        admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name IN (:a, :b)"
            ),
            {"a": f"kopa-notify {kill.worker}", "b": f"kopa-notify-judging {kill.worker}"},
        )
    finally:
        _disarm(admin, n)


@dataclass
class KilledRun:
    rows: dict[str, OutboxMessage]  # by recipient
    requests: Counter[str]  # accepted sendMessage requests per recipient
    arrivals: dict[str, list[float]]  # when each recipient's accepted requests came


def run_with_kills(
    url: str, redis: str, tmp_path: Path, kills: Sequence[tuple[int, str]], size: int = 30
) -> tuple[KilledRun, list[Kill]]:
    """A campaign of ``size`` messages on three workers; for each (index, moment) of ``kills``
    the worker that reaches ``moment`` for the index-th recipient is killed there, in turn."""
    fake = FakeTelegram()
    config = worker_config(tmp_path, per_second=20)
    with ServerThread(fake.app) as server:
        recipients = plan_campaign(url, config, size=size)
        caught = [Kill(recipients[index], moment) for index, moment in kills]
        engine = build_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as admin:
            _arm(admin, caught)
            workers = start_workers(url, server.url, config, redis)
            try:
                for _ in caught:
                    _kill_next(admin, workers, caught)
                wait_until(lambda: open_rows(url) == 0, 120)
                time.sleep(1.0)  # nothing may arrive late
            finally:
                for n in range(len(caught)):
                    _disarm(admin, n)
                stop_workers(workers)
        engine.dispose()
        accepted = [e for e in fake.state.query("sendMessage", None) if e["outcome"] == "ok"]
    arrivals: dict[str, list[float]] = {}
    for entry in accepted:
        arrivals.setdefault(str(entry["recipient"]), []).append(float(entry["at"]))
    requests = Counter({chat: len(times) for chat, times in arrivals.items()})
    return KilledRun({r.recipient: r for r in outbox_rows(url)}, requests, arrivals), caught
