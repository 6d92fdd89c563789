"""End to end: borrowers on Telegram (English) and WhatsApp (French) through the gateway, real
python-telegram-bot, the real Rasa server, the action server and the loan API; their officer gets
the escalation from the notifier's delivery pass and acknowledges it with the button; the
borrower hears back.

One stack (Rasa loads its model once) serves both journeys. The loan API runs in-process with
its clock at 10:00 in Nairobi today, so the notifier's contact window is open whatever the hour
the suite runs at.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from api.borrowers.models import Channel, Consent
from api.core.db import build_engine
from api.core.deps import get_now, get_session
from api.core.migrate import upgrade
from api.main import create_app as create_api
from bot.app import create_app
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram, callback_update, contact_update, text_update
from bot.fakes.whatsapp import FakeWhatsApp, button_payload, text_payload
from i18n import render
from kopa.stack import running_stack
from notifier.delivery import deliver_due
from tests.api.factories import (
    DEFAULT_DOB,
    DEFAULT_NATIONAL_ID_LAST4,
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
)
from tests.bot.conftest import TG_SECRET, TG_TOKEN, WA_APP_SECRET, gateway_settings

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

TODAY = datetime.now(UTC).date()
NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 7, 0, tzinfo=UTC)
TG_BORROWER = 7_100_001
TG_OFFICER = "7100900"
WA_BORROWER = "254712000222"
WA_OFFICER = "254799000111"
CASE_REF = re.compile(r"\b[A-Z]{2}-[A-Z0-9]{5}\b")


@dataclass
class World:
    telegram: FakeTelegram
    whatsapp: FakeWhatsApp
    factory: sessionmaker[Session]
    tg_settings: Any
    wa_settings: Any
    account_reference: dict[str, str]


def _schedule() -> list[tuple[Any, str, str, str]]:
    return [
        (TODAY - timedelta(days=11), "5000.00", "400.00", "0.00"),
        (TODAY + timedelta(days=19), "5000.00", "400.00", "0.00"),
    ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("journeys")
    url = f"sqlite:///{tmp / 'kopa.db'}"
    upgrade(url)
    engine = build_engine(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    refs: dict[str, str] = {}
    with factory() as db, db.begin():
        branch = make_branch(db)
        grace = make_officer(db, branch, name="Grace Otieno", chat_id=TG_OFFICER)
        amani = make_officer(
            db, branch, name="Amani Juma", channel="whatsapp", chat_id=WA_OFFICER, locale="sw"
        )
        make_officer(db, branch, role="manager", name="Peter Mwangi", chat_id="7100999")
        amina = make_borrower(db, branch, officer=grace, phone="+254712000111", language="en")
        awa = make_borrower(
            db, branch, officer=amani, full_name="Awa Diop", phone=f"+{WA_BORROWER}", language="fr"
        )
        # WhatsApp messages the business starts (case updates) need the borrower's opt-in.
        db.add(
            Consent(
                borrower_id=awa.id,
                channel=Channel.whatsapp,
                opted_in=True,
                opted_in_at=NOW,
                source="branch_form",
            )
        )
        refs["telegram"] = make_loan(db, amina, schedule=_schedule()).account_reference
        refs["whatsapp"] = make_loan(db, awa, schedule=_schedule()).account_reference

    api = create_api()

    def session() -> Iterator[Session]:
        with factory() as db:
            yield db

    api.dependency_overrides[get_session] = session
    api.dependency_overrides[get_now] = lambda: NOW
    telegram, whatsapp = FakeTelegram(), FakeWhatsApp(app_secret=WA_APP_SECRET)
    with (
        ServerThread(api) as api_server,
        ServerThread(telegram.app) as tg_server,
        ServerThread(whatsapp.app) as wa_server,
        running_stack(
            api_url=api_server.url, log_dir=Path(tmp / "logs"), rasa_timeout=600
        ) as stack,
    ):
        assert stack.rasa_url is not None
        settings = gateway_settings(
            telegram_url=tg_server.url,
            whatsapp_url=wa_server.url,
            rasa_url=stack.rasa_url,
            api_url=api_server.url,
        )
        settings.reply_deadline_seconds = 20.0
        with ServerThread(create_app(settings)) as gateway:
            httpx.post(
                f"{tg_server.url}/bot{TG_TOKEN}/setWebhook",
                data={"url": f"{gateway.url}/telegram/webhook", "secret_token": TG_SECRET},
            ).raise_for_status()
            whatsapp.webhook_url = f"{gateway.url}/whatsapp/webhook"
            yield World(telegram, whatsapp, factory, settings.telegram, settings.whatsapp, refs)
    engine.dispose()


def exchange(
    deliver: Callable[[], Any], sent: Callable[[], list[dict[str, Any]]], quiet: float = 1.5
) -> list[dict[str, Any]]:
    """Deliver one inbound update; return what the bot sent back once it has gone quiet."""
    before = len(sent())
    asyncio.run(deliver())
    deadline = time.monotonic() + 40
    last_change, count = time.monotonic(), before
    while time.monotonic() < deadline:
        now_count = len(sent())
        if now_count != count:
            count, last_change = now_count, time.monotonic()
        if count > before and time.monotonic() - last_change > quiet:
            return sent()[before:]
        time.sleep(0.05)
    raise AssertionError("the bot did not answer")


def deliver_outbox(world: World) -> None:
    async def once() -> None:
        telegram = TelegramGateway(world.tg_settings)
        whatsapp = WhatsAppGateway(world.wa_settings)
        await telegram.start(receive=False)
        try:
            await deliver_due(
                session_factory=world.factory,
                gateways={"telegram": telegram, "whatsapp": whatsapp},
                now=NOW,
            )
        finally:
            await telegram.aclose()
            await whatsapp.aclose()

    asyncio.run(once())


def test_telegram_borrower_verifies_asks_promises_reports_hardship_and_hears_back(
    world: World,
) -> None:
    tg = world.telegram

    def chat(chat_id: int | str) -> Callable[[], list[dict[str, Any]]]:
        return lambda: [
            e for e in tg.state.query("sendMessage", str(chat_id)) if e["outcome"] == "ok"
        ]

    borrower = chat(TG_BORROWER)

    def says(text: str) -> list[dict[str, Any]]:
        update = text_update(TG_BORROWER, text, first_name="Amina", language_code="en")
        return exchange(lambda: tg.deliver(update), borrower)

    def presses(payload: str, chat_id: int = TG_BORROWER) -> list[dict[str, Any]]:
        update = callback_update(chat_id, payload, language_code="en")
        return exchange(lambda: tg.deliver(update), chat(chat_id))

    # Balance before verification: the bot asks for the contact with a share-phone button.
    [ask] = says("what is my balance")
    assert ask["payload"]["text"] == render("conv.verify.share_contact", "en")
    assert ask["payload"]["reply_markup"]["keyboard"][0][0]["request_contact"] is True

    # The own contact proves the phone; the API asks a knowledge factor.
    share = contact_update(TG_BORROWER, "254712000111", contact_user_id=TG_BORROWER)
    [factor] = exchange(lambda: tg.deliver(share), borrower)
    asks_id = factor["payload"]["text"] == render("conv.verify.ask_national_id", "en")
    answer = DEFAULT_NATIONAL_ID_LAST4 if asks_id else DEFAULT_DOB.strftime("%d/%m/%Y")
    verified = [e["payload"]["text"] for e in says(answer)]
    assert verified[0] == render("conv.verify.done", "en")
    assert world.account_reference["telegram"] in verified[1]
    assert "5,400.00" in verified[1]  # the overdue installment

    # A promise to pay, confirmed with the inline button.
    [confirm] = says("I will pay 1000 on friday")
    buttons = [
        row[0]["callback_data"] for row in confirm["payload"]["reply_markup"]["inline_keyboard"]
    ]
    assert "/affirm" in buttons
    [recorded] = presses("/affirm")
    assert "1,000.00" in recorded["payload"]["text"]

    # Hardship: the reason, then the relief chosen with a button; a case opens.
    replies = says("I lost my job and I cannot pay")
    while "inline_keyboard" not in (replies[-1]["payload"].get("reply_markup") or {}):
        replies = says("I lost my job last month")
    relief = next(
        row[0]["callback_data"]
        for row in replies[-1]["payload"]["reply_markup"]["inline_keyboard"]
        if "more_time" in row[0]["callback_data"]
    )
    [opened] = presses(relief)
    match = CASE_REF.search(opened["payload"]["text"])
    assert match is not None and "Grace Otieno" in opened["payload"]["text"]
    reference = match.group(0)

    # The notifier delivers the officer alert; the officer acknowledges with the button.
    deliver_outbox(world)
    [alert] = [e for e in chat(TG_OFFICER)() if reference in e["payload"]["text"]]
    keyboard = [
        row[0]["callback_data"] for row in alert["payload"]["reply_markup"]["inline_keyboard"]
    ]
    assert f"case:ack:{reference}" in keyboard
    [done] = presses(f"case:ack:{reference}", chat_id=int(TG_OFFICER))
    assert done["payload"]["text"] == render("officer.done.acknowledged", "en", reference=reference)

    # The borrower hears back in English.
    deliver_outbox(world)
    assert borrower()[-1]["payload"]["text"] == render(
        "cases.update.acknowledged", "en", reference=reference, officer_name="Grace Otieno"
    )


def test_whatsapp_borrower_journey_in_french(world: World) -> None:
    wa = world.whatsapp

    def to(wa_id: str) -> Callable[[], list[dict[str, Any]]]:
        return lambda: [e for e in wa.state.query("messages", wa_id) if e["outcome"] == "ok"]

    borrower = to(WA_BORROWER)

    def body(entry: dict[str, Any]) -> str:
        payload = entry["payload"]
        if payload["type"] == "interactive":
            return str(payload["interactive"]["body"]["text"])
        return str(payload["text"]["body"])

    def says(text: str) -> list[dict[str, Any]]:
        return exchange(lambda: wa.deliver(text_payload(WA_BORROWER, text)), borrower)

    def presses(wa_id: str, payload: str) -> list[dict[str, Any]]:
        return exchange(lambda: wa.deliver(button_payload(wa_id, payload)), to(wa_id))

    # WhatsApp proves the phone by itself: the bot goes straight to the knowledge factor.
    [factor] = says("quel est mon solde")
    texts = {body(factor)}
    asks_id = texts & {render("conv.verify.ask_national_id", lang) for lang in ("en", "fr")}
    answer = DEFAULT_NATIONAL_ID_LAST4 if asks_id else DEFAULT_DOB.strftime("%d/%m/%Y")
    verified = [body(e) for e in says(answer)]
    assert verified[0] == render("conv.verify.done", "fr")
    assert world.account_reference["whatsapp"] in verified[1]
    assert "5\u202f400,00" in verified[1] or "5 400,00" in verified[1]

    [confirm] = says("je vais payer 1000 vendredi")
    assert confirm["payload"]["type"] == "interactive"
    [recorded] = presses(WA_BORROWER, "/affirm")
    assert body(recorded).startswith("Merci.")

    replies = says("j'ai perdu mon travail, je ne peux pas payer")
    while replies[-1]["payload"]["type"] != "interactive":
        replies = says("j'ai perdu mon travail le mois dernier")
    action = replies[-1]["payload"]["interactive"]["action"]
    options = [b["reply"]["id"] for b in action.get("buttons", [])] + [
        row["id"] for section in action.get("sections", []) for row in section["rows"]
    ]
    [opened] = presses(WA_BORROWER, next(o for o in options if "more_time" in o))
    match = CASE_REF.search(body(opened))
    assert match is not None and "Amani Juma" in body(opened)
    reference = match.group(0)

    # Their officer is on WhatsApp (in Swahili): six actions arrive as a list.
    deliver_outbox(world)
    [alert] = [e for e in to(WA_OFFICER)() if reference in body(e)]
    rows = alert["payload"]["interactive"]["action"]["sections"][0]["rows"]
    assert f"case:ack:{reference}" in [row["id"] for row in rows]
    [done] = presses(WA_OFFICER, f"case:ack:{reference}")
    assert body(done) == render("officer.done.acknowledged", "sw", reference=reference)

    deliver_outbox(world)
    assert body(borrower()[-1]) == render(
        "cases.update.acknowledged", "fr", reference=reference, officer_name="Amani Juma"
    )
