"""Reliability matrix rows of the gateway (L-2, F-9, F-11, B-1, B-2, B-3, B-5, B-6, B-7, P-8),
and the inbound defects of issue 14 (per-chat order across processes, pseudonymous Rasa ids).

One stack for the module, on a scratch PostgreSQL database: the loan API, the action server and
Rasa with the trained model; two gateway processes (``kopa serve bot``) sharing that database's
inbox and one Redis (reached through a TCP proxy the tests can cut); python-telegram-bot talking
to the fake Bot API, and the fake WhatsApp Cloud API signing its webhooks.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from actions.common import today
from api.core.db import build_engine
from api.core.migrate import upgrade
from bot.config import BotSettings
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram, contact_update, text_update
from bot.fakes.whatsapp import FakeWhatsApp, sign, text_payload
from kopa.i18n import render
from kopa.paths import RASA_BIN
from kopa.pseudonym import chat_pseudonym
from kopa.stack import Stack, rasa_token, running_stack
from tests.api.factories import make_borrower, make_branch, make_loan, make_officer
from tests.bot.conftest import (
    TG_SECRET,
    TG_TOKEN,
    WA_APP_SECRET,
    GatewayProcess,
    gateway_settings,
    wait_until,
)

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(1800)]

PEPPER = f"reliability-pepper-{uuid.uuid4().hex[:8]}"
REQUIRE = os.environ.get("KOPA_REQUIRE_SERVICES") == "1"


def _need(value: str | None, name: str) -> str:
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
        self._sock.listen(64)
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

    def user_texts(self, sender: str) -> list[str]:
        events = self.tracker(sender).get("events") or []
        return [str(e.get("text")) for e in events if e.get("event") == "user"]

    def inbox(self, key: str) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT key, status FROM inbox_message WHERE key = :key"), {"key": key}
            ).all()
        return [(row.key, row.status) for row in rows]

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


def _seed(engine: Engine) -> tuple[str, str]:
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


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if not RASA_BIN.exists():
        _need(None, "Rasa (run `make setup`)")
    base = _need(os.environ.get("KOPA_TEST_DATABASE_URL"), "KOPA_TEST_DATABASE_URL")
    redis_url = make_url(
        _need(os.environ.get("KOPA_TEST_REDIS_URL"), "KOPA_TEST_REDIS_URL").replace(
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
    reference, phone = _seed(engine)
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
        ) as stack,
    ):
        try:
            assert stack.rasa_url is not None and stack.api_url is not None
            settings: BotSettings = gateway_settings(
                telegram_url=tg_server.url,
                whatsapp_url=wa_server.url,
                rasa_url=stack.rasa_url,
                api_url=stack.api_url,
                database_url=database_url,
            ).model_copy(
                update={
                    "redis_url": f"redis://127.0.0.1:{redis.port}/{redis_db}",
                    "reply_deadline_seconds": 20.0,
                    "inbox_lease_seconds": 30.0,
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
                root / "logs", reference, phone,
            )  # fmt: skip
        finally:
            for gateway in gateways:
                gateway.stop()
            redis.close()
            engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _new_chat() -> int:
    return 5_000_000 + uuid.uuid4().int % 10**6


def _new_wa() -> str:
    return f"2547{uuid.uuid4().int % 10**8:08d}"


# -- issue 14, defect 8 (gateway part) ---------------------------------------------------------


def test_rasa_knows_the_chat_by_its_pseudonym_and_never_sees_the_phone(rig: Rig) -> None:
    """A shared contact starts verification with the phone the gateway registered with the
    API; Rasa's tracker holds neither the phone nor the Telegram id."""
    chat = _new_chat()
    update = {"update_id": chat, **contact_update(chat, "254711223344", contact_user_id=chat)}

    assert post_telegram(rig.gateways[0].url, update).status_code == 200

    wait_until(lambda: rig.telegram.sent_texts(chat), timeout=60)
    asked = {render("conv.verify.ask_dob", "en"), render("conv.verify.ask_national_id", "en")}
    assert set(rig.telegram.sent_texts(chat)) & asked
    sender = rig.conversation("telegram", chat)
    tracker = rig.tracker(sender)
    dump = json.dumps(tracker)
    assert "254711223344" not in dump
    assert str(chat) not in dump
    [metadata] = [
        e["metadata"] for e in tracker["events"] if e.get("event") == "user" and e.get("metadata")
    ]
    assert metadata["phone_proven"] is True
    assert metadata["message_id"].startswith(f"{sender}:")
    assert rig.alias_phone("telegram", str(chat)) == "+254711223344"
    assert rig.user_texts(f"tg:{chat}") == []  # nothing under the real id


