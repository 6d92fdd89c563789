"""The running API survives PostgreSQL dropping its connections and 5 s of lock latency (defect 12).

The loan API runs as in production (uvicorn in a subprocess) on a scratch database of the local
PostgreSQL server. A restart is what the API sees when the server terminates its backends
(``pg_terminate_backend``): the test does that between requests and in the middle of one. Other
sessions share that server, so it is never really restarted here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from api.core.db import build_engine
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage
from api.promises.models import PromiseToPay
from kopa import stack as kopa_stack
from tests.api.factories import make_borrower, make_branch, make_loan, make_verified_identity, today
from tests.services import scratch_postgres

pytestmark = pytest.mark.postgres
TOKEN = "db-faults-token"


@dataclass
class Running:
    url: str
    engine: Engine
    database: str
    base: str  # the verified chat's identity path

    def post_promise(
        self, key: str, amount: str = "100.00", timeout: float = 20.0
    ) -> httpx.Response:
        return httpx.post(
            f"{self.url}{self.base}/promises",
            json={"amount": amount, "promised_date": today().isoformat()},
            headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key},
            timeout=timeout,
        )

    def api_backends(self, connection: Connection) -> list[int]:
        return list(
            connection.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = :db "
                    "AND pid <> pg_backend_pid()"
                ),
                {"db": self.database},
            )
        )

    def terminate_api_connections(self) -> int:
        with self.engine.connect() as connection:
            pids = self.api_backends(connection)
            for pid in pids:
                connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            connection.commit()
        return len(pids)

    def counts(self) -> tuple[int, int]:
        """Promises, and every other row a request could leave half-written."""
        with Session(self.engine) as session:
            promises = session.scalar(select(func.count()).select_from(PromiseToPay))
            others = sum(
                int(session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (ContactEvent, OutboxMessage)
            )
        return int(promises or 0), others


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with scratch_postgres("kopa_faults") as url:
        engine = build_engine(url)
        with Session(engine) as session:
            branch = make_branch(session)
            borrower = make_borrower(session, branch)
            due = today() + timedelta(days=20)
            make_loan(session, borrower, schedule=[(due, "900.00", "90", "10")])
            identity = make_verified_identity(
                session, borrower, at=datetime.now(UTC) + timedelta(hours=2)
            )
            base_path = f"/v1/identities/telegram/{identity.external_user_id}"
            session.commit()
        service = kopa_stack.start_api(url, TOKEN, tmp_path_factory.mktemp("api"), {})
        try:
            kopa_stack.wait_healthy(service, 60.0)
            yield Running(service.url, engine, make_url(url).database or "", base_path)
        finally:
            service.stop()
            engine.dispose()


def test_connections_terminated_between_requests_are_replaced(running: Running) -> None:
    assert running.post_promise(f"k-{uuid.uuid4().hex}").status_code == 201
    assert running.terminate_api_connections() >= 1
    # Every pooled connection is dead now: the next requests must not see it.
    for _ in range(3):
        response = running.post_promise(f"k-{uuid.uuid4().hex}")
        assert response.status_code == 201, response.text


def test_a_connection_terminated_during_a_request_writes_nothing_and_a_retry_writes_once(
    running: Running,
) -> None:
    before = running.counts()
    key = f"mid-{uuid.uuid4().hex}"
    answers: list[httpx.Response] = []
    with running.engine.connect() as blocker:
        # The API's insert waits on this lock: the request is in the middle of its transaction.
        blocker.execute(text("LOCK TABLE promise_to_pay IN ACCESS EXCLUSIVE MODE"))
        request = threading.Thread(target=lambda: answers.append(running.post_promise(key)))
        request.start()
        deadline = time.monotonic() + 10
        waiting: list[int] = []
        while not waiting and time.monotonic() < deadline:
            waiting = list(
                blocker.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = :db "
                        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    ),
                    {"db": running.database},
                )
            )
            time.sleep(0.05)
        assert waiting, "the API request never reached the database"
        for pid in waiting:
            blocker.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        blocker.rollback()
    request.join(timeout=30)
    [failed] = answers
    # The database went away mid-transaction: "try again", never a half-written promise.
    assert (failed.status_code, failed.json()["code"]) == (503, "database_unavailable")
    assert failed.headers.get("Retry-After") == "1"
    assert running.counts() == before
    retried = running.post_promise(key)
    assert retried.status_code == 201, retried.text
    again = running.post_promise(key)
    assert (again.status_code, again.json()) == (200, retried.json())
    assert running.counts() == (before[0] + 1, before[1])


def test_five_seconds_of_database_latency_delay_the_answer_but_lose_nothing(
    running: Running,
) -> None:
    before = running.counts()
    answers: list[httpx.Response] = []
    with running.engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE promise_to_pay IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        request = threading.Thread(
            target=lambda: answers.append(running.post_promise(f"slow-{uuid.uuid4().hex}"))
        )
        request.start()
        time.sleep(5.0)
        blocker.rollback()
    request.join(timeout=30)
    elapsed = time.monotonic() - started
    [answer] = answers
    assert answer.status_code == 201, answer.text
    assert 5.0 <= elapsed < 10.0
    assert running.counts() == (before[0] + 1, before[1])
