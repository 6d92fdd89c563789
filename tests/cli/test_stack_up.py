"""``kopa stack up`` runs the production topology natively: 2 Rasa replicas, 2 gateways, the
API's workers, a notifier worker, on PostgreSQL and Redis, with the provider fakes; a borrower's
WhatsApp message gets its answer, and Ctrl-C stops every process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from api.core.db import build_engine
from kopa.paths import RASA_BIN, ROOT
from kopa.stack import rasa_tracker_database_url
from tests.services import scratch_postgres

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(1500)]


def _wait_for_line(process: subprocess.Popen[str], pattern: str, timeout: float) -> list[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise AssertionError("kopa stack up exited:\n" + "".join(lines[-40:]))
            continue
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError("kopa stack up not ready in time:\n" + "".join(lines[-40:]))


def test_stack_up_runs_two_replicas_and_two_gateways_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    if not RASA_BIN.exists():
        pytest.fail("Rasa is not installed: run `make setup`")
    redis = os.environ.get("KOPA_TEST_REDIS_URL")
    if not redis:
        pytest.fail("KOPA_TEST_REDIS_URL is required here")
    with scratch_postgres("kopa_up") as database_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KOPA_")},
            "KOPA_DATABASE_URL": database_url,
            "KOPA_REDIS_URL": redis,
            "COLUMNS": "200",
        }
        command = [
            sys.executable, "-m", "kopa.cli", "stack", "up", "--rasa-replicas", "2",
            "--gateways", "2", "--log-dir", str(tmp_path),
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            lines = _wait_for_line(process, r"^ready$", timeout=1200)
            table = "".join(lines)
            for part in ("api", "actions", "rasa ", "rasa-1", "gateway-0", "gateway-1",
                         "notifier-0", "fake whatsapp"):  # fmt: skip
                assert part in table, table
            whatsapp = re.search(r"fake whatsapp\W+(http://[\d.:]+)", table)
            assert whatsapp is not None, table
            fake = whatsapp.group(1)

            delivered = httpx.post(
                f"{fake}/_fake/deliver", json={"from": "254799000111", "text": "hello"}, timeout=30
            )
            assert delivered.json() == {"delivered": True, "status": 200}
            deadline = time.monotonic() + 120
            sent: list[object] = []
            while not sent and time.monotonic() < deadline:
                sent = httpx.get(f"{fake}/_fake/sent", params={"recipient": "254799000111"}).json()
                time.sleep(0.5)
            assert sent, "the borrower got no answer"
        finally:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=90)
        assert process.returncode == 0
        tracker_db = rasa_tracker_database_url(database_url)
        assert tracker_db is not None
        engine = build_engine(tracker_db)
        try:
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT count(*) FROM events")) > 0
        finally:
            engine.dispose()
        admin = build_engine(os.environ["KOPA_TEST_DATABASE_URL"], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = tracker_db.rsplit("/", 1)[-1]
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
