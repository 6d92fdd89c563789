"""An officer's side of a hardship case, through the real loan API, the notifier's delivery
pass, the gateway and python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from api.core.config import get_settings
from api.core.db import build_engine, get_engine, get_sessionmaker
from api.core.deps import get_now, get_session
from api.main import create_app as create_api
from bot.channels.telegram import TelegramGateway
from bot.config import get_bot_settings
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram, callback_update
from bot.fakes.whatsapp import FakeWhatsApp
from i18n import render
from kopa.cli import app as cli
from notifier.delivery import deliver_due
from tests.api.factories import (
    aware,
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
    make_verified_identity,
)
from tests.bot.conftest import Gateway, start_gateway, wait_until

NOW = aware(2026, 12, 1, 7, 0)  # 10:00 in Nairobi: inside every contact window
OFFICER_CHAT = "880001"
BORROWER_USER = "660001"


@pytest.fixture
def api_server(committed_sqlite_url: str) -> Iterator[tuple[str, sessionmaker[Session]]]:
    engine = build_engine(committed_sqlite_url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    app = create_api()

    def session() -> Iterator[Session]:
        with factory() as db:
            yield db

    app.dependency_overrides[get_session] = session
    app.dependency_overrides[get_now] = lambda: NOW
    with ServerThread(app) as server:
        yield server.url, factory
    engine.dispose()


@pytest.fixture
def escalation(
    api_server: tuple[str, sessionmaker[Session]],
    fake_telegram: tuple[FakeTelegram, ServerThread],
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
) -> Iterator[tuple[Gateway, sessionmaker[Session], str]]:
    api_url, factory = api_server
    suffix = str(id(factory))[-5:]
    with factory() as db, db.begin():
        branch = make_branch(db)
        officer = make_officer(db, branch, chat_id=OFFICER_CHAT + suffix, name="Grace Otieno")
        make_officer(db, branch, role="manager", name="Peter Mwangi", chat_id="881" + suffix)
        borrower = make_borrower(db, branch, officer=officer, language="sw")
        make_loan(db, borrower, schedule=[(date(2026, 11, 20), "5000.00", "400.00", "0.00")])
        make_verified_identity(db, borrower, at=NOW, user=BORROWER_USER + suffix)
    server, gateway = start_gateway(fake_telegram, fake_whatsapp, api_url=api_url)
    try:
        yield gateway, factory, suffix
    finally:
        gateway.client.close()
        server.stop()


def open_hardship(api_url: str, user: str) -> dict[str, Any]:
    response = httpx.post(
        f"{api_url}/v1/identities/telegram/{user}/cases",
        json={"kind": "hardship", "category": "illness", "requested_relief": "more_time"},
        headers={"Authorization": "Bearer dev-service-token", "Idempotency-Key": f"hs-{user}"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def run_delivery(gateway: Gateway, factory: sessionmaker[Session]) -> None:
    async def once() -> None:
        sender = TelegramGateway(gateway.settings.telegram)
        await sender.start(receive=False)
        try:
            await deliver_due(session_factory=factory, gateways={"telegram": sender}, now=NOW)
        finally:
            await sender.aclose()

    asyncio.run(once())


def press(gateway: Gateway, chat: str, payload: str) -> None:
    update = callback_update(int(chat), payload, language_code="en")
    asyncio.run(gateway.telegram.deliver(update))


def test_officer_gets_the_alert_acknowledges_and_resolves_and_the_borrower_hears_back(
    escalation: tuple[Gateway, sessionmaker[Session], str],
    api_server: tuple[str, sessionmaker[Session]],
) -> None:
    gateway, factory, suffix = escalation
    officer_chat, borrower_chat = OFFICER_CHAT + suffix, BORROWER_USER + suffix
    case = open_hardship(api_server[0], borrower_chat)
    reference = case["reference"]

    run_delivery(gateway, factory)

    [alert] = gateway.telegram.state.query("sendMessage", officer_chat)
    assert reference in alert["payload"]["text"]
    keyboard = alert["payload"]["reply_markup"]["inline_keyboard"]
    payloads = [row[0]["callback_data"] for row in keyboard]
    assert payloads[:2] == [f"case:ack:{reference}", f"case:called:{reference}"]
    assert f"case:resolve:{reference}:payment_holiday" in payloads
    # Only what an officer needs: no full phone number in the alert.
    assert re.search(r"\d{7,}", alert["payload"]["text"].replace(reference, "")) is None

    press(gateway, officer_chat, f"case:ack:{reference}")
    done = render("officer.done.acknowledged", "en", reference=reference)
    wait_until(lambda: done in gateway.telegram.sent_texts(officer_chat))

    run_delivery(gateway, factory)
    [update] = gateway.telegram.sent_texts(borrower_chat)
    assert update == render(
        "cases.update.acknowledged", "sw", reference=reference, officer_name="Grace Otieno"
    )

    press(gateway, officer_chat, f"case:resolve:{reference}:payment_holiday")
    resolved = render(
        "officer.done.resolved",
        "en",
        reference=reference,
        outcome=render("officer.outcome.payment_holiday", "en"),
    )
    wait_until(lambda: resolved in gateway.telegram.sent_texts(officer_chat))
    # Button presses are officer business: none of them reached the conversation (Rasa).
    assert gateway.conversation.seen == []


def test_a_borrower_pressing_an_officer_button_is_refused(
    escalation: tuple[Gateway, sessionmaker[Session], str],
    api_server: tuple[str, sessionmaker[Session]],
) -> None:
    gateway, _factory, suffix = escalation
    borrower_chat = BORROWER_USER + suffix
    reference = open_hardship(api_server[0], borrower_chat)["reference"]

    press(gateway, borrower_chat, f"case:ack:{reference}")

    refused = render("officer.not_an_officer", "en")
    wait_until(lambda: gateway.telegram.sent_texts(borrower_chat) == [refused])
    cases = httpx.get(
        f"{api_server[0]}/v1/cases",
        params={"status": "open"},
        headers={"Authorization": "Bearer dev-service-token"},
    ).json()
    assert [c["status"] for c in cases if c["reference"] == reference] == ["open"]
    assert gateway.conversation.seen == []


def _kopa_cases(api_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("KOPA_API_URL", api_url)
    monkeypatch.setenv("KOPA_DATABASE_URL", database_url)
    caches = (get_bot_settings, get_settings, get_engine, get_sessionmaker)
    for cached in caches:
        cached.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["cases"], env={"COLUMNS": "200"})
    finally:
        for cached in caches:
            cached.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


def test_kopa_cases_lists_open_cases_by_sla(
    escalation: tuple[Gateway, sessionmaker[Session], str],
    api_server: tuple[str, sessionmaker[Session]],
    committed_sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _gateway, _factory, suffix = escalation
    reference = open_hardship(api_server[0], BORROWER_USER + suffix)["reference"]

    output = _kopa_cases(api_server[0], committed_sqlite_url, monkeypatch)

    assert "Notifier dead letters (0)" in output
    row = next(line for line in output.splitlines() if reference in line)
    assert "hardship" in row
    assert "Grace Otieno" in row
    assert "2026-12-03 07:00 UTC" in row  # 48 h SLA from the case's opening


def test_kopa_cases_still_lists_cases_when_the_notifier_database_cannot_be_read(
    escalation: tuple[Gateway, sessionmaker[Session], str],
    api_server: tuple[str, sessionmaker[Session]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _gateway, _factory, suffix = escalation
    reference = open_hardship(api_server[0], BORROWER_USER + suffix)["reference"]
    unmigrated = f"sqlite:///{tmp_path / 'elsewhere.db'}"

    output = _kopa_cases(api_server[0], unmigrated, monkeypatch)

    assert "dead letters: the database at KOPA_DATABASE_URL could not be read" in output
    assert any(reference in line for line in output.splitlines())
