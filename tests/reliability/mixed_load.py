"""Helpers of L-3 (``test_gateway_with_campaign.py``): a campaign that the test turns on and off
under the running gateway rig, and the inbound bursts whose reply times it compares.

The campaign is L-1's: four ``kopa notify worker`` processes on a PostgreSQL database of their
own (so that they never touch the rig's rows) on the same server, sharing a Redis limiter at the
production Telegram limits (25/s, 1/s per chat), sending to a fake Bot API that runs in a
process of its own, as the real provider is not in the test's process. It is planned once, held
back (``send_at`` a day ahead), and let out a slice at a time: :meth:`Campaign.release` makes
every held row due now, :meth:`Campaign.withhold` puts the rows no worker has claimed yet back.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage, OutboxStatus
from bot.fakes.telegram import text_update
from bot.fakes.whatsapp import sign, text_payload
from notifier.config import CampaignConfig
from notifier.planner import Planner
from tests.bot.conftest import TG_SECRET, WA_APP_SECRET
from tests.notifier import notify_factory as f
from tests.notifier.worker_processes import noon_zone, start_workers, stop_workers

ROOT = Path(__file__).resolve().parents[2]
HELD = timedelta(days=1)
IN_FLIGHT = (OutboxStatus.claimed, OutboxStatus.ready, OutboxStatus.sending)


def p95(values: Sequence[float]) -> float:
    """The 95th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def most_in_any_second(stamps: Sequence[float]) -> int:
    stamps = sorted(stamps)
    best, first = 0, 0
    for last, at in enumerate(stamps):
        while at - stamps[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


@contextmanager
def fake_bot_api_process(log: Path) -> Iterator[str]:
    """The fake Bot API under uvicorn in a process of its own; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "uvicorn", "bot.fakes.telegram:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/_fake/sent", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the fake Bot API did not start; see {log}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Campaign:
    """L-1's campaign, held back until released (see the module's docstring)."""

    url: str
    fake_url: str
    config_path: Path
    engine: Engine = field(init=False)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = build_engine(self.url)

    def plan(self, borrowers: int, extra_loans: int) -> int:
        """``borrowers`` borrowers of a branch where it is about midday, each with an
        installment due in three days, the first ``extra_loans`` with two more loans (three
        reminders to one chat); planned now, then held back. Returns the rows planned."""
        with Session(self.engine) as session:
            br = f.branch(session, country="ZZ", timezone=noon_zone())
            today = datetime.now(UTC).astimezone(ZoneInfo(br.timezone)).date()
            for n in range(borrowers):
                person = f.borrower(session, br)
                for _ in range(3 if n < extra_loans else 1):
                    f.loan(session, person, first_due=today + timedelta(days=3))
            session.commit()
            cfg = CampaignConfig.model_validate(yaml.safe_load(self.config_path.read_text()))
            inserted = Planner(cfg).plan(session, datetime.now(UTC), write=True).inserted
            session.execute(update(OutboxMessage).values(send_at=datetime.now(UTC) + HELD))
            session.commit()
        return inserted

    def start(self, redis_url: str) -> None:
        self.workers = start_workers(self.url, self.fake_url, self.config_path, redis_url, count=4)

    def release(self) -> None:
        """Every held row is due now."""
        with self.engine.begin() as conn:
            conn.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.pending,
                    OutboxMessage.send_at > func.now(),
                )
                .values(send_at=func.now())
            )

    def withhold(self) -> None:
        """Hold back the rows no worker has claimed yet; wait for the claimed ones to end."""
        with self.engine.begin() as conn:
            conn.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.retry]))
                .values(send_at=func.now() + HELD)
            )
        deadline = time.monotonic() + 30
        while self.count(*IN_FLIGHT):
            assert time.monotonic() < deadline, "the campaign's claimed rows never ended"
            time.sleep(0.05)

    def count(self, *states: OutboxStatus) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status.in_(states))
                )
                or 0
            )

    def requests(self) -> list[dict[str, Any]]:
        """Every sendMessage the fake provider received, in arrival order."""
        response = httpx.get(
            f"{self.fake_url}/_fake/sent", params={"method": "sendMessage"}, timeout=10
        )
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries

    def rows(self) -> list[OutboxMessage]:
        with Session(self.engine) as session:
            rows = list(session.scalars(select(OutboxMessage)))
            session.expunge_all()
        return rows

    def ledger(self) -> list[ContactEvent]:
        with Session(self.engine) as session:
            events = list(session.scalars(select(ContactEvent)))
            session.expunge_all()
        return events

    def stop(self) -> None:
        stop_workers(self.workers)
        self.engine.dispose()


@dataclass
class Burst:
    """One round of inbound chats: each chat's messages posted back to back, to the two gateway
    processes in turn; ``keys`` are their inbox keys."""

    started: float
    keys: list[str]


def post_burst(
    gateways: Sequence[str],
    tg_chats: Sequence[int],
    wa_chats: Sequence[str],
    messages: int,
    tag: str,
) -> Burst:
    """Post ``messages`` texts from each chat, back to back, to ``gateways`` (URLs) in turn."""
    keys: list[str] = []

    def telegram(chat: int) -> None:
        for n in range(messages):
            update_id = chat * 10 + n
            keys.append(f"tg:{update_id}")
            update = {"update_id": update_id, **text_update(chat, f"hello {tag} {n}")}
            response = httpx.post(
                f"{gateways[n % len(gateways)]}/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
                timeout=10,
            )
            assert response.status_code == 200

    def whatsapp(wa_id: str) -> None:
        for n in range(messages):
            message_id = f"wamid.{tag}-{wa_id}-{n}"
            keys.append(f"wa:{message_id}")
            payload = text_payload(wa_id, f"hello {tag} {n}", message_id=message_id)
            raw = json.dumps(payload).encode()
            response = httpx.post(
                f"{gateways[n % len(gateways)]}/whatsapp/webhook",
                content=raw,
                headers={
                    "X-Hub-Signature-256": sign(raw, WA_APP_SECRET),
                    "Content-Type": "application/json",
                },
                timeout=10,
            )
            assert response.status_code == 200

    started = time.time()
    with ThreadPoolExecutor(max_workers=len(tg_chats) + len(wa_chats)) as pool:
        done = [pool.submit(telegram, c) for c in tg_chats]
        done += [pool.submit(whatsapp, w) for w in wa_chats]
        for future in done:
            future.result()
    return Burst(started, keys)


def reply_seconds(engine: Engine, burst: Burst, timeout: float) -> tuple[list[float], float]:
    """Wait until every message of ``burst`` is answered; return each one's reply time (from
    the gateway storing it to the gateway having sent its replies and marked it done) and the
    time.time() the last was done."""
    query = text(
        "SELECT status, EXTRACT(EPOCH FROM finished_at - received_at) AS seconds,"
        " EXTRACT(EPOCH FROM finished_at) AS done FROM inbox_message WHERE key = ANY(:keys)"
    )
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query, {"keys": burst.keys}).all()
        if len(rows) == len(burst.keys) and all(r.status in ("done", "dead") for r in rows):
            break
        assert time.monotonic() < deadline, "the burst was not answered in time"
        time.sleep(0.1)
    assert {r.status for r in rows} == {"done"}
    return [float(r.seconds) for r in rows], max(float(r.done) for r in rows)
