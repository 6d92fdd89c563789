"""The demo portfolio: the documented borrowers verify and see what the demo promises."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from api.core.config import get_settings
from api.core.db import build_engine
from api.core.deps import get_session
from api.main import create_app
from kopa.commands.demo import try_it_lines
from portfolio.demo import DEMO_BORROWERS, DEMO_BRANCHES, demo_table
from portfolio.seeding import seed_demo
from tests.data.helpers_data import dump

IN_ARREARS = {"+254700000002", "+525500000001"}


@contextmanager
def _client(url: str) -> Iterator[TestClient]:
    engine = build_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    app = create_app()

    def session() -> Iterator[Session]:
        with factory() as s:
            yield s

    app.dependency_overrides[get_session] = session
    with TestClient(app) as client:
        yield client
    engine.dispose()


def test_demo_borrowers_verify_with_their_documented_factors(
    new_database: Callable[[str], str],
) -> None:
    url = new_database("sqlite")
    settings = get_settings()
    today = datetime.now(UTC).date()
    views = seed_demo(url, today=today, pepper=settings.hash_pepper.get_secret_value())
    before = dump(url)
    # Seeding again (running `make demo` twice) changes nothing.
    assert seed_demo(url, today=today, pepper=settings.hash_pepper.get_secret_value()) == views
    assert dump(url) == before
    assert {v.borrower.phone for v in views} == {
        "+254700000001",
        "+254700000002",
        "+221770000001",
        "+525500000001",
    }

    auth = {"Authorization": f"Bearer {settings.service_token.get_secret_value()}"}
    with _client(url) as client:
        _verify_all_and_read(client, auth, today)


def _verify_all_and_read(client: TestClient, auth: dict[str, str], today: date) -> None:
    for spec in DEMO_BORROWERS:
        identity = f"/v1/identities/terminal/{spec.phone.lstrip('+')}"
        start = client.post(
            f"{identity}/verification/start", json={"phone": spec.phone}, headers=auth
        )
        assert start.status_code == 200, start.text
        factor = start.json()["factor"]
        value = spec.dob.isoformat() if factor == "dob" else spec.national_id_last4
        done = client.post(
            f"{identity}/verification/complete",
            json={"factor": factor, "value": value},
            headers=auth,
        )
        zone = next(b.timezone for b in DEMO_BRANCHES if b.code == spec.branch)
        assert done.json() == {"status": "verified", "locale": spec.language, "timezone": zone}

        loans = client.get(f"{identity}/loans", headers=auth).json()
        assert len(loans) == 1
        upcoming = loans[0]["next_installment"]
        days_ahead = (date.fromisoformat(upcoming["due_date"]) - today).days
        assert 0 < days_ahead <= 7, (spec.phone, upcoming)
        arrears = Decimal(loans[0]["arrears"])
        assert (arrears > 0) == (spec.phone in IN_ARREARS), (spec.phone, arrears)

    officer = client.get("/v1/officers/by-chat/telegram/100000001", headers=auth)
    assert officer.status_code == 200, officer.text


def test_demo_output_lists_borrowers_and_working_commands(
    new_database: Callable[[str], str],
) -> None:
    url = new_database("sqlite")
    pepper = get_settings().hash_pepper.get_secret_value()
    views = seed_demo(url, today=datetime.now(UTC).date(), pepper=pepper)
    console = Console(width=200, record=True)
    console.print(demo_table(views))
    shown = console.export_text()
    for spec in DEMO_BORROWERS:
        assert spec.phone in shown and spec.dob.isoformat() in shown
        assert spec.national_id_last4 in shown
    lines = try_it_lines(views, "http://127.0.0.1:8000")
    assert lines[0] == "curl -s http://127.0.0.1:8000/health"
    assert any("verification/complete" in line for line in lines)
