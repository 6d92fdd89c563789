"""The production topology on this machine, for the gateway and replica tests.

One stack for the test session, on a scratch PostgreSQL database: the loan API, the action
server and two Rasa replicas with the trained model, sharing a SQL tracker store (the app
database's ``<name>_rasa``) and the Redis lock store; two gateway processes (``kopa serve bot``)
routing each conversation to its replica and sharing the app database's inbox and one Redis
(reached through a TCP proxy the tests can cut); python-telegram-bot talking to the fake Bot
API, and the fake WhatsApp Cloud API signing its webhooks. ``conftest.py`` serves it as the
session fixture ``rig``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from api.borrowers.pseudonym import chat_pseudonym
from api.borrowers.verification import dob_hash, national_id_hash
from api.core.db import build_engine
from api.core.migrate import upgrade
from bot.config import BotSettings
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram, text_update
from bot.fakes.whatsapp import FakeWhatsApp, sign, text_payload
from bot.rasa_client import TURN_SECONDS
from kopa.paths import RASA_BIN
from kopa.stack import RasaStores, Stack, rasa_token, rasa_tracker_database_url, running_stack
from tests.api.factories import make_borrower, make_branch, make_loan, make_officer, today
from tests.bot.conftest import (
    TG_SECRET,
    TG_TOKEN,
    WA_APP_SECRET,
    GatewayProcess,
    gateway_settings,
)

PEPPER = f"reliability-pepper-{uuid.uuid4().hex[:8]}"
REQUIRE = os.environ.get("KOPA_REQUIRE_SERVICES") == "1"


def need(value: str | None, name: str) -> str:
    if not value:
        if REQUIRE:
            pytest.fail(f"{name} is not set (KOPA_REQUIRE_SERVICES=1)")
        pytest.skip(f"{name} is not set")
    assert value is not None
    return value


class TcpProxy:
    """A TCP proxy to ``upstream`` that a test can cut (refuse and drop) and restore."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)  # a burst opens many connections at once
        self.port = self._sock.getsockname()[1]
        self.up = True
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=2)
            except OSError:
                client.close()
                continue
            # The 2 s was for connecting only: an idle pooled connection must stay open.
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.up = False
        with self._lock:
            for conn in self._open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._open.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self._sock.close()


@dataclass
class Rig:
    stack: Stack
    database_url: str
    engine: Engine
    telegram: FakeTelegram
    whatsapp: FakeWhatsApp
    gateways: list[GatewayProcess]
    redis: TcpProxy
    log_dir: Path
    seeded_reference: str
    seeded_phone: str
    token: str  # the service token of the API and the actions

    def conversation(self, channel: str, user: str | int) -> str:
        prefix = {"telegram": "tg", "whatsapp": "wa"}[channel]
        return f"{prefix}:{chat_pseudonym(PEPPER, channel, str(user))}"

    def tracker(self, sender: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.stack.rasa_url}/conversations/{sender}/tracker",
            params={"token": rasa_token()},
            timeout=10,
        )
        response.raise_for_status()
        tracker: dict[str, Any] = response.json()
        return tracker

    def user_events(self, sender: str) -> list[dict[str, Any]]:
        events = self.tracker(sender).get("events") or []
        return [e for e in events if e.get("event") == "user"]

    def user_message_ids(self, sender: str) -> list[str]:
        """The channel message each user event of the conversation came from, in the order
        Rasa processed them (the stored tracker keeps no text: it is redacted as saved)."""
        return [str((e.get("metadata") or {}).get("message_id")) for e in self.user_events(sender)]

    def inbox(self, key: str) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT key, status FROM inbox_message WHERE key = :key"), {"key": key}
            ).all()
        return [(row.key, row.status) for row in rows]

    def inbox_finished(self, keys: list[str]) -> int:
        """How many of these inbound messages were answered (``done``)."""
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM inbox_message "
                        "WHERE key = ANY(:keys) AND status = 'done'"
                    ),
                    {"keys": keys},
                )
                or 0
            )

    def add_borrower(self, *, dob: date, national_id: str, due: date, amount: str) -> str:
        """A borrower with one installment of ``amount`` due on ``due``, answering to ``dob``
        and ``national_id`` (hashed with the stack's pepper, as the real import does).
        Returns the phone."""
        phone = f"+2547{uuid.uuid4().int % 10**8:08d}"
        with Session(self.engine) as session:
            branch = make_branch(session)
            borrower = make_borrower(
                session, branch, officer=make_officer(session, branch), phone=phone
            )
            borrower.dob_hash = dob_hash(PEPPER, dob)
            borrower.national_id_last4_hash = national_id_hash(PEPPER, national_id[-4:])
            make_loan(session, borrower, schedule=[(due, amount, "0.00", "0.00")])
            session.commit()
        return phone

    def alias_phone(self, channel: str, user: str) -> str | None:
        with self.engine.connect() as conn:
            phone = conn.scalar(
                text(
                    "SELECT proven_phone_e164 FROM borrower_chat_alias "
                    "WHERE channel = :channel AND external_user_id = :user"
                ),
                {"channel": channel, "user": user},
            )
        return str(phone) if phone is not None else None


def post_telegram(
    url: str, update: dict[str, Any], *, secret: str | None = TG_SECRET
) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return httpx.post(f"{url}/telegram/webhook", json=update, headers=headers, timeout=10)


