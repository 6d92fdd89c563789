"""The gateways against the fake providers: wire formats through real PTB and our WhatsApp
client, and the outcome each injected fault is classified as."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr
from telegram.error import NetworkError

from bot.channels import telegram
from bot.channels.base import Button, OutboundMessage, SendOutcome, Template
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.config import TelegramSettings, WhatsAppSettings
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp
from tests.bot.conftest import TG_TOKEN, WA_TOKEN, closed_port_url

CHAT = "777001"
WA_ID = "254722000001"


def telegram_gateway(base_url: str, read_timeout: float = 2.0) -> TelegramGateway:
    settings = TelegramSettings(
        token=SecretStr(TG_TOKEN), api_base_url=f"{base_url}/bot", read_timeout=read_timeout
    )
    return TelegramGateway(settings)


def whatsapp_gateway(base_url: str, read_timeout: float = 2.0) -> WhatsAppGateway:
    settings = WhatsAppSettings(
        token=SecretStr(WA_TOKEN), graph_base_url=base_url, read_timeout=read_timeout
    )
    return WhatsAppGateway(settings)


def fault(server: ServerThread, **spec: object) -> None:
    httpx.post(f"{server.url}/_fake/faults", json=spec).raise_for_status()


# -- Telegram ------------------------------------------------------------------------------


async def test_telegram_buttons_become_an_inline_keyboard(
    fake_telegram: tuple[FakeTelegram, ServerThread],
) -> None:
    fake, server = fake_telegram
    gateway = telegram_gateway(server.url)
    await gateway.start(receive=False)
    try:
        result = await gateway.send(
            OutboundMessage(
                channel="telegram",
                recipient=CHAT,
                text="Choose",
                buttons=(Button("Yes", "/affirm"), Button("No", "/deny")),
            )
        )
    finally:
        await gateway.aclose()

    assert result.outcome == SendOutcome.sent
    assert result.provider_message_id == "1"
    [sent] = fake.state.query("sendMessage", CHAT)
    assert sent["payload"]["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "/affirm"}],
            [{"text": "No", "callback_data": "/deny"}],
        ]
    }


async def test_telegram_contact_request_is_a_one_time_reply_keyboard(
    fake_telegram: tuple[FakeTelegram, ServerThread],
) -> None:
    fake, server = fake_telegram
    gateway = telegram_gateway(server.url)
    await gateway.start(receive=False)
    try:
        await gateway.send(
            OutboundMessage(
                channel="telegram",
                recipient=CHAT,
                text="Share your number",
                request_contact=True,
                contact_button_title="Share my phone number",
            )
        )
    finally:
        await gateway.aclose()

    markup = fake.state.query("sendMessage", CHAT)[0]["payload"]["reply_markup"]
    assert markup["keyboard"] == [[{"text": "Share my phone number", "request_contact": True}]]
    assert markup["one_time_keyboard"] is True


async def test_telegram_long_text_is_split_under_4096_with_buttons_on_the_last_piece(
    fake_telegram: tuple[FakeTelegram, ServerThread],
) -> None:
    fake, server = fake_telegram
    paragraph = ("Installment due on Friday. " * 30).strip()
    text = "\n\n".join([paragraph] * 12)  # about 9,800 characters
    gateway = telegram_gateway(server.url)
    await gateway.start(receive=False)
    try:
        result = await gateway.send(
            OutboundMessage(
                channel="telegram", recipient=CHAT, text=text, buttons=(Button("OK", "/affirm"),)
            )
        )
    finally:
        await gateway.aclose()

    sent = fake.state.query("sendMessage", CHAT)
    assert result.outcome == SendOutcome.sent
    assert len(sent) == 3
    assert all(len(s["payload"]["text"]) <= 4096 for s in sent)
    assert [("reply_markup" in s["payload"]) for s in sent] == [False, False, True]
    assert " ".join(s["payload"]["text"] for s in sent).split() == text.split()


@pytest.mark.parametrize(
    ("spec", "outcome", "retry_after"),
    [
        ({"kind": "rate_limit", "retry_after": 7}, SendOutcome.rate_limited, 7.0),
        ({"kind": "server_error", "status": 502}, SendOutcome.retryable, None),
        ({"kind": "server_error", "status": 500}, SendOutcome.retryable, None),
        ({"kind": "blocked"}, SendOutcome.blocked, None),
        ({"kind": "deactivated"}, SendOutcome.blocked, None),
        # Only a blocked or deactivated user opts out: anything else is the bot's problem.
        ({"kind": "kicked"}, SendOutcome.channel_error, None),
        ({"kind": "chat_not_found"}, SendOutcome.channel_error, None),
        ({"kind": "invalid_token"}, SendOutcome.channel_error, None),
        ({"kind": "timeout", "delay": 2.0}, SendOutcome.unknown, None),
    ],
)
async def test_telegram_faults_are_classified(
    fake_telegram: tuple[FakeTelegram, ServerThread],
    spec: dict[str, object],
    outcome: SendOutcome,
    retry_after: float | None,
) -> None:
    fake, server = fake_telegram
    fault(server, recipient=CHAT, times=1, **spec)
    gateway = telegram_gateway(server.url, read_timeout=0.5)
    await gateway.start(receive=False)
    try:
        result = await gateway.send(OutboundMessage("telegram", CHAT, "Reminder"))
        again = await gateway.send(OutboundMessage("telegram", CHAT, "Reminder"))
    finally:
        await gateway.aclose()

    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    # The fault was for one request only: the next one goes through.
    assert again.outcome == SendOutcome.sent
    if outcome == SendOutcome.unknown:
        # Timed out after the request left: the fake did deliver it, hence "never resend".
        assert fake.sent_texts(CHAT) == ["Reminder", "Reminder"]


async def test_telegram_unreachable_is_retryable() -> None:
    gateway = telegram_gateway(closed_port_url())
    gateway.application.bot._initialized = True  # no getMe: the server is down on purpose
    result = await gateway.send(OutboundMessage("telegram", CHAT, "Reminder"))

    assert result.outcome == SendOutcome.retryable


async def test_telegram_start_waits_for_a_bot_api_that_is_still_coming_up() -> None:
    """A sender started before the Bot API answers (the network, a proxy or a local Bot API
    server still starting; or a host so busy that getMe missed its timeout) keeps trying
    getMe instead of dying, and sends once it is up."""
    fake = FakeTelegram()
    server = ServerThread(fake.app)  # its port is bound but not listening: refused at once
    gateway = telegram_gateway(server.url)
    starting = asyncio.create_task(gateway.start(receive=False))
    await asyncio.sleep(1.0)
    assert not starting.done()
    await asyncio.to_thread(server.start)
    try:
        await asyncio.wait_for(starting, timeout=10)
        result = await gateway.send(OutboundMessage("telegram", CHAT, "Reminder"))
    finally:
        await gateway.aclose()
        server.stop()

    assert result.outcome == SendOutcome.sent
    assert [entry["method"] for entry in fake.state.sent] == ["getMe", "sendMessage"]


async def test_telegram_start_gives_up_on_a_bot_api_that_never_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(telegram, "START_RETRY_DELAYS", (0.1, 0.1))
    gateway = telegram_gateway(closed_port_url())
    with pytest.raises(NetworkError):
        await gateway.start(receive=False)
    await gateway.aclose()


async def test_telegram_fault_for_one_chat_leaves_others_alone(
    fake_telegram: tuple[FakeTelegram, ServerThread],
) -> None:
    _fake, server = fake_telegram
    fault(server, recipient="111", kind="blocked")
    gateway = telegram_gateway(server.url)
    await gateway.start(receive=False)
    try:
        blocked = await gateway.send(OutboundMessage("telegram", "111", "a"))
        other = await gateway.send(OutboundMessage("telegram", "222", "b"))
    finally:
        await gateway.aclose()

    assert (blocked.outcome, other.outcome) == (SendOutcome.blocked, SendOutcome.sent)
    assert "blocked by the user" in (blocked.error or "")


async def test_global_rate_limit_answers_429_beyond_the_configured_rate(
    fake_telegram: tuple[FakeTelegram, ServerThread],
) -> None:
    fake, server = fake_telegram
    fake.state.rate_limit_per_second = 5
    gateway = telegram_gateway(server.url)
    await gateway.start(receive=False)
    try:
        results = [
            await gateway.send(OutboundMessage("telegram", str(900 + i), "x")) for i in range(8)
        ]
    finally:
        await gateway.aclose()

    outcomes = [r.outcome for r in results]
    assert outcomes.count(SendOutcome.sent) == 5
    assert outcomes.count(SendOutcome.rate_limited) == 3


# -- WhatsApp ------------------------------------------------------------------------------


async def test_whatsapp_three_short_buttons_are_reply_buttons(
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
) -> None:
    fake, server = fake_whatsapp
    gateway = whatsapp_gateway(server.url)
    buttons = (Button("Oui", "/affirm"), Button("Non", "/deny"), Button("Agent", "/officer"))
    try:
        result = await gateway.send(OutboundMessage("whatsapp", WA_ID, "Confirmer ?", buttons))
    finally:
        await gateway.aclose()

    assert result.outcome == SendOutcome.sent
    assert (result.provider_message_id or "").startswith("wamid.")
    [payload] = fake.sent_messages(WA_ID)
    assert payload["interactive"]["type"] == "button"
    assert [b["reply"] for b in payload["interactive"]["action"]["buttons"]] == [
        {"id": "/affirm", "title": "Oui"},
        {"id": "/deny", "title": "Non"},
        {"id": "/officer", "title": "Agent"},
    ]


async def test_whatsapp_many_or_long_options_become_a_list(
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
) -> None:
    fake, server = fake_whatsapp
    gateway = whatsapp_gateway(server.url)
    buttons = tuple(
        Button(title, f"case:resolve:H-1:{name}")
        for title, name in [
            ("Close: plan agreed", "plan_agreed"),
            ("Close: payment holiday", "payment_holiday"),
            ("Close: restructure requested", "restructure_requested"),
            ("Close: no action needed", "no_action"),
        ]
    )
    try:
        result = await gateway.send(OutboundMessage("whatsapp", WA_ID, "Case H-1", buttons))
    finally:
        await gateway.aclose()

    assert result.outcome == SendOutcome.sent
    [payload] = fake.sent_messages(WA_ID)
    rows = payload["interactive"]["action"]["sections"][0]["rows"]
    assert payload["interactive"]["type"] == "list"
    assert [r["id"] for r in rows] == [b.payload for b in buttons]
    assert all(len(r["title"]) <= 24 for r in rows)
    assert rows[2]["description"] == "Close: restructure requested"


async def test_whatsapp_template_and_long_text(
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
) -> None:
    fake, server = fake_whatsapp
    gateway = whatsapp_gateway(server.url)
    try:
        template = await gateway.send(
            OutboundMessage(
                "whatsapp",
                WA_ID,
                "",
                template=Template("payment_reminder", "sw", ("Amina", "KES 1,500.00")),
            )
        )
        long_text = await gateway.send(OutboundMessage("whatsapp", WA_ID, "neno " * 2000))
    finally:
        await gateway.aclose()

    assert (template.outcome, long_text.outcome) == (SendOutcome.sent, SendOutcome.sent)
    first, *rest = fake.sent_messages(WA_ID)
    assert first["template"] == {
        "name": "payment_reminder",
        "language": {"code": "sw"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Amina"},
                    {"type": "text", "text": "KES 1,500.00"},
                ],
            }
        ],
    }
    assert len(rest) == 3
    assert all(len(p["text"]["body"]) <= 4096 for p in rest)


@pytest.mark.parametrize(
    ("spec", "outcome", "retry_after"),
    [
        ({"kind": "rate_limit", "retry_after": 4}, SendOutcome.rate_limited, 4.0),
        # One recipient's pair rate limit: that recipient backs off, not the channel.
        ({"kind": "pair_rate_limit"}, SendOutcome.recipient_rate_limited, 6.0),
        ({"kind": "outside_window"}, SendOutcome.outside_window, None),
        ({"kind": "undeliverable"}, SendOutcome.blocked, None),
        ({"kind": "blocked"}, SendOutcome.blocked, None),
        ({"kind": "stopped_marketing"}, SendOutcome.blocked, None),
        ({"kind": "invalid_token"}, SendOutcome.channel_error, None),
        ({"kind": "template_error"}, SendOutcome.channel_error, None),
        ({"kind": "unknown_code"}, SendOutcome.channel_error, None),
        ({"kind": "server_error", "status": 500}, SendOutcome.retryable, None),
        ({"kind": "timeout", "delay": 2.0}, SendOutcome.unknown, None),
    ],
)
async def test_whatsapp_faults_are_classified(
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
    spec: dict[str, object],
    outcome: SendOutcome,
    retry_after: float | None,
) -> None:
    _fake, server = fake_whatsapp
    fault(server, recipient=WA_ID, times=1, **spec)
    gateway = whatsapp_gateway(server.url, read_timeout=0.5)
    try:
        result = await gateway.send(OutboundMessage("whatsapp", WA_ID, "Kumbusho"))
        again = await gateway.send(OutboundMessage("whatsapp", WA_ID, "Kumbusho"))
    finally:
        await gateway.aclose()

    assert (result.outcome, result.retry_after) == (outcome, retry_after)
    assert again.outcome == SendOutcome.sent


async def test_whatsapp_unreachable_is_retryable() -> None:
    gateway = whatsapp_gateway(closed_port_url())
    try:
        result = await gateway.send(OutboundMessage("whatsapp", WA_ID, "x"))
    finally:
        await gateway.aclose()

    assert result.outcome == SendOutcome.retryable


def test_whatsapp_refuses_what_the_cloud_api_refuses(
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
) -> None:
    _fake, server = fake_whatsapp
    payload = {
        "messaging_product": "whatsapp",
        "to": WA_ID,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "x"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": str(i), "title": "t"}} for i in range(4)
                ]
            },
        },
    }
    response = httpx.post(
        f"{server.url}/v21.0/1/messages",
        json=payload,
        headers={"Authorization": f"Bearer {WA_TOKEN}"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 131009


def test_telegram_answers_are_parsed_like_ptb_without_logging_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The aiohttp transport parses answers with orjson: PTB's results (invalid UTF-8 replaced,
    an unreadable answer an error), but the answer, which may quote a borrower, is never logged."""
    from telegram.error import TelegramError

    from bot.channels.ptb_aiohttp import AiohttpRequest

    answer = b'{"ok": true, "result": {"message_id": 7, "text": "Habari Amina \\u00e9'
    parsed = AiohttpRequest.parse_json_payload(answer + b'\xff"}}')
    assert parsed == {"ok": True, "result": {"message_id": 7, "text": "Habari Amina é\ufffd"}}
    with pytest.raises(TelegramError, match="Invalid server response"):
        AiohttpRequest.parse_json_payload(b"<html>Amina owes 500</html>")
    assert "Amina" not in caplog.text
