"""Webhook hygiene (P-8, B-5): only JSON POSTs, and bodies no provider sends are 4xx, not 500."""

from __future__ import annotations

import json

import pytest

from bot.fakes.telegram import text_update
from bot.fakes.whatsapp import sign
from tests.bot.conftest import TG_SECRET, WA_APP_SECRET, Gateway

SECRET = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}


def test_webhooks_refuse_other_methods_and_content_types(gateway: Gateway) -> None:
    for method in ("GET", "PUT", "DELETE"):
        assert gateway.client.request(method, "/telegram/webhook").status_code == 405
    assert gateway.client.request("PUT", "/whatsapp/webhook").status_code == 405
    body = json.dumps({"update_id": 31, **text_update(3101, "hello")})
    for kind in ("text/plain", "application/x-www-form-urlencoded"):
        answer = gateway.client.post(
            "/telegram/webhook", content=body, headers={**SECRET, "Content-Type": kind}
        )
        assert answer.status_code == 415, kind
    raw = body.encode()
    answer = gateway.client.post(
        "/whatsapp/webhook",
        content=raw,
        headers={"X-Hub-Signature-256": sign(raw, WA_APP_SECRET), "Content-Type": "text/plain"},
    )
    assert answer.status_code == 415
    assert gateway.conversation.seen == []


@pytest.mark.parametrize("depth", [50_000, 200_000])
def test_deeply_nested_json_is_a_400(gateway: Gateway, depth: int) -> None:
    nested = ("[" * depth + "]" * depth).encode()
    headers = {**SECRET, "Content-Type": "application/json"}
    assert (
        gateway.client.post("/telegram/webhook", content=nested, headers=headers).status_code == 400
    )
    signed = {
        "X-Hub-Signature-256": sign(nested, WA_APP_SECRET),
        "Content-Type": "application/json",
    }
    assert (
        gateway.client.post("/whatsapp/webhook", content=nested, headers=signed).status_code == 400
    )
    assert gateway.client.get("/health").status_code == 200
