"""Fixtures of the notifier tests: fake provider servers, real gateways, bound sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from api.core.db import build_engine
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.config import TelegramSettings, WhatsAppSettings
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp

TG_TOKEN = "4242:notifier-test-token"
WA_SECRET = "notifier-wa-app-secret"


@dataclass
class Bound:
    """A test transaction that the deliverer's own sessions join (as savepoints)."""

    session: Session
    factory: Callable[[], Session]


@pytest.fixture
def bound(db_url: str) -> Iterator[Bound]:
    engine = build_engine(db_url)
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    session = factory()
    yield Bound(session=session, factory=factory)
    session.close()
    outer.rollback()
    connection.close()
    engine.dispose()


@pytest.fixture
def fake_tg() -> Iterator[tuple[FakeTelegram, ServerThread]]:
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake_wa() -> Iterator[tuple[FakeWhatsApp, ServerThread]]:
    fake = FakeWhatsApp(app_secret=WA_SECRET)
    with ServerThread(fake.app) as server:
        yield fake, server


def telegram_settings(url: str, read_timeout: float = 1.0) -> TelegramSettings:
    return TelegramSettings(
        token=SecretStr(TG_TOKEN), api_base_url=f"{url}/bot", read_timeout=read_timeout
    )


def whatsapp_settings(url: str) -> WhatsAppSettings:
    return WhatsAppSettings(
        token=SecretStr("wa-token"), app_secret=SecretStr(WA_SECRET), graph_base_url=url
    )


@pytest.fixture
async def telegram(fake_tg: tuple[FakeTelegram, ServerThread]) -> AsyncIterator[TelegramGateway]:
    gateway = TelegramGateway(telegram_settings(fake_tg[1].url))
    await gateway.start(receive=False)
    yield gateway
    await gateway.aclose()


@pytest.fixture
async def whatsapp(fake_wa: tuple[FakeWhatsApp, ServerThread]) -> AsyncIterator[WhatsAppGateway]:
    gateway = WhatsAppGateway(whatsapp_settings(fake_wa[1].url))
    yield gateway
    await gateway.aclose()
