"""Form validators and form-closing actions against a fake loan API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.cases import ActionOpenHardshipCase, ActionStartHardship
from actions.forms import (
    DIGRESSIONS,
    ValidateHardshipForm,
    ValidatePromiseForm,
    relief_from_text,
)
from actions.preferences import ActionChangeLanguage, ActionOptOut
from actions.promises import ActionRecordPromise, ActionStartPromise
from tests.actions.helpers_actions import FakeLoanApi, keys, make_tracker, payloads
from tests.api.factories import today

USER = r"/v1/identities/telegram/4242"
PROMISE_SLOTS = {
    "promise_outstanding": "12000.00",
    "promise_due_now": "3000.00",
    "promise_currency": "KES",
    "promise_loan_id": "7",
    "promise_started_at": "1764400000.5",
}
DOMAIN: dict[str, Any] = {"forms": {}}


def slots(events: list[Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def validate(form: Any, tracker: Any) -> tuple[CollectingDispatcher, dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await form.run(
        dispatcher,
        tracker,
        {"forms": {form.form_name(): {"required_slots": REQUIRED[form.form_name()]}}},
    )
    return dispatcher, slots(events)


REQUIRED = {
    "promise_form": ["promise_amount", "promise_date", "promise_confirmed"],
    "hardship_form": ["hardship_reason", "hardship_relief"],
}


def promise_tracker(text: str, requested: str, **extra: Any) -> Any:
    return make_tracker(
        text=text,
        intent=extra.pop("intent", "inform"),
        slots={**PROMISE_SLOTS, "requested_slot": requested, **extra},
        active_loop="promise_form",
    )


async def test_amount_and_date_in_one_answer_are_both_taken(fake_api: FakeLoanApi) -> None:
    dispatcher, result = await validate(
        ValidatePromiseForm(), promise_tracker("1500 next friday", "promise_amount")
    )
    assert result["promise_amount"] == "1500.00"
    assert result["promise_date"] > today().isoformat()
    assert dispatcher.messages == []


async def test_a_date_in_the_amount_answer_replaces_one_carried_from_earlier(
    fake_api: FakeLoanApi,
) -> None:
    carried = (today() + timedelta(days=1)).isoformat()
    tracker = promise_tracker("1500 in 5 days", "promise_amount", promise_date=carried)
    dispatcher, result = await validate(ValidatePromiseForm(), tracker)
    assert result["promise_amount"] == "1500.00"
    assert result["promise_date"] == (today() + timedelta(days=5)).isoformat()
    assert dispatcher.messages == []


async def test_an_amount_answer_without_a_date_keeps_the_carried_date(
    fake_api: FakeLoanApi,
) -> None:
    carried = (today() + timedelta(days=1)).isoformat()
    tracker = promise_tracker("1500", "promise_amount", promise_date=carried)
    _, result = await validate(ValidatePromiseForm(), tracker)
    assert result["promise_amount"] == "1500.00"
    assert result.get("promise_date", carried) == carried


@pytest.mark.parametrize(
    ("text", "locale", "expected"),
    [("half", "en", "1500.00"), ("la moitié", "fr", "1500.00"), ("nusu", "sw", "1500.00")],
)
async def test_half_is_half_of_what_is_due_now(
    fake_api: FakeLoanApi, text: str, locale: str, expected: str
) -> None:
    tracker = promise_tracker(text, "promise_amount", language=locale)
    _, result = await validate(ValidatePromiseForm(), tracker)
    assert result["promise_amount"] == expected


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("13000", "conv.promise.amount_above"),
        ("hmm not sure", "conv.promise.amount_unclear"),
    ],
)
async def test_bad_amounts_are_refused_with_a_reason(
    fake_api: FakeLoanApi, text: str, key: str
) -> None:
    dispatcher, result = await validate(
        ValidatePromiseForm(), promise_tracker(text, "promise_amount")
    )
    assert result["promise_amount"] is None
    assert keys(dispatcher) == [key]


async def test_dates_in_the_past_or_beyond_policy_are_refused(fake_api: FakeLoanApi) -> None:
    form = ValidatePromiseForm()
    past = (today() - timedelta(days=3)).strftime("%d/%m/%Y")
    dispatcher, result = await validate(
        form, promise_tracker(past, "promise_date", promise_amount="1500.00")
    )
    assert (result["promise_date"], keys(dispatcher)) == (None, ["conv.promise.date_past"])
    far = (today() + timedelta(days=90)).strftime("%d/%m/%Y")
    dispatcher, result = await validate(
        form, promise_tracker(far, "promise_date", promise_amount="1500.00")
    )
    assert result["promise_date"] is None
    (payload,) = payloads(dispatcher)
    assert payload["key"] == "conv.promise.date_too_far"
    assert payload["args"]["max_date"] == {"$date": (today() + timedelta(days=30)).isoformat()}


@pytest.mark.parametrize("intent", sorted(DIGRESSIONS))
async def test_a_digression_is_never_taken_as_an_answer(fake_api: FakeLoanApi, intent: str) -> None:
    tracker = promise_tracker("what is my balance 1500", "promise_amount", intent=intent)
    dispatcher, result = await validate(ValidatePromiseForm(), tracker)
    assert "promise_amount" not in result
    assert dispatcher.messages == []


async def test_promise_is_recorded_once_with_a_key_from_the_conversation(
    fake_api: FakeLoanApi,
) -> None:
    when = (today() + timedelta(days=5)).isoformat()
    fake_api.on(
        "POST",
        USER + "/promises",
        (
            201,
            {
                "promise_id": 1,
                "amount": "1500.00",
                "currency": "KES",
                "promised_date": when,
                "status": "pending",
            },
        ),
    )
    tracker = make_tracker(
        slots={
            **PROMISE_SLOTS,
            "promise_amount": "1500.00",
            "promise_date": when,
            "promise_confirmed": True,
        }
    )
    for _ in range(2):  # Rasa retrying the same turn
        dispatcher = CollectingDispatcher()
        events = await ActionRecordPromise().run(dispatcher, tracker, DOMAIN)
        assert keys(dispatcher) == ["conv.promise.recorded"]
    requests = [r for r in fake_api.requests if r.url.path.endswith("/promises")]
    assert len({r.headers["Idempotency-Key"] for r in requests}) == 1
    assert fake_api.bodies("POST", USER + "/promises")[0] == {
        "amount": "1500.00",
        "promised_date": when,
        "loan_id": "7",
    }
    assert slots(events)["promise_amount"] is None


async def test_declined_read_back_records_nothing(fake_api: FakeLoanApi) -> None:
    tracker = make_tracker(
        slots={
            **PROMISE_SLOTS,
            "promise_amount": "1500.00",
            "promise_date": "2026-12-04",
            "promise_confirmed": False,
        }
    )
    dispatcher = CollectingDispatcher()
    await ActionRecordPromise().run(dispatcher, tracker, DOMAIN)
    assert keys(dispatcher) == ["conv.promise.cancelled"]
    assert fake_api.requests == []


async def test_policy_refusal_from_the_api_reopens_the_form_at_the_date(
    fake_api: FakeLoanApi,
) -> None:
    fake_api.on(
        "POST",
        USER + "/promises",
        (422, {"code": "date_beyond_policy", "detail": "too far", "max_date": "2026-12-20"}),
    )
    tracker = make_tracker(
        slots={
            **PROMISE_SLOTS,
            "promise_amount": "1500.00",
            "promise_date": "2026-12-24",
            "promise_confirmed": True,
        }
    )
    dispatcher = CollectingDispatcher()
    events = await ActionRecordPromise().run(dispatcher, tracker, DOMAIN)
    (payload,) = payloads(dispatcher)
    assert payload["args"]["max_date"] == {"$date": "2026-12-20"}
    assert slots(events) == {"promise_date": None, "promise_confirmed": None}
    assert events[-1]["name"] == "promise_form"


async def test_start_promise_prefills_from_the_first_message(fake_api: FakeLoanApi) -> None:
    fake_api.on(
        "GET",
        USER + "/loans",
        (
            200,
            [
                {
                    "loan_id": 7,
                    "account_reference": "KP-7",
                    "currency": "KES",
                    "outstanding": "12000.00",
                    "arrears": "0.00",
                    "days_past_due": 0,
                    "status": "active",
                    "next_installment": {"due_date": "2026-12-04", "amount": "3000.00"},
                }
            ],
        ),
    )
    tracker = make_tracker(text="nitalipa elfu moja na mia tano kesho", intent="promise_to_pay")
    dispatcher = CollectingDispatcher()
    events = await ActionStartPromise().run(dispatcher, tracker, DOMAIN)
    result = slots(events)
    assert result["promise_amount"] == "1500"
    assert result["promise_date"] == (today() + timedelta(days=1)).isoformat()
    assert result["promise_due_now"] == "3000.00"
    assert events[-1]["name"] == "promise_form"


async def test_nothing_owed_does_not_open_the_form(fake_api: FakeLoanApi) -> None:
    fake_api.on("GET", USER + "/loans", (200, []))
    dispatcher = CollectingDispatcher()
    events = await ActionStartPromise().run(dispatcher, make_tracker(), DOMAIN)
    assert keys(dispatcher) == ["conv.no_loans"]
    assert events[-1]["name"] == "action_listen"


@pytest.mark.parametrize(
    ("text", "relief"),
    [
        ("I need more time", "more_time"),
        ("des mensualités plus petites", "smaller_installments"),
        ("una pausa por favor", "pause"),
        ("naomba muda zaidi", "more_time"),
        ('/inform{"relief": "pause"}', "pause"),
        ("I don't know", None),
    ],
)
def test_relief_is_understood_in_every_language(text: str, relief: str | None) -> None:
    assert relief_from_text(text) == relief


async def test_hardship_case_names_the_officer_and_deadline(fake_api: FakeLoanApi) -> None:
    fake_api.on(
        "POST",
        USER + "/cases",
        (
            201,
            {
                "reference": "HS-12",
                "kind": "hardship",
                "status": "open",
                "officer_name": "Grace Otieno",
                "sla_due_at": "2026-12-03T09:00:00+03:00",
            },
        ),
    )
    tracker = make_tracker(
        slots={"hardship_reason": "my shop burned", "hardship_relief": "pause", "language": "fr"}
    )
    dispatcher = CollectingDispatcher()
    events = await ActionOpenHardshipCase().run(dispatcher, tracker, DOMAIN)
    (body,) = fake_api.bodies("POST", USER + "/cases")
    assert body == {
        "kind": "hardship",
        "borrower_words": "my shop burned",
        "requested_relief": "pause",
    }
    (payload,) = payloads(dispatcher)
    assert (payload["key"], payload["locale"]) == ("conv.hardship.opened", "fr")
    assert payload["args"]["officer"] == "Grace Otieno"
    assert slots(events) == {"hardship_reason": None, "hardship_relief": None}


async def test_hardship_of_an_unverified_chat_is_heard_before_verification(
    fake_api: FakeLoanApi,
) -> None:
    fake_api.on("GET", USER, (200, {"status": "expired", "locale": "sw"}))
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(intent="hardship", text="mafuriko yamesomba duka langu, sina kitu")
    tracker.slots["language"] = "sw"
    events = await ActionStartHardship().run(dispatcher, tracker, DOMAIN)
    # Sympathy first, in the borrower's language, asking for no payment; then the check.
    assert [(p["key"], p["locale"]) for p in payloads(dispatcher)] == [
        ("conv.hardship.sorry", "sw")
    ]
    assert slots(events)["pending_request"] == "hardship"


async def test_hardship_relief_answer_is_validated(fake_api: FakeLoanApi) -> None:
    tracker = make_tracker(
        text="smaller installments please",
        intent="inform",
        slots={"hardship_reason": "sick", "requested_slot": "hardship_relief"},
        active_loop="hardship_form",
    )
    _, result = await validate(ValidateHardshipForm(), tracker)
    assert result["hardship_relief"] == "smaller_installments"


async def test_language_change_takes_effect_and_confirms_in_the_new_language(
    fake_api: FakeLoanApi,
) -> None:
    fake_api.on("PUT", USER + "/language", (200, {"locale": "fr"}))
    tracker = make_tracker(
        text="en français svp",
        intent="change_language",
        entities=[{"entity": "language", "value": "fr"}],
    )
    dispatcher = CollectingDispatcher()
    events = await ActionChangeLanguage().run(dispatcher, tracker, DOMAIN)
    assert fake_api.bodies("PUT", USER + "/language") == [{"locale": "fr"}]
    assert payloads(dispatcher)[0]["locale"] == "fr"
    assert slots(events) == {"language": "fr"}


async def test_language_change_when_the_api_fails_changes_nothing(fake_api: FakeLoanApi) -> None:
    tracker = make_tracker(text="kiswahili", intent="change_language")
    dispatcher = CollectingDispatcher()
    events = await ActionChangeLanguage().run(dispatcher, tracker, DOMAIN)
    assert keys(dispatcher) == ["common.try_again_shortly"]
    assert events == []


async def test_opt_out_is_recorded_before_confirming(fake_api: FakeLoanApi) -> None:
    fake_api.on("PUT", USER + "/consent", (200, {"channel": "telegram", "opted_in": False}))
    dispatcher = CollectingDispatcher()
    await ActionOptOut().run(dispatcher, make_tracker(intent="opt_out", text="STOP"), DOMAIN)
    assert fake_api.bodies("PUT", USER + "/consent") == [{"opted_in": False}]
    assert keys(dispatcher) == ["conv.opted_out"]


async def test_opening_the_form_with_cleared_answers_says_nothing(fake_api: FakeLoanApi) -> None:
    tracker = make_tracker(
        text="I want to promise a payment", intent="promise_to_pay", slots=PROMISE_SLOTS
    )
    # action_start_promise cleared both answers before the form opened.
    tracker.events += [
        {"event": "slot", "name": "promise_amount", "value": None},
        {"event": "slot", "name": "promise_date", "value": None},
    ]
    dispatcher, result = await validate(ValidatePromiseForm(), tracker)
    assert dispatcher.messages == []
    assert result == {"promise_amount": None, "promise_date": None}
    assert fake_api.requests == []


async def test_an_offer_to_pay_during_the_hardship_form_is_not_taken_as_the_relief(
    fake_api: FakeLoanApi,
) -> None:
    """The borrower chose a promise over relief: the form yields (its rule starts the promise)."""
    tracker = make_tracker(
        text="I can pay 1500 tomorrow",
        intent="promise_to_pay",
        slots={"requested_slot": "hardship_relief", "hardship_reason": "late salary"},
        active_loop="hardship_form",
    )
    _, result = await validate(ValidateHardshipForm(), tracker)
    assert "hardship_relief" not in result


def _zone_on_another_day() -> str:
    """A zone whose calendar day differs from UTC's right now: +14 h after 10:00 UTC, -11 h
    before 11:00 UTC, so one of the two always does."""
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        if today(zone) != datetime.now(UTC).date():
            return zone
    raise AssertionError("unreachable: one of the zones is always on another day")


async def test_tomorrow_is_the_borrowers_tomorrow_not_the_servers() -> None:
    """ "mañana" said at 22:00 in Mexico City is the next day there, though UTC is already on
    it: the day is read on the clock of the zone the API named for the chat."""
    zone = _zone_on_another_day()
    tracker = promise_tracker("1500 tomorrow", "promise_amount", timezone=zone)
    _dispatcher, result = await validate(ValidatePromiseForm(), tracker)
    assert result["promise_date"] == (today(zone) + timedelta(days=1)).isoformat()