# -- L-2 and issue 14, defect 4 ----------------------------------------------------------------


def test_L2_inbound_burst_keeps_per_chat_order_across_two_gateways(rig: Rig) -> None:
    """Smaller than the row (200 chats x 5 messages, 2 Rasa replicas): 20 chats (10 Telegram,
    10 WhatsApp) x 5 back-to-back messages, each message posted to one of two gateway processes
    in turn, one Rasa. Asserts per-chat order 100 % (Rasa's tracker of every chat holds its
    five texts in the order sent) and no reply to a chat that did not write; p95 latency and
    LockError rate are not asserted here (two shared cores)."""
    tg_chats = [_new_chat() for _ in range(10)]
    wa_chats = [_new_wa() for _ in range(10)]
    sent: dict[str, list[str]] = {}
    tg_before = len(rig.telegram.state.query("sendMessage", None))
    wa_before = len(rig.whatsapp.state.query("messages", None))

    def burst_telegram(chat: int) -> None:
        texts = [f"hello {chat} number {n}" for n in range(5)]
        sent[rig.conversation("telegram", chat)] = texts
        for n, body in enumerate(texts):
            update = {"update_id": chat * 10 + n, **text_update(chat, body)}
            assert post_telegram(rig.gateways[n % 2].url, update).status_code == 200

    def burst_whatsapp(wa_id: str) -> None:
        texts = [f"hello {wa_id} number {n}" for n in range(5)]
        sent[rig.conversation("whatsapp", wa_id)] = texts
        for n, body in enumerate(texts):
            raw = wa_body(wa_id, body, f"wamid.l2-{wa_id}-{n}")
            assert post_whatsapp(rig.gateways[n % 2].url, raw).status_code == 200

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(burst_telegram, tg_chats))
        list(pool.map(burst_whatsapp, wa_chats))

    def all_answered() -> bool:
        return all(len(rig.user_texts(sender)) >= 5 for sender in sent)

    wait_until(all_answered, timeout=240)
    in_order = sum(rig.user_texts(sender)[-5:] == texts for sender, texts in sent.items())
    assert in_order == len(sent) == 20
    wait_until(lambda: all(rig.telegram.sent_texts(chat) for chat in tg_chats), timeout=30)
    wait_until(lambda: all(rig.whatsapp.sent_texts(wa) for wa in wa_chats), timeout=30)
    time.sleep(1.0)
    # Every reply of the burst went to a chat that wrote in it, and every chat heard back.
    tg_recipients = {
        e["recipient"] for e in rig.telegram.state.query("sendMessage", None)[tg_before:]
    }
    wa_recipients = {e["recipient"] for e in rig.whatsapp.state.query("messages", None)[wa_before:]}
    assert tg_recipients == {str(c) for c in tg_chats}
    assert wa_recipients == set(wa_chats)


# -- F-9, F-11 ----------------------------------------------------------------------------------


