"""Inbound de-duplication stores, Telegram polling mode, and what the gateway logs."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import pytest

from bot.app import RedactSecrets
from bot.dedupe import MemoryDeduper, RedisDeduper
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram, text_update
from bot.fakes.whatsapp import FakeWhatsApp
from i18n import render
from tests.bot.conftest import TG_TOKEN, Gateway, start_gateway, wait_until


async def test_memory_deduper_claims_once_and_forgets_after_the_ttl() -> None:
    dedupe = MemoryDeduper(ttl_seconds=0.2)

    assert await dedupe.first_time("tg:1") is True
    assert await dedupe.first_time("tg:1") is False
    assert await dedupe.first_time("tg:2") is True
    await asyncio.sleep(0.25)
    assert await dedupe.first_time("tg:1") is True


@pytest.mark.redis
async def test_redis_deduper_lets_exactly_one_of_concurrent_claims_through() -> None:
    url = os.environ.get("KOPA_TEST_REDIS_URL")
    if not url:
        if os.environ.get("KOPA_REQUIRE_SERVICES") == "1":
            pytest.fail("KOPA_TEST_REDIS_URL is not set")
        pytest.skip("KOPA_TEST_REDIS_URL is not set")
    dedupe = RedisDeduper(url, ttl_seconds=60, prefix=f"test:dedupe:{uuid.uuid4().hex}:")
    try:
        claims = await asyncio.gather(*(dedupe.first_time("wa:wamid.same") for _ in range(20)))
    finally:
        await dedupe.aclose()

    assert sorted(claims) == [False] * 19 + [True]


def test_polling_mode_answers_updates_fetched_with_get_updates(
    fake_telegram: tuple[FakeTelegram, ServerThread],
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
) -> None:
    fake, _server = fake_telegram
    server, gateway = start_gateway(fake_telegram, fake_whatsapp, telegram_polling=True)
    try:
        asyncio.run(fake.deliver(text_update(4401, "bonjour", language_code="fr")))

        wait_until(lambda: fake.sent_texts(4401))
    finally:
        gateway.client.close()
        server.stop()

    assert fake.sent_texts(4401) == [render("common.try_again_shortly", "fr")]
    assert fake.pending == []  # confirmed through the getUpdates offset
    assert [m.text for m in gateway.conversation.seen] == ["bonjour"]


def test_logs_carry_neither_the_token_nor_what_the_borrower_wrote(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactSecrets([TG_TOKEN]))
    secret_words = "my national id is 12345678 and I lost my job"

    gateway.telegram_post({"update_id": 77, **text_update(4402, secret_words)})
    wait_until(lambda: gateway.telegram.sent_texts(4402))

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert TG_TOKEN not in logged
    assert "12345678" not in logged
    assert "lost my job" not in logged
