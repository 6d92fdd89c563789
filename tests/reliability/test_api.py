"""Reliability matrix rows of the loan API, its privacy and its service hardening.

One function per matrix id (``shared/guide/conduct-and-reliability.md`` section 5), each
asserting its row's pass criterion on the real components: the FastAPI app with PostgreSQL and
SQLite, Rasa's own tracker and lock store classes (run from Rasa's virtualenv), Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from api.cases.models import Case, CaseKind, CaseStatus
from api.cases.service import open_case
from api.core.db import build_engine
from kopa.paths import RASA_VENV, ROOT
from tests.api.factories import aware, make_borrower, make_branch, make_officer

RASA_PYTHON = RASA_VENV / "bin" / "python"
RASA_STORES = Path(__file__).with_name("rasa_stores.py")
DAY = 86400.0


def _redis_url() -> str:
    url = os.environ.get("KOPA_TEST_REDIS_URL")
    if not url:
        if os.environ.get("KOPA_REQUIRE_SERVICES") == "1":
            pytest.fail("KOPA_TEST_REDIS_URL is required here")
        pytest.skip("KOPA_TEST_REDIS_URL is not set: Redis tests skipped")
    return url


def _rasa(command: str, args: dict[str, Any]) -> Any:
    done = subprocess.run(
        [str(RASA_PYTHON), str(RASA_STORES), command, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1]) if command == "read" else None


def test_P7_retention_job_deletes_idle_conversations_anonymises_old_events_and_holds_the_lock(
    tmp_path: Path, committed_sqlite_url: str
) -> None:
    """Rasa's Redis and SQL tracker stores, its Redis lock store, and the app database.

    Pass criterion: conversations idle past the policy age are deleted, older events of active
    ones anonymised (the recent ones kept), case free text past its age cleared, and the job
    holds the conversation lock: it changes nothing while Rasa holds it and returns its ticket.
    """
    if not RASA_PYTHON.exists():
        pytest.skip("Rasa's virtualenv is not installed")
    url = make_url(_redis_url())
    prefix = f"p{uuid.uuid4().hex[:10]}"
    redis_spec = {"host": url.host, "port": url.port or 6379, "db": int(url.database or 0)}
    stores = {"redis": {**redis_spec, "prefix": prefix}, "sqlite": str(tmp_path / "rasa.db")}
    now = time.time()
    old, recent = now - 40 * DAY, now - 3600
    _rasa(
        "save",
        {
            "stores": stores,
            "sender": "tg:idle",
            "events": [["user", "+254700111222 idle", old], ["bot", "conv.greet", old + 1]],
        },
    )
    _rasa(
        "save",
        {
            "stores": stores,
            "sender": "tg:active",
            "events": [["user", "+254700333444 old", old], ["user", "hello again", recent]],
        },
    )

    engine = build_engine(committed_sqlite_url)
    with Session(engine) as session:
        branch = make_branch(session)
        borrower = make_borrower(session, branch, officer=make_officer(session, branch))
        case = open_case(
            session=session,
            borrower=borrower,
            kind=CaseKind.complaint,
            now=aware(2026, 6, 1),
            borrower_words="my ID is 12345678",
        ).case
        case.status, case.resolved_at = CaseStatus.resolved, aware(2026, 6, 2)
        case_id = case.id
        session.commit()

    # Rasa holds the active conversation's lock for 3 s while the job starts.
    holder = subprocess.Popen(
        [str(RASA_PYTHON), str(RASA_STORES), "hold",
         json.dumps({"stores": stores, "sender": "tg:active", "seconds": 3})],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"},
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    env = {
        **os.environ,
        "KOPA_DATABASE_URL": committed_sqlite_url,
        "KOPA_RETENTION__DAYS": "90",
        "KOPA_RETENTION__TRACKER_DAYS": "30",
        "KOPA_RETENTION__TRACKER_REDIS_URL": _redis_url(),
        "KOPA_RETENTION__TRACKER_KEY_PREFIX": f"{prefix}:tracker:",
        "KOPA_RETENTION__LOCK_REDIS_URL": _redis_url(),
        "KOPA_RETENTION__LOCK_KEY_PREFIX": f"{prefix}:lock:",
        "KOPA_RETENTION__TRACKER_STORE_URL": f"sqlite:///{stores['sqlite']}",
    }
    job = subprocess.run(
        [sys.executable, "-m", "kopa.cli", "retention", "run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    job_finished = time.time()
    released = json.loads(holder.communicate(timeout=60)[0].strip().splitlines()[-1])
    # While Rasa held the lock the job changed nothing; it went on only after the release.
    assert "+254700333444 old" in released["texts_at_release"]
    assert job_finished > released["released_at"]

    report = json.loads(job.stdout.strip().splitlines()[-1])
    for store in ("redis_tracker_store", "sql_tracker_store"):
        assert report[store]["conversations_deleted"] == 1, report
        assert report[store]["conversations_skipped"] == 0, report
    assert report["app_database"]["case_texts_cleared"] == 1

    assert _rasa("read", {"stores": stores, "sender": "tg:idle"}) == [None, None]
    for events in _rasa("read", {"stores": stores, "sender": "tg:active"}):
        users = [e for e in events if e["event"] == "user"]
        assert [u["text"] for u in users] == [None, "hello again"]
        assert users[0]["metadata"] in ({}, None) and users[1]["metadata"]
        assert "+254700333444" not in json.dumps(events)
    locks = redis.Redis.from_url(_redis_url()).keys(f"{prefix}:lock:*")
    assert locks == []  # the job returned its ticket (and Rasa its own)
    with Session(engine) as session:
        assert session.get_one(Case, case_id).borrower_words is None
    engine.dispose()
    redis.Redis.from_url(_redis_url()).delete(
        *redis.Redis.from_url(_redis_url()).keys(f"{prefix}:*") or ["none"]
    )


_ = (select, timedelta)