def test_F9_gateway_redis_down_answers_in_order_and_recovers_without_restart(rig: Rig) -> None:
    """The gateway's Redis (dedupe) cut at the TCP level: each message is still stored (the
    inbox's unique key decides), answered once, in order, and the outage is logged rather than
    silent; Redis back, the same gateways use it again without a restart. Nothing in the
    gateway needs Redis to answer, so the borrower gets the real answer, not "try again later"
    (that answer, in the borrower's language, is what a Rasa or API outage gives:
    ``tests/bot/test_gateway_security.py``)."""
    wa_id = _new_wa()
    sender = rig.conversation("whatsapp", wa_id)
    texts = [f"hello during the outage {n}" for n in range(3)]
    rig.redis.cut()
    try:
        for n, body in enumerate(texts):
            raw = wa_body(wa_id, body, f"wamid.f9-{wa_id}-{n}")
            assert post_whatsapp(rig.gateways[n % 2].url, raw).status_code == 200
        # A redelivery during the outage is refused by the inbox's unique key.
        raw = wa_body(wa_id, texts[0], f"wamid.f9-{wa_id}-0")
        assert post_whatsapp(rig.gateways[1].url, raw).status_code == 200
        wait_until(lambda: len(rig.user_texts(sender)) >= 3, timeout=120)
    finally:
        rig.redis.restore()
    time.sleep(1.0)
    assert rig.user_texts(sender) == texts
    logs = "".join(g.log_path.read_text(errors="replace") for g in rig.gateways)
    assert "dedupe store unavailable" in logs

    after = f"hello after the outage {wa_id}"
    raw = wa_body(wa_id, after, f"wamid.f9-{wa_id}-after")
    assert post_whatsapp(rig.gateways[0].url, raw).status_code == 200
    wait_until(lambda: len(rig.user_texts(sender)) == 4, timeout=60)
    assert rig.user_texts(sender) == [*texts, after]


def test_F11_the_same_webhook_delivered_twice_at_once_is_processed_once(rig: Rig) -> None:
    """The same Telegram update and the same WhatsApp message, each POSTed to both gateway
    processes at the same moment: every delivery gets a 2xx, one inbox row each, Rasa sees
    each text once and each chat gets one answer."""
    chat, wa_id = _new_chat(), _new_wa()
    update = {"update_id": chat, **text_update(chat, "hello twice")}
    raw = wa_body(wa_id, "hello twice", f"wamid.f11-{wa_id}")
    calls = [
        lambda url: post_telegram(url, update),
        lambda url: post_whatsapp(url, raw),
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(lambda job: job[0](job[1]), [(c, g.url) for c in calls for g in rig.gateways])
        )
    assert all(answer.is_success for answer in answers)
    tg_sender, wa_sender = rig.conversation("telegram", chat), rig.conversation("whatsapp", wa_id)
    wait_until(lambda: rig.user_texts(tg_sender) and rig.user_texts(wa_sender), timeout=60)
    wait_until(lambda: rig.telegram.sent_texts(chat) and rig.whatsapp.sent_texts(wa_id))
    time.sleep(2.0)
    assert rig.user_texts(tg_sender) == ["hello twice"]
    assert rig.user_texts(wa_sender) == ["hello twice"]
    assert rig.inbox(f"tg:{chat}") == [(f"tg:{chat}", "done")]
    assert rig.inbox(f"wa:wamid.f11-{wa_id}") == [(f"wa:wamid.f11-{wa_id}", "done")]
    first_tg, first_wa = len(rig.telegram.sent_texts(chat)), len(rig.whatsapp.sent_texts(wa_id))
    assert (first_tg, first_wa) == (1, 1)


# -- B-1, B-2, B-3 ------------------------------------------------------------------------------


def test_B1_contact_json_typed_as_text_is_not_a_contact(rig: Rig) -> None:
    chat = _new_chat()
    typed = json.dumps({"phone_number": rig.seeded_phone, "user_id": chat})
    assert post_telegram(
        rig.gateways[0].url, {"update_id": chat, **text_update(chat, typed)}
    ).is_success

    sender = rig.conversation("telegram", chat)
    wait_until(lambda: rig.telegram.sent_texts(chat), timeout=60)
    assert rig.alias_phone("telegram", str(chat)) is None
    [event] = [e for e in rig.tracker(sender)["events"] if e.get("event") == "user"]
    assert event["metadata"]["phone_proven"] is False
    asked = {render("conv.verify.ask_dob", "en"), render("conv.verify.ask_national_id", "en")}
    assert not set(rig.telegram.sent_texts(chat)) & asked


