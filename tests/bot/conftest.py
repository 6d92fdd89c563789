"""Gateway fixtures: the fake providers and the gateway app, each a real HTTP server on
127.0.0.1 with a free port, stopped at the end of the test.

Rasa and the loan API are pointed at a port nobody listens on unless a test says otherwise, so
the real ConversationService answers "try again shortly" (what a borrower gets during an outage)
and the tests see exactly what the gateway let through.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from api.core.migrate import upgrade
from bot.app import create_app
from bot.channels.base import InboundMessage, OutboundMessage
from bot.config import BotSettings, TelegramSettings, WhatsAppSettings
from bot.conversation import ChatRegistry, ConversationService
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp
from bot.rasa_client import RasaClient

TG_TOKEN = "4242:test-token-for-the-fake"
TG_SECRET = "tg-secret_0123456789"
WA_APP_SECRET = "wa-app-secret-0123456789"
WA_VERIFY = "wa-verify-token-0123"
WA_TOKEN = "wa-access-token-0123"


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@lru_cache(maxsize=1)
def _migrated_template() -> Path:
    path = Path(tempfile.mkdtemp(prefix="kopa-gateway-")) / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def fresh_sqlite_url() -> str:
    """A migrated SQLite database of its own (the gateway's inbox commits rows)."""
    target = Path(tempfile.mkdtemp(prefix="kopa-gateway-")) / "kopa.db"
    shutil.copyfile(_migrated_template(), target)
    return f"sqlite:///{target}"


def wait_until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class RecordingConversation:
    """The real ConversationService, with a note of what the gateway handed it."""

    def __init__(self, inner: ConversationService) -> None:
        self.inner = inner
        self.seen: list[InboundMessage] = []

    async def handle(self, inbound: InboundMessage) -> list[OutboundMessage]:
        self.seen.append(inbound)
        return await self.inner.handle(inbound)

    async def aclose(self) -> None:
        await self.inner.aclose()


def gateway_settings(
    *,
    telegram_url: str,
    whatsapp_url: str,
    rasa_url: str | None = None,
    api_url: str | None = None,
    database_url: str | None = None,
) -> BotSettings:
    return BotSettings(
        env="test",
        telegram=TelegramSettings(
            token=SecretStr(TG_TOKEN),
            webhook_secret=SecretStr(TG_SECRET),
            api_base_url=f"{telegram_url}/bot",
            read_timeout=2.0,
        ),
        whatsapp=WhatsAppSettings(
            token=SecretStr(WA_TOKEN),
            app_secret=SecretStr(WA_APP_SECRET),
            verify_token=SecretStr(WA_VERIFY),
            graph_base_url=whatsapp_url,
            read_timeout=2.0,
        ),
        rasa_url=rasa_url or closed_port_url(),
        api_url=api_url or closed_port_url(),
        redis_url=None,
        database_url=database_url or fresh_sqlite_url(),
        reply_deadline_seconds=4.0,
        inbox_poll_seconds=0.1,
    )


@pytest.fixture
def fake_telegram() -> Iterator[tuple[FakeTelegram, ServerThread]]:
    fake = FakeTelegram()
    with ServerThread(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake_whatsapp() -> Iterator[tuple[FakeWhatsApp, ServerThread]]:
    fake = FakeWhatsApp(app_secret=WA_APP_SECRET)
    with ServerThread(fake.app) as server:
        yield fake, server


@dataclass
class Gateway:
    url: str
    settings: BotSettings
    telegram: FakeTelegram
    whatsapp: FakeWhatsApp
    conversation: RecordingConversation
    client: httpx.Client

    def telegram_post(self, body: Any, secret: str | None = TG_SECRET) -> httpx.Response:
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        if isinstance(body, bytes):
            headers["Content-Type"] = "application/json"
            return self.client.post("/telegram/webhook", content=body, headers=headers)
        return self.client.post("/telegram/webhook", json=body, headers=headers)


def start_gateway(
    fake_tg: tuple[FakeTelegram, ServerThread],
    fake_wa: tuple[FakeWhatsApp, ServerThread],
    *,
    rasa_url: str | None = None,
    api_url: str | None = None,
    database_url: str | None = None,
    telegram_polling: bool = False,
) -> tuple[ServerThread, Gateway]:
    telegram, tg_server = fake_tg
    whatsapp, wa_server = fake_wa
    settings = gateway_settings(
        telegram_url=tg_server.url,
        whatsapp_url=wa_server.url,
        rasa_url=rasa_url,
        api_url=api_url,
        database_url=database_url,
    )
    conversation = RecordingConversation(
        ConversationService(
            RasaClient(settings.rasa_url),
            ChatRegistry(settings.api_url, settings.service_token.get_secret_value()),
            deadline_seconds=3.0,
        )
    )
    app = create_app(settings, conversation=conversation, telegram_polling=telegram_polling)
    server = ServerThread(app).start()
    if not telegram_polling:
        httpx.post(
            f"{tg_server.url}/bot{TG_TOKEN}/setWebhook",
            data={"url": f"{server.url}/telegram/webhook", "secret_token": TG_SECRET},
        ).raise_for_status()
    whatsapp.webhook_url = f"{server.url}/whatsapp/webhook"
    client = httpx.Client(base_url=server.url, timeout=10)
    return server, Gateway(server.url, settings, telegram, whatsapp, conversation, client)


@pytest.fixture
def gateway(
    fake_telegram: tuple[FakeTelegram, ServerThread],
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
) -> Iterator[Gateway]:
    server, gw = start_gateway(fake_telegram, fake_whatsapp)
    try:
        yield gw
    finally:
        gw.client.close()
        server.stop()


def gateway_env(settings: BotSettings, *, port: int) -> dict[str, str]:
    """The environment that makes ``kopa serve bot`` run with ``settings`` on ``port``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("KOPA_") or key == "KOPA_TIMEZONE"
    }
    env.update(
        {
            "KOPA_ENV": settings.env,
            "KOPA_GATEWAY_HOST": "127.0.0.1",
            "KOPA_GATEWAY_PORT": str(port),
            "KOPA_TELEGRAM__ENABLED": str(settings.telegram.enabled).lower(),
            "KOPA_WHATSAPP__ENABLED": str(settings.whatsapp.enabled).lower(),
            "KOPA_TELEGRAM__TOKEN": settings.telegram.token.get_secret_value(),
            "KOPA_TELEGRAM__WEBHOOK_SECRET": settings.telegram.webhook_secret.get_secret_value(),
            "KOPA_TELEGRAM__API_BASE_URL": settings.telegram.api_base_url,
            "KOPA_TELEGRAM__READ_TIMEOUT": str(settings.telegram.read_timeout),
            "KOPA_WHATSAPP__TOKEN": settings.whatsapp.token.get_secret_value(),
            "KOPA_WHATSAPP__APP_SECRET": settings.whatsapp.app_secret.get_secret_value(),
            "KOPA_WHATSAPP__VERIFY_TOKEN": settings.whatsapp.verify_token.get_secret_value(),
            "KOPA_WHATSAPP__GRAPH_BASE_URL": settings.whatsapp.graph_base_url,
            "KOPA_RASA_URL": settings.rasa_url,
            "KOPA_API_URL": settings.api_url,
            "KOPA_SERVICE_TOKEN": settings.service_token.get_secret_value(),
            "KOPA_DATABASE_URL": settings.database_url,
            "KOPA_REPLY_DEADLINE_SECONDS": str(settings.reply_deadline_seconds),
            "KOPA_INBOX_LEASE_SECONDS": str(settings.inbox_lease_seconds),
            "KOPA_INBOX_POLL_SECONDS": str(settings.inbox_poll_seconds),
            "KOPA_INBOX_WORKERS": str(settings.inbox_workers),
        }
    )
    if settings.redis_url:
        env["KOPA_REDIS_URL"] = settings.redis_url
    return env


class GatewayProcess:
    """``kopa serve bot`` as a process of its own, so that a test can SIGKILL it mid-turn."""

    def __init__(self, settings: BotSettings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "kopa.cli", "serve", "bot"],
            env=gateway_env(self.settings, port=self.port),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"the gateway exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the gateway did not start; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine loses power."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
