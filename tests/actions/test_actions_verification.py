"""The identity check against a fake loan API: answers by their form, tries only on wrong
answers, digressions answered and kept, the typed answer never kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher

import actions.cases  # registers the requests resumed after the check
import actions.loans
import actions.promises  # noqa: F401 - registers the promise request
from actions.preferences import ActionOptIn
from actions.session import ActionHandleFallback, ActionHandleInform, ActionListLanguages
from actions.verification import (
    ActionAskVerificationValue,
    ActionResumeRequest,
    ValidateVerificationForm,
)
from i18n import SUPPORTED_LOCALES
from tests.actions.helpers_actions import FakeLoanApi, keys, make_tracker, payloads

USER = r"/v1/identities/telegram/4242"
COMPLETE = USER + "/verification/complete"
START = USER + "/verification/start"
DOMAIN = {"forms": {"verification_form": {"required_slots": ["verification_value"]}}, "slots": {}}
FAILED = (401, {"code": "verification_failed", "detail": "no", "attempts_left": 3})


def in_check(text: str, intent: str = "inform", **slots: Any) -> Any:
    return make_tracker(
        text=text,
        intent=intent,
        slots={
            "verification_factor": "dob,national_id",
            "requested_slot": "verification_value",
            **slots,
        },
        active_loop="verification_form",
    )


async def validate(tracker: Any) -> tuple[CollectingDispatcher, dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateVerificationForm().run(dispatcher, tracker, DOMAIN)
    return dispatcher, {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.mark.parametrize(
    ("text", "intent", "checked"),
    [
        ("I'd rather give my ID card, it ends in 4821", "how_to_pay", {"national_id": "4821"}),
        ("balance please, I was born 14/03/1985", "ask_balance", {"dob": "1985-03-14"}),
        ("what do I owe on loan 4821?", "ask_balance", None),  # a number, named as no ID
    ],
)
async def test_an_answer_offered_in_the_message_that_opens_the_check_is_read(
    fake_api: FakeLoanApi, text: str, intent: str, checked: dict[str, str] | None
) -> None:
    fake_api.on("POST", COMPLETE, (200, {"status": "verified", "locale": "en"}))
    _, slots = await validate(in_check(text, intent, requested_slot=None))
    sent = fake_api.bodies("POST", COMPLETE)
    assert sent == ([{"answers": checked}] if checked else [])
    assert slots.get("verification_value") == ("verified" if checked else None)


async def test_four_digits_with_a_day_are_an_amount_not_id_digits(fake_api: FakeLoanApi) -> None:
    _, slots = await validate(in_check("le abono 1300 mañana sin falta", "promise_to_pay"))
    assert fake_api.bodies("POST", COMPLETE) == []  # no try spent
    assert slots["pending_request"] == "promise"
    assert "1300" in slots["pending_text"]


async def test_an_answer_the_language_gate_took_for_another_language_is_still_read(
    fake_api: FakeLoanApi,
) -> None:
    fake_api.on("POST", COMPLETE, (200, {"status": "verified", "locale": "es"}))
    _, slots = await validate(in_check("mi ine termina en 2794", "other_language"))
    assert fake_api.bodies("POST", COMPLETE) == [{"answers": {"national_id": "2794"}}]
    assert slots["verification_value"] == "verified"


@pytest.mark.parametrize(
    ("text", "intent", "answers"),
    [
        ("ID no 23873307", "deny", {"national_id": "3307"}),  # "no" for number, not a refusal
        ("samahani nimekosea, ni 4821", "bot_challenge", {"national_id": "4821"}),
    ],
)
async def test_an_answer_is_read_whatever_its_few_words_were_taken_for(
    fake_api: FakeLoanApi, text: str, intent: str, answers: dict[str, str]
) -> None:
    fake_api.on("POST", COMPLETE, (200, {"status": "verified", "locale": "en"}))
    _, slots = await validate(in_check(text, intent))
    assert fake_api.bodies("POST", COMPLETE) == [{"answers": answers}]
    assert slots["verification_value"] == "verified"


@pytest.mark.parametrize(
    ("text", "confidence", "checked"),
    [
        # Named as the ID, and the NLU only guessed at an officer: the answer.
        ("el numero de mi credencial es 0871156302794", 0.48, {"national_id": "2794"}),
        # The NLU is sure: the borrower asks for a call, whatever numbers the words hold.
        ("mi credencial es 0871156302794, quiero que me llame un asesor", 0.9, None),
    ],
)
async def test_an_officer_request_the_nlu_only_guesses_gives_way_to_a_named_answer(
    fake_api: FakeLoanApi, text: str, confidence: float, checked: dict[str, str] | None
) -> None:
    fake_api.on("POST", COMPLETE, (200, {"status": "verified", "locale": "es"}))
    tracker = in_check(text, "request_officer", language="es")
    tracker.latest_message["intent"]["confidence"] = confidence
    _, slots = await validate(tracker)
    if checked is None:
        assert fake_api.bodies("POST", COMPLETE) == []
        assert "verification_value" not in slots  # the rule answers, the form asks again
    else:
        assert fake_api.bodies("POST", COMPLETE) == [{"answers": checked}]
        assert slots["verification_value"] == "verified"


async def test_an_unsure_complaint_during_the_check_opens_nothing_after_it(
    fake_api: FakeLoanApi,
) -> None:
    """ "Why are you asking that?" taken for a complaint at 0.6: no try, and no case later."""
    tracker = in_check("why do you even ask me that?", "complaint")
    tracker.latest_message["intent"]["confidence"] = 0.6
    dispatcher, slots = await validate(tracker)
    assert fake_api.bodies("POST", COMPLETE) == []
    assert slots.get("pending_request") is None
    assert keys(dispatcher) == ["conv.verify.not_an_answer"]


@pytest.mark.parametrize(
    ("text", "intent", "kept"),
    [
        # The NLU may read a request into a bare answer: nothing more was asked.
        ("ok. my ID number is 28114821", "how_to_pay", None),
        ("namba ya kitambulisho ni 30114821", "report_payment", None),
        ("mi cédula es 1122334821", "ask_balance", None),
        # An answer with a question: the question is answered after the check.
        ("my ID is 28114821, and when is the next one due?", "ask_next_due", "next_due"),
        ("CNI 1752198804821 et je dois combien", "ask_balance", "balance"),
    ],
)
async def test_a_question_rides_with_an_answer_only_when_words_ask_it(
    fake_api: FakeLoanApi, text: str, intent: str, kept: str | None
) -> None:
    fake_api.on("POST", COMPLETE, (200, {"status": "verified", "locale": "en"}))
    _, slots = await validate(in_check(text, intent))
    assert slots["verification_value"] == "verified"
    assert slots.get("pending_request") == kept


@pytest.mark.parametrize(
    ("text", "intent", "sent"),
    [
        ("ok. my ID number is 28113307", "inform", {"national_id": "3307"}),
        ("CNI 1752198806150", "inform", {"national_id": "6150"}),
        ("nací el 9 de mayo del 92", "inform", {"dob": "1992-05-09"}),
        ("15 Machi 1990", "hardship", {"dob": "1990-03-15"}),
        (
            "mi número de cliente es 442794, nací el 9 de mayo del 92",
            "inform",
            {"dob": "1992-05-09", "national_id": "2794"},
        ),
    ],
)
async def test_an_answer_of_an_offered_form_is_checked_and_never_kept(
    fake_api: FakeLoanApi, text: str, intent: str, sent: dict[str, str]
) -> None:
    fake_api.on("POST", COMPLETE, (200, {"status": "verified", "locale": "es"}))
    _, slots = await validate(in_check(text, intent))
    assert fake_api.bodies("POST", COMPLETE) == [{"answers": sent}]
    assert slots["verification_value"] == "verified"
    assert slots["language"] == "es"
    kept = json.dumps(slots)
    assert all(value not in kept for value in sent.values())
    assert text not in kept


async def test_a_wrong_answer_spends_a_try_and_the_lock_offers_a_callback(
    fake_api: FakeLoanApi,
) -> None:
    fake_api.on("POST", COMPLETE, FAILED)
    dispatcher, slots = await validate(in_check("01/01/1990"))
    assert slots["verification_value"] is None
    assert [(p["key"], p["args"]) for p in payloads(dispatcher)] == [
        ("conv.verify.failed", {"count": 3})
    ]
    locked = {"code": "locked", "detail": "x", "locked_until": "2026-12-01T10:00:00+00:00"}
    fake_api.on("POST", COMPLETE, (423, locked))
    dispatcher, slots = await validate(in_check("01/01/1990"))
    assert slots["verification_value"] == "locked"
    (payload,) = payloads(dispatcher)
    assert payload["key"] == "conv.verify.locked"
    assert [b["payload"] for b in payload["buttons"]] == ["/request_officer"]
    fake_api.on("POST", COMPLETE, (423, {"code": "locked", "locked_until": None, "held": True}))
    dispatcher, slots = await validate(in_check("01/01/1990"))
    assert keys(dispatcher) == ["conv.verify.held"]


@pytest.mark.parametrize(
    ("text", "intent", "key"),
    [
        ("asante sana", "thanks", "conv.verify.welcome"),
        ("oui", "affirm", "conv.verify.not_an_answer"),
        ("hola buenas", "greet", "conv.verify.hello"),
        ("what?", "nlu_fallback", "conv.verify.not_an_answer"),
        ("12/05/2030", "inform", "conv.verify.not_birth_date"),
    ],
)
async def test_what_is_no_answer_costs_no_try(
    fake_api: FakeLoanApi, text: str, intent: str, key: str
) -> None:
    dispatcher, slots = await validate(in_check(text, intent))
    assert fake_api.requests == []
    assert keys(dispatcher) == [key]
    assert slots["verification_value"] is None  # the form says again what it needs


async def test_goodbye_ends_the_check_without_a_try(fake_api: FakeLoanApi) -> None:
    dispatcher, slots = await validate(in_check("ok thanks bye", "goodbye"))
    assert fake_api.requests == []
    assert keys(dispatcher) == ["conv.verify.goodbye"]
    assert slots["verification_value"] == "left"


@pytest.mark.parametrize("intent", ["goodbye", "deny"])
async def test_a_goodbye_or_no_the_nlu_only_guesses_stops_nothing(
    fake_api: FakeLoanApi, intent: str
) -> None:
    """ "kwani mbona mnauliza hiyo?" (why do you ask that?) came out `goodbye` at 0.21."""
    tracker = in_check("kwani mbona mnauliza hiyo?", intent, language="sw")
    tracker.latest_message["intent"]["confidence"] = 0.21
    dispatcher, slots = await validate(tracker)
    assert fake_api.requests == []
    assert keys(dispatcher) == ["conv.verify.not_an_answer"]
    assert slots["verification_value"] is None  # still in the check, asked again


async def test_questions_and_a_promise_given_during_the_check_are_kept_for_after_it(
    fake_api: FakeLoanApi,
) -> None:
    dispatcher, slots = await validate(
        in_check("and when is the next one due", "ask_next_due", pending_request="balance")
    )
    assert keys(dispatcher) == ["conv.verify.after_check"]
    assert slots["pending_request"] == "balance,next_due"

    dispatcher, slots = await validate(in_check("10 000 FCFA", "inform", **slots))
    assert keys(dispatcher) == ["conv.verify.after_check"]
    assert slots["pending_request"] == "balance,next_due,promise"
    _, slots = await validate(in_check("vendredi prochain", "inform", **slots))
    assert slots["pending_text"] == "10 000 FCFA vendredi prochain"
    assert fake_api.requests == []


async def test_a_hardship_message_during_the_check_is_heard_first(fake_api: FakeLoanApi) -> None:
    text = "mafuriko yamesomba duka langu, sina kitu"
    dispatcher, slots = await validate(in_check(text, "hardship", language="sw"))
    assert [(p["key"], p["locale"]) for p in payloads(dispatcher)] == [
        ("conv.hardship.sorry", "sw")
    ]
    assert (slots["pending_request"], slots["pending_text"]) == ("hardship", text)
    assert fake_api.requests == []


@pytest.mark.parametrize("intent", ["opt_out", "change_language", "request_officer", "deny"])
async def test_the_rules_answer_some_digressions(fake_api: FakeLoanApi, intent: str) -> None:
    dispatcher, slots = await validate(in_check("whatever", intent))
    assert dispatcher.messages == [] and fake_api.requests == []
    assert "verification_value" not in slots  # the form rejects the turn: the rule answers


async def test_the_question_offers_every_factor_and_a_callback() -> None:
    dispatcher = CollectingDispatcher()
    await ActionAskVerificationValue().run(dispatcher, in_check(""), DOMAIN)
    (payload,) = payloads(dispatcher)
    assert payload["key"] == "conv.verify.ask_any"
    assert [b["payload"] for b in payload["buttons"]] == ["/request_officer"]


async def test_after_the_check_the_questions_then_the_promise_are_carried_out(
    fake_api: FakeLoanApi,
) -> None:
    loan = {
        "loan_id": 7, "account_reference": "KP-0007", "currency": "XOF",
        "outstanding": "90000.00", "arrears": "30000.00", "days_past_due": 3, "status": "active",
        "next_installment": {"due_date": "2026-12-14", "amount": "30000.00"},
    }  # fmt: skip
    fake_api.on("GET", USER + "/loans", (200, [loan]))
    tracker = make_tracker(
        slots={
            "language": "fr",
            "verification_value": "verified",
            "pending_request": "promise,balance",
            "pending_text": "10 000 FCFA vendredi prochain",
        }
    )
    dispatcher = CollectingDispatcher()
    events = await ActionResumeRequest().run(dispatcher, tracker, DOMAIN)
    assert keys(dispatcher) == ["conv.verify.done", "conv.balance_arrears"]
    set_slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert set_slots["promise_amount"] == "10000"
    assert set_slots["promise_date"] is not None
    assert events[-1]["name"] == "promise_form"


def _unsure_between_account_questions() -> Any:
    tracker = make_tracker(text="how much is left to pay next", intent="nlu_fallback")
    tracker.latest_message["intent_ranking"] = [
        {"name": "nlu_fallback", "confidence": 0.5},
        {"name": "ask_balance", "confidence": 0.41},
        {"name": "ask_next_due", "confidence": 0.38},
        {"name": "greet", "confidence": 0.1},
        {"name": "ask_schedule", "confidence": 0.06},
        {"name": "how_to_pay", "confidence": 0.05},
    ]
    tracker.events[-1]["parse_data"] = tracker.latest_message
    return tracker


async def test_unsure_between_account_questions_before_the_check_starts_the_check(
    fake_api: FakeLoanApi,
) -> None:
    """Whichever it was, the check comes first; the likeliest question is kept for after."""
    fake_api.on("GET", USER, (200, {"status": "unverified"}))
    fake_api.on("GET", USER + "/loans", (403, {"code": "verification_required"}))
    dispatcher = CollectingDispatcher()
    events = await ActionHandleFallback().run(
        dispatcher, _unsure_between_account_questions(), DOMAIN
    )
    assert keys(dispatcher) == []
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["pending_request"] == "balance"
    assert events[-1]["name"] == "action_start_verification"


async def test_unsure_asks_did_you_mean_with_the_top_requests(fake_api: FakeLoanApi) -> None:
    fake_api.on("GET", USER, (200, {"status": "verified", "locale": "en"}))
    tracker = _unsure_between_account_questions()
    dispatcher = CollectingDispatcher()
    await ActionHandleFallback().run(dispatcher, tracker, DOMAIN)
    (payload,) = payloads(dispatcher)
    assert payload["key"] == "conv.did_you_mean"
    assert [b["payload"] for b in payload["buttons"]] == [
        "/ask_balance",
        "/ask_next_due",
        "/ask_schedule",
    ]


@pytest.mark.parametrize(
    ("text", "ranking"),
    [
        ("things are bad", [("nlu_fallback", 0.5), ("ask_balance", 0.3), ("hardship", 0.25)]),
        ("mafuriko yamesomba duka langu, sina kitu", [("out_of_scope", 0.9)]),
        ("perdí mi trabajo y no tengo nada", [("out_of_scope", 0.8)]),
    ],
)
async def test_hardship_like_messages_never_get_i_cant_help(
    text: str, ranking: list[tuple[str, float]]
) -> None:
    tracker = make_tracker(text=text, intent=ranking[0][0])
    tracker.latest_message["intent_ranking"] = [
        {"name": name, "confidence": confidence} for name, confidence in ranking
    ]
    dispatcher = CollectingDispatcher()
    await ActionHandleFallback().run(dispatcher, tracker, DOMAIN)
    assert keys(dispatcher) == ["conv.hardship.sorry_unsure"]
    assert [b["payload"] for b in payloads(dispatcher)[0]["buttons"]] == [
        "/hardship",
        "/request_officer",
    ]


async def test_another_language_gets_the_list_in_all_four() -> None:
    dispatcher = CollectingDispatcher()
    await ActionListLanguages().run(dispatcher, make_tracker(intent="other_language"), DOMAIN)
    assert [(p["key"], p["locale"]) for p in payloads(dispatcher)] == [
        ("conv.languages", locale) for locale in SUPPORTED_LOCALES
    ]


async def test_an_unverified_request_for_the_officer_is_a_callback(fake_api: FakeLoanApi) -> None:
    from actions.cases import ActionRequestOfficer

    fake_api.on("GET", USER, (200, {"status": "unverified", "locale": "en"}))
    fake_api.on("POST", USER + "/callback", (202, {"status": "requested"}))
    tracker = make_tracker(intent="request_officer", metadata={"phone_proven": True})
    dispatcher = CollectingDispatcher()
    await ActionRequestOfficer().run(dispatcher, tracker, DOMAIN)
    assert keys(dispatcher) == ["conv.callback.requested"]
    # Rasa never holds the number: the API calls the phone the gateway registered for the chat.
    assert fake_api.bodies("POST", USER + "/callback") == [{"phone": None}]


@pytest.mark.parametrize(
    "text",
    ["STOP!!", "please stop messaging me", "Arrêtez de m'envoyer des messages", "acha kunitumia"],
)
async def test_an_opt_out_the_nlu_missed_is_still_obeyed(fake_api: FakeLoanApi, text: str) -> None:
    fake_api.on("PUT", USER + "/consent", (200, {"channel": "telegram", "opted_in": False}))
    dispatcher = CollectingDispatcher()
    await ActionHandleFallback().run(
        dispatcher, make_tracker(text=text, intent="out_of_scope"), DOMAIN
    )
    assert keys(dispatcher) == ["conv.opted_out"]
    assert fake_api.bodies("PUT", USER + "/consent") == [{"opted_in": False}]


@pytest.mark.parametrize(
    "text", ["acheni kunitumia hizo reminders", "please stop sending me reminders", "STOP"]
)
async def test_asking_to_stop_is_never_taken_as_asking_for_more(
    fake_api: FakeLoanApi, text: str
) -> None:
    """The NLU read the request to stop as opt-in: the borrower is opted out, never in."""
    fake_api.on("PUT", USER + "/consent", (200, {"channel": "telegram", "opted_in": False}))
    dispatcher = CollectingDispatcher()
    await ActionOptIn().run(dispatcher, make_tracker(text=text, intent="opt_in"), DOMAIN)
    assert keys(dispatcher) == ["conv.opted_out"]
    assert fake_api.bodies("PUT", USER + "/consent") == [{"opted_in": False}]


@pytest.mark.parametrize(
    ("text", "opt_out_confidence", "asked"),
    [
        ("fini les rappels", 0.29, True),  # read as opt-in, but opt-out is close behind
        ("ondoeni ukumbusho wote", 0.11, True),
        ("please send me the reminders again", 0.02, False),
    ],
)
async def test_an_opt_in_that_may_be_an_opt_out_is_asked_about_not_obeyed(
    fake_api: FakeLoanApi, text: str, opt_out_confidence: float, asked: bool
) -> None:
    fake_api.on("PUT", USER + "/consent", (200, {"channel": "telegram", "opted_in": True}))
    tracker = make_tracker(text=text, intent="opt_in")
    tracker.latest_message["intent_ranking"] = [
        {"name": "opt_in", "confidence": 0.6},
        {"name": "opt_out", "confidence": opt_out_confidence},
    ]
    dispatcher = CollectingDispatcher()
    await ActionOptIn().run(dispatcher, tracker, DOMAIN)
    if asked:
        assert keys(dispatcher) == ["conv.opt_in_or_out"]
        buttons = payloads(dispatcher)[0]["buttons"]
        assert [b["payload"] for b in buttons] == ["/opt_out", "/opt_in"]
        assert fake_api.bodies("PUT", USER + "/consent") == []  # nothing changed yet
    else:
        assert keys(dispatcher) == ["conv.opted_in"]
        assert fake_api.bodies("PUT", USER + "/consent") == [{"opted_in": True}]


async def test_a_question_inside_a_greeting_is_answered(fake_api: FakeLoanApi) -> None:
    from actions.session import ActionGreet

    fake_api.on("GET", USER, (200, {"status": "unverified", "locale": "es"}))
    fake_api.on("GET", USER + "/loans", (403, {"code": "verification_required"}))
    tracker = make_tracker(text="hola buenas, cuánto debo?", intent="greet")
    tracker.latest_message["intent_ranking"] = [
        {"name": "greet", "confidence": 0.55},
        {"name": "ask_balance", "confidence": 0.4},
    ]
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, tracker, DOMAIN)
    assert dispatcher.messages == []  # the check starts at once, the question kept
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"}["pending_request"] == (
        "balance"
    )
    assert events[-1]["name"] == "action_start_verification"


@pytest.mark.parametrize(
    ("text", "second", "answered"),
    [
        ("Bonjour, je voudrais savoir le solde de mon prêt", 0.08, True),
        ("hello there", 0.08, False),  # a bare hello with a faint second guess is a hello
        # Faint, but six words: a question (0.14 in cross-validation of the training data) ...
        ("habari za asubuhi, nalipaje awamu yangu", 0.14, True),
        # ... where a long hello's question runner-up stayed at or under 0.015.
        ("bonjour madame comment allez vous", 0.015, False),
        ("salut mon ami, ça va bien chez toi ?", 0.0008, False),
    ],
)
async def test_a_long_greeting_carries_a_question_at_a_lower_bar(
    fake_api: FakeLoanApi, text: str, second: float, answered: bool
) -> None:
    from actions.session import ActionGreet

    fake_api.on("GET", USER, (200, {"status": "unverified", "locale": "fr"}))
    fake_api.on("GET", USER + "/loans", (403, {"code": "verification_required"}))
    tracker = make_tracker(text=text, intent="greet")
    tracker.latest_message["intent_ranking"] = [
        {"name": "greet", "confidence": 1 - second},
        {"name": "ask_balance", "confidence": second},
    ]
    dispatcher = CollectingDispatcher()
    events = await ActionGreet().run(dispatcher, tracker, DOMAIN)
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert (slots.get("pending_request") == "balance") is answered
    assert (keys(dispatcher) == ["conv.greet"]) is not answered


async def test_an_angry_complaint_telling_of_hardship_goes_to_hardship(
    fake_api: FakeLoanApi,
) -> None:
    from actions.cases import ActionFileComplaint

    fake_api.on("GET", USER, (200, {"status": "unverified", "locale": "en"}))
    tracker = make_tracker(
        text="this is bullshit, i lost my job and you keep texting me. i CANNOT pay!!",
        intent="complaint",
    )
    dispatcher = CollectingDispatcher()
    events = await ActionFileComplaint().run(dispatcher, tracker, DOMAIN)
    assert keys(dispatcher) == ["conv.hardship.sorry"]
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"}["pending_request"] == (
        "hardship"
    )
    assert fake_api.bodies("POST", USER + "/cases") == []


@pytest.mark.parametrize(
    ("action", "text", "intent"),
    [
        ("inform", "ID inaishia 4821", "inform"),
        ("fallback", "nilizaliwa 15 Machi 1990, ID inaishia 4821", "out_of_scope"),
    ],
)
async def test_an_identity_answer_offered_unasked_starts_the_check(
    fake_api: FakeLoanApi, action: str, text: str, intent: str
) -> None:
    """Before any check, "ID inaishia 4821" (whatever the NLU made of it) is the borrower
    proving who they are: the check starts, and the form opening on it reads the answer."""
    fake_api.on("POST", START, (200, {"factor": "dob", "factors": ["dob", "national_id"]}))
    tracker = make_tracker(
        text=text, intent=intent, slots={"language": "sw"}, metadata={"phone_proven": True}
    )
    handler = ActionHandleInform() if action == "inform" else ActionHandleFallback()
    dispatcher = CollectingDispatcher()
    events = await handler.run(dispatcher, tracker, DOMAIN)
    assert keys(dispatcher) == []  # no "I can't help with that"
    assert fake_api.bodies("POST", START) == [{}]
    assert events[-1]["name"] == "verification_form"


async def test_a_bare_number_unasked_starts_no_check(fake_api: FakeLoanApi) -> None:
    tracker = make_tracker(text="1500", intent="inform", metadata={"phone_proven": True})
    dispatcher = CollectingDispatcher()
    await ActionHandleInform().run(dispatcher, tracker, DOMAIN)
    assert keys(dispatcher) == ["conv.capabilities"]
    assert fake_api.bodies("POST", START) == []
