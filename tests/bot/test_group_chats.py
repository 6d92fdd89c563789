"""Account questions are answered in private chats only (issue 14, defect 2).

Real Telegram updates of a group, a supergroup and a channel go through python-telegram-bot and
the gateway to the fake Bot API: nothing reaches the conversation (so Rasa never starts a
verification), and the only thing the chat ever receives is one generic "message me privately"
line, never a reply meant for one person.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.fakes.telegram import BOT_USER, user
from i18n import render
from tests.bot.conftest import Gateway, wait_until

GROUP_ID = -100_200_300
SUPERGROUP_ID = -1_001_234_567_890
CHANNEL_ID = -1_009_876_543_210
MEMBER = 8_800_001


def _chat(chat_id: int, kind: str) -> dict[str, Any]:
    return {"id": chat_id, "type": kind, "title": "Savings group"}


def _message(chat: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"message_id": 41, "date": int(time.time()), "chat": chat, **fields}


def _settle() -> None:
    # Processing follows the 200; give a wrongly forwarded update time to show.
    time.sleep(0.5)


@pytest.mark.parametrize(
    ("chat_id", "kind", "locale"),
    [
        (GROUP_ID, "group", "en"),
        (SUPERGROUP_ID, "supergroup", "fr"),
        (GROUP_ID, "group", "es"),
        (SUPERGROUP_ID, "supergroup", "sw"),
    ],
)
def test_an_account_question_in_a_group_gets_one_generic_line_and_never_reaches_rasa(
    gateway: Gateway, chat_id: int, kind: str, locale: str
) -> None:
    sender = user(MEMBER, "Amina", locale)
    update = {
        "update_id": 9001,
        "message": _message(_chat(chat_id, kind), **{"from": sender, "text": "what is my balance"}),
    }

    assert gateway.telegram_post(update).status_code == 200

    wait_until(lambda: gateway.telegram.sent_texts(chat_id))
    _settle()
    assert gateway.telegram.sent_texts(chat_id) == [render("channels.private_only", locale)]
    assert gateway.telegram.sent_texts(MEMBER) == []
    assert gateway.conversation.seen == []


def test_a_contact_shared_in_a_group_starts_no_verification(gateway: Gateway) -> None:
    sender = user(MEMBER, "Amina", "en")
    contact = {"phone_number": "+254712345678", "first_name": "Amina", "user_id": MEMBER}
    update = {
        "update_id": 9002,
        "message": _message(_chat(GROUP_ID, "group"), **{"from": sender, "contact": contact}),
    }

    assert gateway.telegram_post(update).status_code == 200

    wait_until(lambda: gateway.telegram.sent_texts(GROUP_ID))
    _settle()
    assert gateway.telegram.sent_texts(GROUP_ID) == [render("channels.private_only", "en")]
    assert gateway.conversation.seen == []


def test_a_button_pressed_in_a_supergroup_is_not_forwarded(gateway: Gateway) -> None:
    update = {
        "update_id": 9003,
        "callback_query": {
            "id": "cq-group-1",
            "from": user(MEMBER, "Amina", "fr"),
            "chat_instance": "group-instance",
            "data": "/ask_balance",
            "message": _message(
                _chat(SUPERGROUP_ID, "supergroup"), **{"from": BOT_USER, "text": "…"}
            ),
        },
    }

    assert gateway.telegram_post(update).status_code == 200

    wait_until(lambda: gateway.telegram.sent_texts(SUPERGROUP_ID))
    _settle()
    assert gateway.telegram.sent_texts(SUPERGROUP_ID) == [render("channels.private_only", "fr")]
    assert gateway.telegram.sent_texts(MEMBER) == []
    assert gateway.conversation.seen == []


@pytest.mark.parametrize("field", ["channel_post", "message"])
def test_a_channel_post_gets_nothing_and_never_reaches_rasa(gateway: Gateway, field: str) -> None:
    post = _message(_chat(CHANNEL_ID, "channel"), text="my loan balance please")
    post["sender_chat"] = _chat(CHANNEL_ID, "channel")

    assert gateway.telegram_post({"update_id": 9004, field: post}).status_code == 200

    _settle()
    # A line posted into a channel would reach every subscriber: the bot stays silent there.
    assert gateway.telegram.sent_texts() == []
    assert gateway.conversation.seen == []
