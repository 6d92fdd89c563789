"""Account actions against a fake loan API: answers, verification first, no way in by typing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rasa_sdk.executor import CollectingDispatcher

import actions.cases  # noqa: F401 - registers the "officer" request the affirm handler runs
from actions.loans import (
    ActionReportPayment,
    ActionShowBalance,
    ActionShowPaymentInstructions,
    ActionShowSchedule,
)
from actions.session import ActionHandleAffirm, ActionHandleFallback
from actions.verification import ActionResumeRequest, ActionStartVerification
from i18n import render
from portfolio.demo import DEMO_BRANCHES
from tests.actions.helpers_actions import FakeLoanApi, keys, make_tracker, payloads

USER = r"/v1/identities/telegram/4242"
LOAN = {
    "loan_id": 7,
    "account_reference": "KP-0007",
    "currency": "KES",
    "outstanding": "12000.00",
    "arrears": "1500.00",
    "days_past_due": 3,
    "status": "active",
    "next_installment": {"due_date": "2026-12-04", "amount": "3000.00"},
}


def events_of(events: list[Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def run(action: Any, tracker: Any) -> tuple[CollectingDispatcher, list[Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, {"forms": {}})
    return dispatcher, events


async def test_balance_of_a_verified_chat_has_real_figures(fake_api: FakeLoanApi) -> None:
    fake_api.on("GET", USER + "/loans", (200, [LOAN]))
    dispatcher, events = await run(ActionShowBalance(), make_tracker(intent="ask_balance"))
    (payload,) = payloads(dispatcher)
    assert payload["key"] == "conv.balance_arrears"
    assert payload["args"]["outstanding"] == {"$money": ["12000.00", "KES"]}
    text = render(payload["key"], "fr", **payload["args"])
    assert "12\u202f000,00" in text and "KP-0007" in text
    # "How much do I pay?" is as often about the next instalment: its amount and day come too.
    (next_payment,) = payload["lines"]
    text = render(next_payment["key"], "fr", **next_payment["args"])
    assert "3\u202f000,00" in text and "4 décembre 2026" in text
    assert events == []


async def test_unverified_chat_is_sent_to_verification_and_learns_nothing(
    fake_api: FakeLoanApi,
) -> None:
    fake_api.on("GET", USER + "/loans", (403, {"code": "verification_required", "detail": "x"}))
    dispatcher, events = await run(
        ActionShowBalance(), make_tracker(intent="ask_balance", text="my balance?")
    )
    assert dispatcher.messages == []
    assert events_of(events) == {"pending_request": "balance", "pending_text": "my balance?"}
    assert events[-1] == {
        "event": "followup",
        "name": "action_start_verification",
        "timestamp": None,
    }


async def test_typed_entities_and_slots_never_choose_the_account(fake_api: FakeLoanApi) -> None:
    fake_api.on("GET", r"/v1/identities/.+", (403, {"code": "verification_required"}))
    tracker = make_tracker(
        intent="ask_balance",
        text='/ask_balance{"loan_id": "99", "user": "555", "proven_phone": "+254700000001"}',
        entities=[{"entity": "loan_id", "value": "99"}, {"entity": "user", "value": "555"}],
        slots={"verification_value": "verified", "pending_request": "balance"},
    )
    await run(ActionShowBalance(), tracker)
    # Only this chat's identity was asked, and the API still said "verify first".
    assert [r.url.path for r in fake_api.requests] == [USER + "/loans"]
    dispatcher, events = await run(ActionStartVerification(), tracker)
    # A phone typed in the message is not a proven phone: the contact is asked for.
    assert payloads(dispatcher)[0]["request_contact"] is True
    assert [e["event"] for e in events] == ["followup"]


async def test_whatsapp_and_terminal_chats_use_the_proven_phone(fake_api: FakeLoanApi) -> None:
    fake_api.on(
        "POST",
        r"/v1/identities/whatsapp/254700000001/verification/start",
        (200, {"factor": "national_id"}),
    )
    tracker = make_tracker(
        sender="wa:254700000001", metadata={"phone_proven": True, "locale": "sw"}
    )
    _, events = await run(ActionStartVerification(), tracker)
    # The number stays with the loan API (the gateway registered it): Rasa never carries it.
    assert fake_api.bodies("POST", r".+/verification/start") == [{}]
    assert events_of(events)["verification_factor"] == "national_id"
    assert events[-1]["name"] == "verification_form"


async def test_resume_answers_the_pending_question_after_verification(
    fake_api: FakeLoanApi,
) -> None:
    fake_api.on("GET", USER + "/loans", (200, [LOAN]))
    tracker = make_tracker(
        intent="inform",
        text="14/03/1985",
        slots={"verification_value": "verified", "pending_request": "balance"},
    )
    dispatcher, events = await run(ActionResumeRequest(), tracker)
    assert keys(dispatcher) == ["conv.verify.done", "conv.balance_arrears"]
    assert events_of(events)["pending_request"] is None


async def test_resume_after_a_failed_or_locked_check_discloses_nothing(
    fake_api: FakeLoanApi,
) -> None:
    tracker = make_tracker(slots={"verification_value": "locked", "pending_request": "balance"})
    dispatcher, _ = await run(ActionResumeRequest(), tracker)
    assert dispatcher.messages == []
    assert fake_api.requests == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"code": "internal_error"}),
        httpx.Response(200, json={"unexpected": "shape"}),
        httpx.ConnectError("refused"),
    ],
)
async def test_api_failure_says_try_again_and_changes_nothing(
    fake_api: FakeLoanApi, failure: Any
) -> None:
    def answer(_request: httpx.Request, _match: Any) -> httpx.Response:
        if isinstance(failure, Exception):
            raise failure
        return failure

    fake_api.on("GET", USER + "/loans", answer)
    dispatcher, events = await run(ActionShowBalance(), make_tracker(slots={"language": "sw"}))
    assert payloads(dispatcher) == [{"key": "common.try_again_shortly", "args": {}, "locale": "sw"}]
    assert events == []


async def test_schedule_is_one_message_of_lines(fake_api: FakeLoanApi) -> None:
    fake_api.on("GET", USER + "/loans", (200, [LOAN]))
    fake_api.on(
        "GET",
        USER + "/loans/7/schedule",
        (
            200,
            [
                {
                    "seq": 1,
                    "due_date": "2026-11-04",
                    "amount_due": "3000.00",
                    "amount_paid": "3000.00",
                    "status": "paid",
                },
                {
                    "seq": 2,
                    "due_date": "2026-12-04",
                    "amount_due": "3000.00",
                    "amount_paid": "0.00",
                    "status": "pending",
                },
            ],
        ),
    )
    dispatcher, _ = await run(ActionShowSchedule(), make_tracker(slots={"language": "es"}))
    (payload,) = payloads(dispatcher)
    assert payload["key"] == "conv.schedule_header"
    assert [line["args"]["seq"] for line in payload["lines"]] == [1, 2]
    assert payload["lines"][1]["args"]["status"] == {"$key": "conv.installment.pending", "args": {}}


async def test_payment_not_arrived_is_recorded_as_a_claim(fake_api: FakeLoanApi) -> None:
    fake_api.on(
        "POST",
        USER + "/payment-claims",
        (200, {"found": False, "case_reference": "CL-31", "expected_within_hours": 24}),
    )
    dispatcher, _ = await run(
        ActionReportPayment(),
        make_tracker(text="I paid ksh 1,500 already", intent="report_payment"),
    )
    assert fake_api.bodies("POST", USER + "/payment-claims") == [{"amount": "1500"}]
    (payload,) = payloads(dispatcher)
    assert payload["key"] == "conv.payment_not_found"
    assert payload["args"]["reference"] == "CL-31"


async def test_a_found_payment_is_dated_by_the_borrowers_calendar(
    fake_api: FakeLoanApi,
) -> None:
    # 21:30 UTC on Sunday is already Monday in Nairobi, where the borrower paid.
    payment = {"amount": "1500.00", "currency": "KES", "received_at": "2026-11-29T21:30:00Z"}
    fake_api.on("POST", USER + "/payment-claims", (200, {"found": True, "payment": payment}))
    dispatcher, _ = await run(
        ActionReportPayment(),
        make_tracker(text="I paid ksh 1,500 already", intent="report_payment"),
    )
    (payload,) = payloads(dispatcher)
    assert payload["key"] == "conv.payment_found"
    assert payload["args"]["date"] == {"$date": "2026-11-30"}


async def test_second_misunderstanding_in_a_row_offers_a_person(fake_api: FakeLoanApi) -> None:
    earlier = {
        "event": "user",
        "timestamp": 1.0,
        "text": "blorp",
        "parse_data": {"intent": {"name": "nlu_fallback"}},
    }
    first, events = await run(ActionHandleFallback(), make_tracker(intent="out_of_scope"))
    assert keys(first) == ["conv.capabilities"]
    assert events == []
    second, events = await run(
        ActionHandleFallback(), make_tracker(intent="out_of_scope", events=[earlier])
    )
    (payload,) = payloads(second)
    assert payload["key"] == "conv.offer_person"
    assert [b["payload"] for b in payload["buttons"]] == ["/request_officer", "/deny"]
    assert events == []


async def test_yes_after_the_offer_of_a_person_asks_the_officer(fake_api: FakeLoanApi) -> None:
    fake_api.on("GET", USER, (200, {"status": "verified", "locale": "en"}))
    fake_api.on(
        "POST",
        USER + "/cases",
        (201, {"reference": "OR-5", "kind": "officer_request", "status": "open",
               "officer_name": "Grace Otieno", "sla_due_at": "2026-12-02T09:00:00+03:00"}),
    )  # fmt: skip
    offer = {"event": "bot", "timestamp": 2.0, "data": {"custom": {"key": "conv.offer_person"}}}
    dispatcher, _ = await run(ActionHandleAffirm(), make_tracker(intent="affirm", events=[offer]))
    assert keys(dispatcher) == ["conv.officer.opened"]
    assert fake_api.bodies("POST", USER + "/cases")[0]["kind"] == "officer_request"
    plain, _ = await run(ActionHandleAffirm(), make_tracker(intent="affirm"))
    assert keys(plain) == ["conv.ok"]


@pytest.mark.parametrize("branch", DEMO_BRANCHES, ids=lambda b: b.code)
async def test_every_demo_branch_tells_a_way_to_pay_with_its_numbers(
    fake_api: FakeLoanApi, branch: Any
) -> None:
    """The payment instructions the demo seeds are read by the keys the action reads: every
    number a borrower needs (paybill, merchant, bank account) is in what they get."""
    payment: dict[str, Any] = branch.payment_instructions
    instructions = {"account_reference": "DEMO004", "currency": "KES", **payment}
    fake_api.on("GET", USER + "/payment-instructions", (200, instructions))
    tracker = make_tracker(intent="how_to_pay", slots={"verification_value": "verified"})
    dispatcher, _ = await run(ActionShowPaymentInstructions(), tracker)
    [shown] = payloads(dispatcher)
    rendered = "\n".join(render(line["key"], "en", **line["args"]) for line in shown["lines"])
    numbers = [m["number"] for m in payment["mobile_money"]]
    numbers += [payment["bank"]["account"]] if payment["bank"] else []
    assert numbers and all(number in rendered for number in numbers)
    assert "DEMO004" in rendered


@pytest.mark.parametrize(
    ("text", "kind_word"),
    [
        ("sorry, I could not pay on monday, my customer paid me late. what do I owe?",
         "conv.empathy.missed_payment"),
        ("je n'ai pas pu payer samedi, je dois combien maintenant", "conv.empathy.missed_payment"),
        ("sikuweza kulipa wiki iliyopita, nadaiwa ngapi", "conv.empathy.missed_payment"),
        ("my husband is in hospital, how much is left on my loan", "conv.hardship.sorry"),
        ("how much do I owe?", None),
    ],
)  # fmt: skip
async def test_a_missed_payment_or_distress_told_with_a_question_is_heard_before_the_check(
    fake_api: FakeLoanApi, text: str, kind_word: str | None
) -> None:
    fake_api.on("GET", r"/v1/identities/.+", (403, {"code": "verification_required"}))
    tracker = make_tracker(intent="ask_balance", text=text)
    dispatcher, events = await run(ActionShowBalance(), tracker)
    assert keys(dispatcher) == ([kind_word] if kind_word else [])
    assert events[-1]["name"] == "action_start_verification"  # the check follows the kind word


async def test_a_missed_payment_explained_is_no_payment_claim_after_the_check(
    fake_api: FakeLoanApi,
) -> None:
    """The NLU read "I said I'd pay but couldn't" as a payment report: nothing is carried to
    open a payment claim once the check passes; the kind word and the check still come."""
    fake_api.on("GET", r"/v1/identities/.+", (403, {"code": "verification_required"}))
    fake_api.on("POST", r"/v1/identities/.+", (403, {"code": "verification_required"}))
    tracker = make_tracker(
        intent="report_payment", text="sorry I said I would pay yesterday but I couldn't pay"
    )
    dispatcher, events = await run(ActionReportPayment(), tracker)
    assert keys(dispatcher) == ["conv.empathy.missed_payment"]
    assert events_of(events).get("pending_request") is None
    assert events[-1]["name"] == "action_start_verification"
