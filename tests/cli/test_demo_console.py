"""`make demo` shows the officers' side too: demo staff sign in to the console of the demo
database and see the case a borrower's hardship message opens."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.branches.models import Branch, Officer
from api.branches.service import branch_scope
from api.cases import service as case_service
from api.cases.models import Case, CaseKind
from api.core import db
from api.core.config import get_settings
from api.loans.models import Loan
from api.main import create_app
from api.models import Borrower
from kopa.cli import app
from kopa.commands.demo import STAFF_PASSWORD_ENV, DemoSetup, console_lines, prepare_demo
from kopa.paths import RASA_BIN, ROOT
from portfolio.demo_staff import DEMO_STAFF
from tests.api.console_pages import cheap_hashing, csrf_token, sign_in
from tests.cli.app_caches import clear_app_caches
from tests.cli.test_stack_up import _wait_for_line

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__)
CHOSEN = "chosen demo password"
OFFICER_NBO = "officer.nbo@kopa-demo.example"
MANAGER = "manager@kopa-demo.example"


@pytest.fixture
def demo_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A demo database path, which the loan API of ``console`` serves."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("KOPA_DATABASE_URL", url)
    monkeypatch.delenv(STAFF_PASSWORD_ENV, raising=False)
    clear_app_caches()
    yield url
    clear_app_caches()


@pytest.fixture
def console(demo_url: str) -> Iterator[TestClient]:
    # HTTPS: the console's cookies are Secure, as a browser keeps them.
    with TestClient(create_app(), base_url="https://testserver") as client:
        yield client


def _demo_staff(url: str) -> dict[str, tuple[Officer, frozenset[str]]]:
    """The demo accounts by email, with the codes of the branches each sees."""
    engine = db.build_engine(url)
    try:
        with Session(engine) as session:
            found = session.scalars(
                select(Officer).where(Officer.email.like("%@kopa-demo.example"))
            ).all()
            codes = {b.id: b.code for b in session.scalars(select(Branch))}
            return {
                str(o.email): (o, frozenset(codes[i] for i in branch_scope(session, o) or ()))
                for o in found
            }
    finally:
        engine.dispose()


def _hardship_case_of_the_first_demo_borrower(url: str, setup: DemoSetup) -> str:
    """What the chat's 'I lost my job' does through the API: a hardship case; its reference."""
    engine = db.build_engine(url)
    try:
        with Session(engine) as session:
            phone = setup.views[0].borrower.phone
            borrower = session.scalars(select(Borrower).where(Borrower.phone_e164 == phone)).one()
            loan = session.scalars(select(Loan).where(Loan.borrower_id == borrower.id)).first()
            opened = case_service.open_case(
                session=session,
                borrower=borrower,
                kind=CaseKind.hardship,
                now=datetime.now(UTC),
                channel="terminal",
                loan=loan,
            )
            reference = opened.case.reference
            session.commit()
            return reference
    finally:
        engine.dispose()


def test_each_run_keeps_one_account_each_and_sets_the_chosen_password(
    demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STAFF_PASSWORD_ENV, "an earlier demo password")
    prepare_demo(demo_url)
    monkeypatch.setenv(STAFF_PASSWORD_ENV, CHOSEN)

    setup = prepare_demo(demo_url)

    assert setup.staff_password == CHOSEN
    staff = _demo_staff(demo_url)
    assert sorted(staff) == sorted(s.email for s in DEMO_STAFF)
    assert staff[OFFICER_NBO][1] == {"DEMO-NBO"}
    assert staff[MANAGER][1] == {"DEMO-NBO", "DEMO-DKR", "DEMO-MEX"}
    assert all(CHOSEN not in str(officer.password_hash) for officer, _ in staff.values())


def test_the_demo_officer_sees_the_hardship_case_and_the_manager_claims_it(
    demo_url: str, console: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STAFF_PASSWORD_ENV, CHOSEN)
    setup = prepare_demo(demo_url)
    reference = _hardship_case_of_the_first_demo_borrower(demo_url, setup)

    signed = sign_in(console, OFFICER_NBO, CHOSEN)
    queue = console.get("/console/queue")
    sign_in(console, MANAGER, CHOSEN)
    claimed = console.post(
        f"/console/cases/{reference}/claim",
        data={"csrf_token": csrf_token(console.get("/console/queue"))},
    )

    assert (signed.status_code, signed.headers["location"]) == (303, "/console/queue")
    assert queue.status_code == 200 and reference in queue.text
    assert claimed.status_code == 200
    assert f"Case {reference} acknowledged. The borrower has been told." in claimed.text


def test_without_the_variable_every_run_draws_a_new_password_and_signs_out_the_old(
    demo_url: str, console: TestClient
) -> None:
    first = prepare_demo(demo_url).staff_password
    assert sign_in(console, MANAGER, first).status_code == 303

    second = prepare_demo(demo_url).staff_password

    assert second != first and len(second) >= get_settings().console.min_password_length
    assert console.get("/console/queue", follow_redirects=False).status_code == 303  # signed out
    assert sign_in(console, MANAGER, first).status_code == 401
    assert sign_in(console, MANAGER, second).status_code == 303