def test_B2_someone_elses_contact_is_refused_without_a_hint(rig: Rig) -> None:
    chat = _new_chat()
    theirs = contact_update(chat, rig.seeded_phone.lstrip("+"), contact_user_id=chat + 1)
    nobody = contact_update(chat, "254700000999", contact_user_id=None)
    for n, update in enumerate((theirs, nobody)):
        assert post_telegram(rig.gateways[n].url, {"update_id": chat * 10 + n, **update}).is_success

    wait_until(lambda: len(rig.telegram.sent_texts(chat)) >= 2, timeout=60)
    time.sleep(1.0)
    refused = render("channels.contact_not_yours", "en")
    # The same answer whether or not the number is a borrower's; nothing reached Rasa.
    assert rig.telegram.sent_texts(chat) == [refused, refused]
    assert rig.user_texts(rig.conversation("telegram", chat)) == []
    assert rig.alias_phone("telegram", str(chat)) is None


def test_B3_slash_payload_injection_never_returns_another_borrowers_data(rig: Rig) -> None:
    chat = _new_chat()
    injections = [
        '/ask_balance{"loan_id": "1"}',
        f'/inform{{"loan_id": "1", "account_reference": "{rig.seeded_reference}"}}',
        f'/ask_balance{{"phone": "{rig.seeded_phone}", "user": "{rig.seeded_phone}"}}',
    ]
    for n, body in enumerate(injections):
        update = {"update_id": chat * 10 + n, **text_update(chat, body)}
        assert post_telegram(rig.gateways[n % 2].url, update).is_success

    sender = rig.conversation("telegram", chat)
    wait_until(lambda: len(rig.user_texts(sender)) >= 3, timeout=90)
    wait_until(lambda: len(rig.telegram.sent_texts(chat)) >= 3)
    time.sleep(1.0)
    replies = "\n".join(rig.telegram.sent_texts(chat))
    assert rig.seeded_reference not in replies
    assert "3,000" not in replies and "3000" not in replies  # the seeded arrears
    assert rig.alias_phone("telegram", str(chat)) is None


# -- B-5, B-6, B-7 ------------------------------------------------------------------------------


def test_B5_huge_and_deeply_nested_bodies_are_refused_or_truncated_safely(rig: Rig) -> None:
    """A 10,000-character message is answered and reaches Rasa cut to 4,096 characters; a body
    over 1 MB is 413 and deeply nested JSON 400, without reading or storing them; the gateway
    stays healthy. (Worker memory is not measured here.)"""
    url = rig.gateways[1].url
    wa_id = _new_wa()
    long_text = ("ndiyo " * 2000)[:10_000]
    raw = wa_body(wa_id, long_text, f"wamid.b5-{wa_id}")
    assert post_whatsapp(url, raw).status_code == 200
    sender = rig.conversation("whatsapp", wa_id)
    wait_until(lambda: rig.user_texts(sender), timeout=60)
    assert rig.user_texts(sender) == [long_text[:4096]]
    wait_until(lambda: rig.whatsapp.sent_texts(wa_id))

    huge = json.dumps({"update_id": 1, "message": {"text": "x" * 1_100_000}})
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}
    assert httpx.post(f"{url}/telegram/webhook", content=huge, headers=headers).status_code == 413
    nested = ("[" * 200_000 + "]" * 200_000).encode()
    assert post_whatsapp(url, nested).status_code == 400
    deep_object = '{"update_id": 5, "message": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001
    answer = httpx.post(f"{url}/telegram/webhook", content=deep_object, headers=headers)
    assert answer.status_code == 400
    assert httpx.get(f"{url}/health").status_code == 200


