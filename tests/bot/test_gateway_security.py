"""What reaches the conversation, and what never does: secrets, signatures, forged contacts,
replays and bodies no provider would send."""

from __future__ import annotations

import json
import time

from bot.channels.whatsapp import signature_ok
from bot.fakes.telegram import callback_update, contact_update, text_update
from bot.fakes.whatsapp import sign, text_payload
from i18n import render
from tests.bot.conftest import WA_APP_SECRET, WA_VERIFY, Gateway, wait_until

TRY_AGAIN_SW = render("common.try_again_shortly", "sw")
REFUSED_EN = render("channels.contact_not_yours", "en")


def _update(update_id: int, body: dict[str, object]) -> dict[str, object]:
    return {"update_id": update_id, **body}


def _settle() -> None:
    # Processing is asynchronous after the 200; give a wrongly accepted update time to show.
    time.sleep(0.5)


def test_telegram_text_reaches_the_conversation_and_the_borrower_hears_back(
    gateway: Gateway,
) -> None:
    response = gateway.telegram_post(
        _update(1, text_update(501, "salio langu", language_code="sw"))
    )

    assert response.status_code == 200
    wait_until(lambda: gateway.telegram.sent_texts(501))
    # Rasa is down in this test: the borrower is told to try again, in their language.
    assert gateway.telegram.sent_texts(501) == [TRY_AGAIN_SW]
    [inbound] = gateway.conversation.seen
    assert (inbound.sender, inbound.text, inbound.proven_phone) == ("501", "salio langu", None)


def test_telegram_missing_secret_is_401_and_nothing_is_processed(gateway: Gateway) -> None:
    response = gateway.telegram_post(_update(2, text_update(502, "hello")), secret=None)

    assert response.status_code == 401
    _settle()
    assert gateway.conversation.seen == []
    assert gateway.telegram.sent_texts() == []


def test_telegram_wrong_secret_is_403_and_nothing_is_processed(gateway: Gateway) -> None:
    response = gateway.telegram_post(_update(3, text_update(503, "hello")), secret="not-the-secret")

    assert response.status_code == 403
    _settle()
    assert gateway.conversation.seen == []
    assert gateway.telegram.sent_texts() == []


def test_own_contact_proves_the_phone(gateway: Gateway) -> None:
    update = contact_update(504, "254712345678", contact_user_id=504)

    assert gateway.telegram_post(_update(4, update)).status_code == 200

    [inbound] = wait_until(lambda: gateway.conversation.seen)
    assert inbound.proven_phone == "+254712345678"
    assert inbound.sender == "504"


def test_someone_elses_contact_is_refused_and_never_reaches_rasa(gateway: Gateway) -> None:
    update = contact_update(505, "+254799999999", contact_user_id=999)

    assert gateway.telegram_post(_update(5, update)).status_code == 200

    wait_until(lambda: gateway.telegram.sent_texts(505))
    assert gateway.telegram.sent_texts(505) == [REFUSED_EN]
    _settle()
    assert gateway.conversation.seen == []


def test_a_contact_card_without_user_id_is_refused(gateway: Gateway) -> None:
    update = contact_update(506, "+254788888888", contact_user_id=None)

    assert gateway.telegram_post(_update(6, update)).status_code == 200

    wait_until(lambda: gateway.telegram.sent_texts(506))
    assert gateway.telegram.sent_texts(506) == [REFUSED_EN]
    assert gateway.conversation.seen == []


def test_a_phone_number_typed_as_text_proves_nothing(gateway: Gateway) -> None:
    assert gateway.telegram_post(_update(7, text_update(507, "+254712345678"))).status_code == 200

    [inbound] = wait_until(lambda: gateway.conversation.seen)
    assert inbound.text == "+254712345678"
    assert inbound.proven_phone is None


def test_a_replayed_telegram_update_is_processed_once(gateway: Gateway) -> None:
    update = _update(8, text_update(508, "balance"))

    first = gateway.telegram_post(update)
    second = gateway.telegram_post(update)

    assert (first.status_code, second.status_code) == (200, 200)
    wait_until(lambda: gateway.telegram.sent_texts(508))
    _settle()
    assert len(gateway.conversation.seen) == 1
    assert len(gateway.telegram.sent_texts(508)) == 1


def test_a_borrower_pressing_a_forged_case_button_is_refused_without_rasa(gateway: Gateway) -> None:
    update = _update(9, callback_update(509, "case:ack:H-0001"))

    assert gateway.telegram_post(update).status_code == 200

    wait_until(lambda: gateway.telegram.sent_texts(509))
    # The loan API is unreachable here, so the officer lookup fails: the presser is told to
    # try again, and the press never becomes a chat message.
    assert gateway.telegram.sent_texts(509) == [render("common.try_again_shortly", "en")]
    assert gateway.telegram.state.query("answerCallbackQuery", None)
    assert gateway.conversation.seen == []


