"""Real ``kopa notify worker`` processes on a database of their own, against a fake Telegram
server: their campaign config (short leases, no closed days), a campaign planned now, starting
and stopping them, and what they left in the outbox.

Shared by the notifier's worker tests and the reliability matrix (``tests/reliability``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.outbox.models import OutboxMessage, OutboxStatus
from notifier.config import CampaignConfig
from notifier.planner import Planner
from tests.notifier import notify_factory as f
from tests.notifier.conftest import TG_TOKEN

ROOT = Path(__file__).resolve().parents[2]
OPEN = (
    OutboxStatus.pending,
    OutboxStatus.retry,
    OutboxStatus.claimed,
    OutboxStatus.ready,
    OutboxStatus.sending,
)


def noon_zone() -> str:
    """A fixed-offset zone where it is now about midday, so the send window is open."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def worker_config(tmp_path: Path, per_second: float, lease_seconds: float = 3) -> Path:
    data = {
        "version": 99,
        # No closed days: the test must not depend on the weekday or a holiday.
        "defaults": {"closed_weekdays": [], "installment_steps": [-3]},
        "channels": {
            "telegram": {"per_second": per_second, "per_chat_per_second": 1},
            "whatsapp": {"per_second": per_second, "per_chat_per_second": 1},
        },
        "delivery": {
            "lease_seconds": lease_seconds,
            "backoff_base_seconds": 0.2,
            "max_attempts": 5,
        },
    }
    path = tmp_path / "campaigns.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def plan_campaign(url: str, config: Path, size: int) -> list[str]:
    """``size`` borrowers whose installment is due in three days, planned now."""
    engine = build_engine(url)
    with Session(engine) as session:
        br = f.branch(session, country="ZZ", timezone=noon_zone())
        today = datetime.now(UTC).astimezone(ZoneInfo(br.timezone)).date()
        for _ in range(size):
            f.loan(session, f.borrower(session, br), first_due=today + timedelta(days=3))
        session.commit()
        cfg = CampaignConfig.model_validate(yaml.safe_load(config.read_text()))
        result = Planner(cfg).plan(session, datetime.now(UTC), write=True)
        session.commit()
    engine.dispose()
    assert result.inserted == size
    return sorted(c.recipient for c in result.candidates)


def start_workers(
    url: str, fake_url: str, config: Path, redis: str | None, count: int = 3
) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "KOPA_ENV": "test",
        "KOPA_DATABASE_URL": url,
        "KOPA_TELEGRAM__TOKEN": TG_TOKEN,
        "KOPA_TELEGRAM__API_BASE_URL": f"{fake_url}/bot",
        "KOPA_TELEGRAM__READ_TIMEOUT": "1.0",
        "KOPA_WHATSAPP__ENABLED": "false",
        "KOPA_NOTIFY_CAMPAIGNS": str(config),
        "KOPA_NOTIFY_PLAN_EVERY_SECONDS": "0",
        "KOPA_NOTIFY_POLL_SECONDS": "0.2",
        "KOPA_NOTIFY_BATCH_SIZE": "6",
        "KOPA_NOTIFY_CONCURRENCY": "2",
        "KOPA_NOTIFY_REDIS_PREFIX": f"kopa-test:{uuid.uuid4().hex}",
    }
    env.pop("KOPA_REDIS_URL", None)
    if redis:
        env["KOPA_REDIS_URL"] = redis
    return [
        subprocess.Popen(
            [sys.executable, "-m", "kopa.cli", "notify", "worker", "--worker-id", f"w{n}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_rows(url: str) -> int:
    engine = build_engine(url)
    with Session(engine) as session:
        count = session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status.in_(OPEN))
        )
    engine.dispose()
    return int(count or 0)


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def outbox_rows(url: str) -> list[OutboxMessage]:
    engine = build_engine(url)
    with Session(engine) as session:
        rows = list(session.scalars(select(OutboxMessage)))
        session.expunge_all()
    engine.dispose()
    return rows


def connections_by_worker(url: str, kind: str = "kopa-notify") -> Counter[str]:
    """Open connections per application name: ``kopa-notify <id>`` (workers) or
    ``kopa-notify-judging <id>`` (their judging processes)."""
    engine = build_engine(url)
    with engine.connect() as conn:
        names = conn.scalars(
            text(
                "SELECT application_name FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE :kind"
            ),
            {"kind": f"{kind} %"},
        ).all()
    engine.dispose()
    return Counter(names)