def post_whatsapp(url: str, raw: bytes, *, signature: str | None = None) -> httpx.Response:
    headers = {
        "X-Hub-Signature-256": signature or sign(raw, WA_APP_SECRET),
        "Content-Type": "application/json",
    }
    return httpx.post(f"{url}/whatsapp/webhook", content=raw, headers=headers, timeout=10)


def wa_body(wa_id: str, body: str, message_id: str) -> bytes:
    payload = text_payload(wa_id, body, message_id=message_id)
    return json.dumps(payload, ensure_ascii=False).encode()


def seed(engine: Engine) -> tuple[str, str]:
    with Session(engine) as session:
        branch = make_branch(session)
        officer = make_officer(session, branch)
        borrower = make_borrower(session, branch, officer=officer, phone="+254711223344")
        start = today()
        loan = make_loan(
            session,
            borrower,
            schedule=[(start - timedelta(days=20), "2500.00", "400.00", "100.00")],
        )
        session.commit()
        return loan.account_reference, borrower.phone_e164


def start_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """Start the rig; stop and drop everything when the generator is closed."""
    if not RASA_BIN.exists():
        need(None, "Rasa (run `make setup`)")
    base = need(os.environ.get("KOPA_TEST_DATABASE_URL"), "KOPA_TEST_DATABASE_URL")
    redis_url = make_url(
        need(os.environ.get("KOPA_TEST_REDIS_URL"), "KOPA_TEST_REDIS_URL").replace(
            "redis://", "postgresql://"
        )
    )
    root = tmp_path_factory.mktemp("gateway-rig")
    name = f"kopa_gw_{uuid.uuid4().hex[:10]}"
    admin = build_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(base).set(database=name).render_as_string(hide_password=False)
    upgrade(database_url)
    engine = create_engine(database_url)
    reference, phone = seed(engine)
    redis = TcpProxy(redis_url.host or "127.0.0.1", redis_url.port or 6379)
    redis_db = redis_url.database or "0"
    token = f"gw-rig-{uuid.uuid4().hex}"
    telegram, whatsapp = FakeTelegram(), FakeWhatsApp(app_secret=WA_APP_SECRET)
    gateways: list[GatewayProcess] = []
    with (
        ServerThread(telegram.app) as tg_server,
        ServerThread(whatsapp.app) as wa_server,
        running_stack(
            database_url,
            token=token,
            log_dir=root / "logs",
            extra_env={"KOPA_HASH_PEPPER": PEPPER},
            rasa_timeout=900.0,  # two shared cores: Rasa has taken over 7 min to load here
            # The production topology: two replicas on a shared SQL tracker store and the
            # Redis lock store (Rasa's Redis is not the gateway's cuttable proxy).
            rasa_replicas=2,
            rasa_stores=RasaStores(
                tracker_database_url=rasa_tracker_database_url(database_url),
                lock_redis_url=need(os.environ.get("KOPA_TEST_REDIS_URL"), "KOPA_TEST_REDIS_URL"),
                lock_key_prefix=f"kopagw{uuid.uuid4().hex[:8]}",
            ),
        ) as stack,
    ):
        try:
            assert stack.rasa_url is not None and stack.api_url is not None
            settings: BotSettings = gateway_settings(
                telegram_url=tg_server.url,
                whatsapp_url=wa_server.url,
                rasa_url=",".join(stack.rasa_urls),
                api_url=stack.api_url,
                database_url=database_url,
            ).model_copy(
                update={
                    "redis_url": f"redis://127.0.0.1:{redis.port}/{redis_db}",
                    "inbox_lease_seconds": 30.0,
                    # The production bound, not the unit tests' 4 s: under a 1000-message burst
                    # on two cores a turn waits tens of seconds, and cutting it short loses it.
                    "reply_deadline_seconds": TURN_SECONDS,
                }
            )
            settings = settings.model_copy(update={"service_token": SecretStr(token)})
            for index in range(2):
                gateway = GatewayProcess(settings, root / f"gateway-{index}.log")
                gateways.append(gateway.start())
            httpx.post(
                f"{tg_server.url}/bot{TG_TOKEN}/setWebhook",
                data={"url": f"{gateways[0].url}/telegram/webhook", "secret_token": TG_SECRET},
            ).raise_for_status()
            whatsapp.webhook_url = f"{gateways[0].url}/whatsapp/webhook"
            yield Rig(
                stack, database_url, engine, telegram, whatsapp, gateways, redis,
                root / "logs", reference, phone, token,
            )  # fmt: skip
        finally:
            for gateway in gateways:
                gateway.stop()
            redis.close()
            engine.dispose()
    with admin.connect() as conn:
        for database in (name, f"{name}_rasa"):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


# Chats and update ids already used in this session: a repeat would share a chat (two bursts in
# one, five messages "missing") or meet the gateways' Redis de-duplication, which remembers
# update ids for two days, also from earlier runs (hence the wide ranges).
_used_chats: set[int | str] = set()


def _fresh(draw: Callable[[], int | str]) -> Any:
    while (value := draw()) in _used_chats:
        pass
    _used_chats.add(value)
    return value


def new_chat() -> int:
    chat: int = _fresh(lambda: 5_000_000_000 + uuid.uuid4().int % 10**9)
    return chat


def tg_text(chat: int, body: str, message_id: int) -> dict[str, Any]:
    """A private text message with its own message id (the fake's default is 0 for all)."""
    update = text_update(chat, body)
    update["message"]["message_id"] = message_id
    return update


def new_wa() -> str:
    wa_id: str = _fresh(lambda: f"2547{uuid.uuid4().int % 10**8:08d}")
    return wa_id