def test_oversized_and_malformed_telegram_bodies_are_4xx(gateway: Gateway) -> None:
    huge = json.dumps(_update(10, text_update(510, "x" * 1_100_000))).encode()

    assert gateway.telegram_post(huge).status_code == 413
    assert gateway.telegram_post(b"{not json").status_code == 400
    assert gateway.telegram_post(b"[1, 2]").status_code == 400
    assert gateway.telegram_post({"no_update_id": True}).status_code == 400
    assert (
        gateway.telegram_post({"update_id": 11, "message": {"chat": "nonsense"}}).status_code == 400
    )
    _settle()
    assert gateway.conversation.seen == []
    assert gateway.client.get("/health").json()["status"] == "ok"


# -- WhatsApp ------------------------------------------------------------------------------


def _wa_post(gateway: Gateway, body: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return gateway.client.post("/whatsapp/webhook", content=body, headers=headers).status_code


def test_signed_whatsapp_message_is_processed_with_the_sender_as_proven_phone(
    gateway: Gateway,
) -> None:
    body = json.dumps(text_payload("254711000001", "Habari, salio?")).encode()

    assert _wa_post(gateway, body, sign(body, WA_APP_SECRET)) == 200

    [inbound] = wait_until(lambda: gateway.conversation.seen)
    assert inbound.proven_phone == "+254711000001"
    wait_until(lambda: gateway.whatsapp.sent_texts("254711000001"))


def test_whatsapp_missing_signature_is_401(gateway: Gateway) -> None:
    body = json.dumps(text_payload("254711000002", "hello")).encode()

    assert _wa_post(gateway, body, None) == 401
    _settle()
    assert gateway.conversation.seen == []


def test_whatsapp_bad_signature_is_403(gateway: Gateway) -> None:
    body = json.dumps(text_payload("254711000003", "hello")).encode()

    assert _wa_post(gateway, body, sign(body, "someone-elses-secret")) == 403
    assert _wa_post(gateway, body, "sha256=" + "0" * 64) == 403
    _settle()
    assert gateway.conversation.seen == []


def test_a_signature_over_reserialized_json_does_not_verify(gateway: Gateway) -> None:
    # Meta escapes non-ASCII; a body parsed and dumped again has other bytes, so an HMAC over
    # the re-serialised JSON must not be accepted for the raw body.
    raw = json.dumps(text_payload("254711000004", "Asante sana 🙏 é"), ensure_ascii=True).encode()
    reserialized = json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")).encode()
    assert raw != reserialized

    assert _wa_post(gateway, raw, sign(reserialized, WA_APP_SECRET)) == 403
    assert _wa_post(gateway, raw, sign(raw, WA_APP_SECRET)) == 200


def test_meta_signed_body_verifies_with_pywa_golden_vector() -> None:
    # A genuine Meta-signed body from pywa's test suite (the app secret has since been reset).
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{'
        b'"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":'
        b'"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":'
        b'"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":'
        b'"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA",'
        b'"timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}'
        b']},"field":"messages"}]}]}'
    )
    header = "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441"

    assert signature_ok(body, header, "1222e786b144d0e85b9f365372d93676")
    assert not signature_ok(body + b" ", header, "1222e786b144d0e85b9f365372d93676")


def test_a_replayed_whatsapp_message_is_processed_once(gateway: Gateway) -> None:
    body = json.dumps(text_payload("254711000005", "hi", message_id="wamid.replay1")).encode()
    signature = sign(body, WA_APP_SECRET)

    assert [_wa_post(gateway, body, signature) for _ in range(3)] == [200, 200, 200]

    wait_until(lambda: gateway.whatsapp.sent_texts("254711000005"))
    _settle()
    assert len(gateway.conversation.seen) == 1
    assert len(gateway.whatsapp.sent_texts("254711000005")) == 1


def test_oversized_and_malformed_whatsapp_bodies_are_4xx(gateway: Gateway) -> None:
    huge = b'{"object":"' + b"x" * 1_100_000 + b'"}'
    not_json = b"{nope"
    wrong_shape = json.dumps({"object": "page", "entry": []}).encode()

    assert _wa_post(gateway, huge, sign(huge, WA_APP_SECRET)) == 413
    assert _wa_post(gateway, not_json, sign(not_json, WA_APP_SECRET)) == 400
    assert _wa_post(gateway, wrong_shape, sign(wrong_shape, WA_APP_SECRET)) == 400


def test_whatsapp_verification_handshake_needs_the_verify_token(gateway: Gateway) -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": WA_VERIFY, "hub.challenge": "8765"}

    answer = gateway.client.get("/whatsapp/webhook", params=good)
    assert (answer.status_code, answer.text) == (200, "8765")
    wrong = gateway.client.get("/whatsapp/webhook", params={**good, "hub.verify_token": "guess"})
    assert wrong.status_code == 403
    missing = gateway.client.get("/whatsapp/webhook", params={"hub.challenge": "8765"})
    assert missing.status_code == 403
