"""Idempotency keys come from the channel's message id, so a redelivered webhook is one request.

Rasa stamps each delivery of a message with a new event time: keys built from it made a
duplicated webhook open a second case. The gateway's ``message_id`` (metadata) is the same on
every delivery.
"""

from __future__ import annotations

import httpx
from rasa_sdk.executor import CollectingDispatcher

from actions.cases import ActionRequestOfficer
from actions.loan_api import request_key
from i18n import render
from tests.actions.helpers_actions import FakeLoanApi, keys, make_tracker, payloads

USER = r"/v1/identities/telegram/4242"
CASE = {
    "reference": "OR-22222",
    "kind": "officer_request",
    "status": "open",
    "officer_name": "Grace Otieno",
    "sla_due_at": "2026-12-02T09:00:00+03:00",
}


def _delivery(message_id: str | None, timestamp: float) -> object:
    tracker = make_tracker(
        intent="request_officer", metadata={"message_id": message_id} if message_id else {}
    )
    tracker.events[-1]["timestamp"] = timestamp
    return tracker


def test_two_deliveries_of_one_message_share_a_key_and_another_message_does_not() -> None:
    first = _delivery("tg:4242:77", 1764400000.5)
    redelivered = _delivery("tg:4242:77", 1764400003.9)  # Rasa's new event time
    later = _delivery("tg:4242:78", 1764400003.9)
    assert request_key(first, "officer") == request_key(redelivered, "officer")  # type: ignore[arg-type]
    assert request_key(first, "officer") != request_key(later, "officer")  # type: ignore[arg-type]
    assert request_key(first, "officer") != request_key(first, "complaint")  # type: ignore[arg-type]
    # Without a channel message id (the terminal chat) the event time stands in.
    assert request_key(_delivery(None, 1.0), "officer") != request_key(  # type: ignore[arg-type]
        _delivery(None, 2.0),
        "officer",  # type: ignore[arg-type]
    )


async def _ask_officer(tracker: object) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    await ActionRequestOfficer().run(dispatcher, tracker, {})  # type: ignore[arg-type]
    return dispatcher


async def test_a_redelivered_request_sends_the_same_key_and_hears_it_is_with_the_officer(
    fake_api: FakeLoanApi,
) -> None:
    answers = iter(
        [(201, {**CASE, "disposition": "opened"}), (200, {**CASE, "disposition": "added"})]
    )

    def route(_request: httpx.Request, _match: object) -> httpx.Response:
        status, body = next(answers)
        return httpx.Response(status, json=body)

    fake_api.on("GET", USER, (200, {"status": "verified", "locale": "en"}))
    fake_api.on("POST", USER + "/cases", route)
    first = await _ask_officer(_delivery("tg:4242:77", 1764400000.5))
    second = await _ask_officer(_delivery("tg:4242:77", 1764400009.0))
    sent = [r.headers["Idempotency-Key"] for r in fake_api.requests if r.method == "POST"]
    assert len(sent) == 2 and sent[0] == sent[1]
    assert keys(first) == ["conv.officer.opened"]
    assert keys(second) == ["conv.case.already_with_officer"]
    (payload,) = payloads(second)
    for locale in ("en", "fr", "es", "sw"):
        text = render(payload["key"], locale, **payload["args"])
        assert "OR-22222" in text and "Grace Otieno" in text
