"""Rasa payloads → channel messages: keys rendered in the payload's language, never raw text."""

from __future__ import annotations

from bot.conversation import sender_id
from bot.render import render_reply
from i18n import format_money, render


def test_payload_renders_in_its_language_with_lines_and_buttons() -> None:
    reply = {
        "custom": {
            "key": "conv.schedule_header",
            "args": {"reference": "KP-1"},
            "locale": "fr",
            "lines": [
                {"key": "conv.payment_line",
                 "args": {"date": {"$date": "2026-12-04"}, "amount": {"$money": ["1500", "XOF"]}}},
            ],
            "buttons": [{"key": "conv.button.yes", "payload": "/affirm"}],
        }
    }  # fmt: skip
    message = render_reply(reply, channel="whatsapp", recipient="2547", fallback_locale="en")
    assert message is not None
    header, line = message.text.split("\n")
    assert header == "Échéancier du prêt KP-1 :"
    assert line == f"vendredi 4 décembre 2026 : {format_money('1500', 'XOF', 'fr')}"
    assert "1\u202f500" in line
    assert [(b.title, b.payload) for b in message.buttons] == [("Oui", "/affirm")]


def test_unset_language_slot_falls_back_to_the_channel_hint() -> None:
    reply = {"custom": {"key": "conv.greet", "locale": "None"}}
    message = render_reply(reply, channel="telegram", recipient="1", fallback_locale="sw")
    assert message is not None
    assert message.text == render("conv.greet", "sw")


def test_contact_request_carries_a_translated_button_title() -> None:
    reply = {
        "custom": {"key": "conv.verify.share_contact", "locale": "es", "request_contact": True}
    }
    message = render_reply(reply, channel="telegram", recipient="1", fallback_locale="en")
    assert message is not None and message.request_contact
    assert message.contact_button_title == "Compartir mi número"


def test_plain_text_and_unknown_keys_never_reach_a_borrower() -> None:
    for reply in ({"text": "Hello from a hard-coded response"}, {"custom": {"key": "nope"}}):
        assert render_reply(reply, channel="telegram", recipient="1", fallback_locale="en") is None


def test_sender_ids_are_namespaced_by_channel() -> None:
    assert sender_id("telegram", "42") == "tg:42"
    assert sender_id("whatsapp", "254700000001") == "wa:254700000001"
    assert sender_id("terminal", "254700000001") == "cli:254700000001"