def test_the_demo_prints_the_console_and_its_accounts(demo_url: str) -> None:
    env = {STAFF_PASSWORD_ENV: CHOSEN}
    runner = CliRunner()

    api_only = runner.invoke(
        app,
        ["demo", "--database-url", demo_url, "--api-only", "--no-serve", "--port", "8123"],
        env=env,
    )
    no_chat = runner.invoke(app, ["demo", "--database-url", demo_url, "--no-serve"], env=env)

    for result in (api_only, no_chat):
        assert result.exit_code == 0, result.output
        assert all(s.email in result.output for s in DEMO_STAFF)
        assert f"password: {CHOSEN}" in result.output
    assert "Officers' web console: http://127.0.0.1:8123/console." in api_only.output
    short = runner.invoke(
        app,
        ["demo", "--database-url", demo_url, "--no-serve"],
        env={STAFF_PASSWORD_ENV: "too short"},
    )
    assert short.exit_code == 2 and "at least 12 characters" in short.output


def test_once_the_stack_is_up_the_chat_names_its_console_and_what_to_try(
    demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(STAFF_PASSWORD_ENV, CHOSEN)
    setup = prepare_demo(demo_url)

    lines = "\n".join(console_lines(setup, "http://127.0.0.1:43210", chat_branch="DEMO-DKR"))

    assert "http://127.0.0.1:43210/console" in lines and f"password: {CHOSEN}" in lines
    assert all(s.email in lines for s in DEMO_STAFF)
    assert "Type 'I lost my job', then 'talk to a person' in the chat" in lines
    assert "queue of officer.dkr@kopa-demo.example and of manager@kopa-demo.example" in lines


def _hardship_references(url: str) -> list[str]:
    engine = db.build_engine(url)
    try:
        with Session(engine) as session:
            found = select(Case.reference).where(Case.kind == CaseKind.hardship)
            return list(session.scalars(found))
    finally:
        engine.dispose()


def _hardship_references_once_opened(url: str, chat: subprocess.Popen[str]) -> list[str]:
    """The hardship cases' references once there is one (the chat answers in its own time)."""
    deadline = time.monotonic() + 120
    while not (found := _hardship_references(url)) and time.monotonic() < deadline:
        assert chat.poll() is None, "the demo ended before a case was opened"
        time.sleep(1)
    return found


def _live_sign_in(client: httpx.Client, console_url: str, email: str, password: str) -> str:
    """Sign in to a running console over plain HTTP and answer the session cookie's value (a
    Secure cookie, which httpx keeps only for HTTPS: sent by hand here, as a browser on
    127.0.0.1 does)."""
    form = client.get(f"{console_url}/login")
    login_cookie = f"__Host-kopa_login_csrf={form.cookies['__Host-kopa_login_csrf']}"
    signed = client.post(
        f"{console_url}/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(form)},
        headers={"Cookie": login_cookie},
    )
    assert signed.status_code == 303, signed.text
    return signed.cookies["__Host-kopa_console"]


@pytest.mark.stack
@pytest.mark.timeout(900)
def test_make_demo_names_the_running_console_where_the_chat_opens_a_case(demo_url: str) -> None:
    if not RASA_BIN.exists():
        pytest.fail("Rasa is not installed: run `make setup`")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPA_")}
    env |= {STAFF_PASSWORD_ENV: CHOSEN, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kopa.cli", "demo", "--database-url", demo_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert process.stdin is not None
    try:
        shown = "".join(_wait_for_line(process, r"^ready: type a message", 600))
        found = re.search(r"Officers' web console: (http://127\.0\.0\.1:\d+/console)\.", shown)
        assert found is not None, shown
        assert all(s.email in shown for s in DEMO_STAFF) and f"password: {CHOSEN}" in shown
        assert "queue of officer.nbo@kopa-demo.example and of manager" in shown

        # What the printed hint says to type: the call asked for makes the hardship a case.
        process.stdin.write("I lost my job\ntalk to a person\n")
        process.stdin.flush()
        references = _hardship_references_once_opened(demo_url, process)
        with httpx.Client(timeout=30) as client:
            cookie = _live_sign_in(client, found.group(1), OFFICER_NBO, CHOSEN)
            queue = client.get(
                f"{found.group(1)}/queue", headers={"Cookie": f"__Host-kopa_console={cookie}"}
            )

        assert len(references) == 1
        assert queue.status_code == 200 and references[0] in queue.text
        process.stdin.write("/quit\n")
        process.stdin.flush()
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.stdin.close()  # the chat waits for a line in a thread Ctrl-C does not end
            process.send_signal(signal.SIGINT)  # the stack stops its services on the way out
            process.wait(timeout=120)
