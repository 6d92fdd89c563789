"""Reliability matrix rows of the gateway's inbound path (L-2, F-9, F-11), and the inbound
defects of issue 14 (per-chat order across processes, pseudonymous Rasa ids). Hostile input
(B-1 .. B-7, P-8) is in ``test_gateway_input.py``, P-1 in ``test_gateway_pii.py``, L-3 (L-2
during L-1's campaign) in ``test_gateway_with_campaign.py``.

They run on the session's production topology (``gateway_rig.py``: two Rasa replicas on a shared
SQL tracker store and Redis lock store, two gateway processes, the fake Bot API and WhatsApp
Cloud API).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.conversation import message_key
from bot.fakes.telegram import contact_update, text_update
from i18n import render
from tests.bot.conftest import wait_until
from tests.reliability.gateway_rig import (
    Rig,
    new_chat,
    new_wa,
    post_telegram,
    post_whatsapp,
    tg_text,
    wa_body,
)

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(1800)]

# -- issue 14, defect 8 (gateway part) ---------------------------------------------------------


def test_rasa_knows_the_chat_by_its_pseudonym_and_never_sees_the_phone(rig: Rig) -> None:
    """A shared contact starts verification with the phone the gateway registered with the
    API; Rasa's tracker holds neither the phone nor the Telegram id."""
    chat = new_chat()
    update = {"update_id": chat, **contact_update(chat, "254711223344", contact_user_id=chat)}

    assert post_telegram(rig.gateways[0].url, update).status_code == 200

    wait_until(lambda: rig.telegram.sent_texts(chat), timeout=60)
    asked = {
        render(f"conv.verify.{key}", "en") for key in ("ask_any", "ask_dob", "ask_national_id")
    }
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
    assert rig.user_events(f"tg:{chat}") == []  # nothing under the real id


# -- L-2 and issue 14, defect 4 ----------------------------------------------------------------


def test_L2_inbound_burst_keeps_per_chat_order_across_two_gateways(rig: Rig) -> None:
    """The row's size: 200 chats (100 Telegram, 100 WhatsApp) x 5 back-to-back messages, each
    posted to one of two gateway processes in turn, on two Rasa replicas. Per-chat order 100 %
    (Rasa's tracker of every chat holds its five messages in the order sent), no lost turn
    (every message answered, none with "try again"), no LockError in either replica's log, and
    no reply to a chat that did not write. The p95 reply time is ``bench/chat``'s (two shared
    cores make it a benchmark figure, not a test's)."""
    tg_chats = [new_chat() for _ in range(100)]
    wa_chats = [new_wa() for _ in range(100)]
    sent: dict[str, list[str]] = {}
    tg_before = len(rig.telegram.state.query("sendMessage", None))
    wa_before = len(rig.whatsapp.state.query("messages", None))
    keys: list[str] = []

    def burst_telegram(chat: int) -> None:
        sender = rig.conversation("telegram", chat)
        sent[sender] = [message_key(sender, str(n + 1)) for n in range(5)]
        for n in range(5):
            update = {
                "update_id": chat * 10 + n,
                **tg_text(chat, f"hello {chat} number {n}", n + 1),
            }
            keys.append(f"tg:{chat * 10 + n}")
            assert post_telegram(rig.gateways[n % 2].url, update).status_code == 200

    def burst_whatsapp(wa_id: str) -> None:
        sender = rig.conversation("whatsapp", wa_id)
        sent[sender] = [message_key(sender, f"wamid.l2-{wa_id}-{n}") for n in range(5)]
        for n in range(5):
            raw = wa_body(wa_id, f"hello {wa_id} number {n}", f"wamid.l2-{wa_id}-{n}")
            keys.append(f"wa:wamid.l2-{wa_id}-{n}")
            assert post_whatsapp(rig.gateways[n % 2].url, raw).status_code == 200

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(burst_telegram, tg_chats))
        list(pool.map(burst_whatsapp, wa_chats))

    def finished() -> bool:
        time.sleep(0.5)  # one query a poll, not fifty: the replicas need the cores
        return rig.inbox_finished(keys) == len(keys) == 1000

    wait_until(finished, timeout=900)
    try_again = render("common.try_again_shortly", "en")
    told_try_again = sum(try_again in rig.telegram.sent_texts(chat) for chat in tg_chats) + sum(
        try_again in rig.whatsapp.sent_texts(wa_id) for wa_id in wa_chats
    )
    seen = {sender: rig.user_message_ids(sender) for sender in sent}
    missing = [s for s, ids in sent.items() if not set(ids) <= set(seen[s])]
    repeated = [s for s in sent if len(seen[s]) != len(set(seen[s]))]
    out_of_order = [s for s, ids in sent.items() if [i for i in seen[s] if i in ids] != ids]
    assert (told_try_again, missing, repeated, out_of_order) == (0, [], [], []), (
        f"{told_try_again} chats told to try again; {len(missing)} trackers miss a message, "
        f"{len(repeated)} hold one twice, {len(out_of_order)} are out of order"
    )
    time.sleep(1.0)
    tg_sent = rig.telegram.state.query("sendMessage", None)[tg_before:]
    wa_sent = rig.whatsapp.state.query("messages", None)[wa_before:]
    # Every chat heard back once a message at least, and no reply went to a chat that did not
    # write in this burst.
    for chat in tg_chats:
        assert len(rig.telegram.sent_texts(chat)) >= 5
    for wa_id in wa_chats:
        assert len(rig.whatsapp.sent_texts(wa_id)) >= 5
    assert {e["recipient"] for e in tg_sent} == {str(c) for c in tg_chats}
    assert {e["recipient"] for e in wa_sent} == set(wa_chats)
    logs = "".join(path.read_text(errors="replace") for path in rig.log_dir.glob("rasa*.log"))
    assert "LockError" not in logs
    assert "number 0" not in logs  # no borrower's words in Rasa's log, even for a slow turn


