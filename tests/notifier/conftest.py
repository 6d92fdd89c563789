"""Fixtures of the notifier tests: fake provider servers, real gateways, bound sessions, and a
database of its own and the shared Redis for tests whose worker processes commit rows."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

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
from tests.services import scratch_postgres, service_unavailable

TG_TOKEN = "4242:notifier-test-token"
WA_SECRET = "notifier-wa-app-secret"


@dataclass
class Bound:
    """A test transaction that the deliverer's own sessions join (as savepoints)."""

    session: Session
    factory: Callable[[], Session]


class _OneAtATime(Session):
    """A session that holds the test's one connection from its creation to its close.

    The deliverer uses its sessions from two threads (marks, and the other statements), which a
    real pool serves with a connection each; here they share the test transaction's connection,
    which must not run two statements at once.
    """

    lock = threading.RLock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lock.acquire()
        self._holds = True
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._holds:
                self._holds = False
                self.lock.release()


@pytest.fixture
def bound(db_url: str) -> Iterator[Bound]:
    engine = build_engine(db_url)
    connection = engine.connect()
    outer = connection.begin()
    options: dict[str, Any] = {
        "bind": connection,
        "expire_on_commit": False,
        "join_transaction_mode": "create_savepoint",
    }
    session = sessionmaker(**options)()
    factory = sessionmaker(class_=_OneAtATime, **options)
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


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    with scratch_postgres("kopa_notify") as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("KOPA_TEST_REDIS_URL")
    if not url:
        service_unavailable("KOPA_TEST_REDIS_URL is not set: workers cannot share limits")
    assert url is not None
    return url
