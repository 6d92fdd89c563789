"""An acknowledged message is never lost (issue 14, defect 3).

The gateway runs as a process of its own (``kopa serve bot``) on a migrated SQLite database, with
the real python-telegram-bot talking to the fake Bot API. Its loan API and Rasa are a listener
that accepts requests and never answers, so the test knows the turn is in progress (registering
the chat) when it SIGKILLs the gateway; then it restarts the gateway with both down (nothing
listens).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram, text_update
from bot.fakes.whatsapp import FakeWhatsApp, sign, text_payload
from i18n import render
from tests.bot.conftest import (
    TG_SECRET,
    WA_APP_SECRET,
    GatewayProcess,
    closed_port_url,
    fresh_sqlite_url,
    gateway_settings,
    wait_until,
)

CHAT = 6_600_001
WA_USER = "254711660001"


class HangingServer:
    """Accepts connections and reads requests, never answers: a turn stuck in a call."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.requests = 0
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._held.append(conn)
            if conn.recv(65536):
                self.requests += 1

    def close(self) -> None:
        self._sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    rasa = HangingServer()
    yield rasa
    rasa.close()


def _inbox_rows(database_url: str) -> list[tuple[str, str]]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, status FROM inbox_message ORDER BY id")).all()
    engine.dispose()
    return [(row.key, row.status) for row in rows]


def _post_telegram(url: str, update: dict[str, object]) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    return httpx.post(f"{url}/telegram/webhook", json=update, headers=headers)


def _post_whatsapp(url: str, raw: bytes) -> httpx.Response:
    headers = {"X-Hub-Signature-256": sign(raw, WA_APP_SECRET), "Content-Type": "application/json"}
    return httpx.post(f"{url}/whatsapp/webhook", content=raw, headers=headers)


def test_turns_killed_mid_flight_are_replayed_after_restart_and_answered_once(
    fake_telegram: tuple[FakeTelegram, ServerThread],
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
    hanging: HangingServer,
    tmp_path: Path,
) -> None:
    telegram, tg_server = fake_telegram
    whatsapp, wa_server = fake_whatsapp
    settings = gateway_settings(
        telegram_url=tg_server.url,
        whatsapp_url=wa_server.url,
        rasa_url=hanging.url,
        api_url=hanging.url,
        database_url=fresh_sqlite_url(),
    ).model_copy(update={"inbox_lease_seconds": 2.0})
    gateway = GatewayProcess(settings, tmp_path / "gateway.log").start()
    update = {"update_id": 424_242, **text_update(CHAT, "nataka salio", language_code="sw")}
    raw = json.dumps(text_payload(WA_USER, "solde", message_id="wamid.durable-1")).encode()
    try:
        assert _post_telegram(gateway.url, update).status_code == 200
        assert _post_whatsapp(gateway.url, raw).status_code == 200
        wait_until(lambda: hanging.requests >= 2)  # both turns are mid-call
        gateway.kill()
        assert telegram.sent_texts(CHAT) == []
        assert whatsapp.sent_texts(WA_USER) == []

        # Back up with the API and Rasa down: each replayed turn ends in "try again shortly".
        # The providers got their 200, so nothing is delivered again: only the inbox replays.
        restarted = GatewayProcess(
            settings.model_copy(
                update={"rasa_url": closed_port_url(), "api_url": closed_port_url()}
            ),
            gateway.log_path,
        )
        restarted.port, restarted.url = gateway.port, gateway.url
        restarted.start()
        try:
            wait_until(
                lambda: telegram.sent_texts(CHAT) and whatsapp.sent_texts(WA_USER), timeout=30
            )
            # A late redelivery of either (providers do that when unsure) adds no second answer.
            assert _post_telegram(gateway.url, update).status_code == 200
            assert _post_whatsapp(gateway.url, raw).status_code == 200
            wait_until(
                lambda: {status for _key, status in _inbox_rows(settings.database_url)} == {"done"}
            )
            time.sleep(1.0)
        finally:
            restarted.stop()
    finally:
        gateway.stop()

    assert telegram.sent_texts(CHAT) == [render("common.try_again_shortly", "sw")]
    assert whatsapp.sent_texts(WA_USER) == [render("common.try_again_shortly", "en")]
    assert _inbox_rows(settings.database_url) == [
        ("tg:424242", "done"),
        ("wa:wamid.durable-1", "done"),
    ]