# -- F-9, F-11 ----------------------------------------------------------------------------------


def test_F9_gateway_redis_down_answers_in_order_and_recovers_without_restart(rig: Rig) -> None:
    """The gateway's Redis (dedupe) cut at the TCP level: each message is still stored (the
    inbox's unique key decides), answered once, in order, and the outage is logged rather than
    silent; Redis back, the same gateways use it again without a restart. Nothing in the
    gateway needs Redis to answer, so the borrower gets the real answer, not "try again later"
    (that answer, in the borrower's language, is what a Rasa or API outage gives:
    ``tests/bot/test_gateway_security.py``)."""
    wa_id = new_wa()
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
        wait_until(lambda: len(rig.user_message_ids(sender)) >= 3, timeout=120)
    finally:
        rig.redis.restore()
    time.sleep(1.0)
    ids = [message_key(sender, f"wamid.f9-{wa_id}-{n}") for n in range(3)]
    assert rig.user_message_ids(sender) == ids
    logs = "".join(g.log_path.read_text(errors="replace") for g in rig.gateways)
    assert "dedupe store unavailable" in logs

    after = f"hello after the outage {wa_id}"
    raw = wa_body(wa_id, after, f"wamid.f9-{wa_id}-after")
    assert post_whatsapp(rig.gateways[0].url, raw).status_code == 200
    wait_until(lambda: len(rig.user_message_ids(sender)) == 4, timeout=60)
    assert rig.user_message_ids(sender) == [*ids, message_key(sender, f"wamid.f9-{wa_id}-after")]


def test_F11_the_same_webhook_delivered_twice_at_once_is_processed_once(rig: Rig) -> None:
    """The same Telegram update and the same WhatsApp message, each POSTed to both gateway
    processes at the same moment: every delivery gets a 2xx, one inbox row each, Rasa sees
    each text once and each chat gets one answer."""
    chat, wa_id = new_chat(), new_wa()
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
    wait_until(lambda: rig.user_events(tg_sender) and rig.user_events(wa_sender), timeout=60)
    wait_until(lambda: rig.telegram.sent_texts(chat) and rig.whatsapp.sent_texts(wa_id))
    time.sleep(2.0)
    assert len(rig.user_events(tg_sender)) == 1
    assert rig.user_message_ids(wa_sender) == [message_key(wa_sender, f"wamid.f11-{wa_id}")]
    assert rig.inbox(f"tg:{chat}") == [(f"tg:{chat}", "done")]
    assert rig.inbox(f"wa:wamid.f11-{wa_id}") == [(f"wa:wamid.f11-{wa_id}", "done")]
    first_tg, first_wa = len(rig.telegram.sent_texts(chat)), len(rig.whatsapp.sent_texts(wa_id))
    assert (first_tg, first_wa) == (1, 1)