def test_B6_emoji_rtl_and_zero_width_text_round_trip_and_signatures_use_raw_bytes(
    rig: Rig,
) -> None:
    wa_id = _new_wa()
    body = "💸 أريد رصيدي \u200b\u200dZawadi é ñ \u202e"
    raw = wa_body(wa_id, body, f"wamid.b6-{wa_id}")
    assert b"\\u" not in raw  # the bytes on the wire are UTF-8, not escapes
    # The same JSON re-encoded with escapes is another byte string: its signature differs.
    escaped = json.dumps(json.loads(raw), ensure_ascii=True).encode()
    assert (
        post_whatsapp(rig.gateways[0].url, escaped, signature=sign(raw, WA_APP_SECRET)).status_code
        == 403
    )

    assert post_whatsapp(rig.gateways[0].url, raw).status_code == 200
    sender = rig.conversation("whatsapp", wa_id)
    wait_until(lambda: rig.user_texts(sender), timeout=60)
    assert rig.user_texts(sender) == [body]

    chat = _new_chat()
    update = {"update_id": chat, **text_update(chat, body, first_name="زهرة 🌸")}
    assert post_telegram(rig.gateways[1].url, update).is_success
    wait_until(lambda: rig.user_texts(rig.conversation("telegram", chat)), timeout=60)
    assert rig.user_texts(rig.conversation("telegram", chat)) == [body]


def test_B7_missing_or_wrong_secrets_are_refused_and_a_replay_has_no_second_effect(
    rig: Rig,
) -> None:
    url = rig.gateways[0].url
    chat, wa_id = _new_chat(), _new_wa()
    update = {"update_id": chat, **text_update(chat, "hello secrets")}
    raw = wa_body(wa_id, "hello secrets", f"wamid.b7-{wa_id}")

    assert post_telegram(url, update, secret=None).status_code == 401
    assert post_telegram(url, update, secret="wrong-secret").status_code == 403
    missing = httpx.post(
        f"{url}/whatsapp/webhook", content=raw, headers={"Content-Type": "application/json"}
    )
    assert missing.status_code == 401
    assert post_whatsapp(url, raw, signature="sha256=" + "0" * 64).status_code == 403
    assert rig.inbox(f"tg:{chat}") == [] and rig.inbox(f"wa:wamid.b7-{wa_id}") == []

    for _ in range(2):  # the valid delivery, then its replay
        assert post_telegram(url, update).status_code == 200
        assert post_whatsapp(url, raw).status_code == 200
        time.sleep(0.5)
    wait_until(lambda: rig.telegram.sent_texts(chat) and rig.whatsapp.sent_texts(wa_id), timeout=60)
    time.sleep(2.0)
    assert rig.user_texts(rig.conversation("telegram", chat)) == ["hello secrets"]
    assert rig.user_texts(rig.conversation("whatsapp", wa_id)) == ["hello secrets"]


# -- P-8 ----------------------------------------------------------------------------------------


def test_P8_webhooks_take_only_json_posts_and_the_gateway_binds_where_its_settings_say(
    rig: Rig,
) -> None:
    """Rasa's and the action server's exposure is the conversation-security work's; here: the
    webhook endpoints refuse other methods (405) and other content types (415), and the gateway
    listens on KOPA_GATEWAY_HOST:KOPA_GATEWAY_PORT (the processes were started without --host
    or --port)."""
    gateway = rig.gateways[0]
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        answer = httpx.request(method, f"{gateway.url}/telegram/webhook")
        assert answer.status_code == 405, method
    for method in ("PUT", "DELETE", "PATCH"):
        assert httpx.request(method, f"{gateway.url}/whatsapp/webhook").status_code == 405, method

    chat = _new_chat()
    body = json.dumps({"update_id": chat, **text_update(chat, "hello")})
    secret = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        answer = httpx.post(
            f"{gateway.url}/telegram/webhook",
            content=body,
            headers={**secret, "Content-Type": kind},
        )
        assert answer.status_code == 415, kind
    raw = wa_body(_new_wa(), "hello", f"wamid.p8-{chat}")
    form = httpx.post(
        f"{gateway.url}/whatsapp/webhook",
        content=raw,
        headers={"X-Hub-Signature-256": sign(raw, WA_APP_SECRET), "Content-Type": "text/plain"},
    )
    assert form.status_code == 415
    assert rig.inbox(f"tg:{chat}") == []

    assert gateway.settings.gateway_host == "127.0.0.1"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=2):
        pass
    assert httpx.get(f"{gateway.url}/health").json()["status"] == "ok"
