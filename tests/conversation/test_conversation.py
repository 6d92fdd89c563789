"""Turn-by-turn conversations through the running stack (ConversationService → Rasa REST →
action server → loan API on SQLite), in English, French, Spanish and Swahili."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.borrowers.models import ChannelIdentity
from api.cases.models import Case
from api.core.config import get_settings
from api.core.security import payment_signature_headers
from api.promises.models import PromiseToPay
from bot.channels.base import InboundMessage
from bot.conversation import ChatRegistry, ConversationService
from bot.rasa_client import RasaClient
from i18n import SUPPORTED_LOCALES, format_day, format_money, render
from kopa.stack import free_port, start_api, wait_healthy
from tests.api.factories import DEFAULT_DOB, today
from tests.conversation.conftest import OFFICER, Chat, ChatFactory, World
from tests.conversation.phrases import PHRASES

pytestmark = pytest.mark.stack
LANGS = pytest.mark.parametrize("lang", SUPPORTED_LOCALES)


def money(amount: str, lang: str) -> str:
    return format_money(Decimal(amount), "KES", lang)


def factor_questions(lang: str) -> list[list[str]]:
    """The question for both factors (the default), the date of birth alone, the ID alone."""
    return [
        [render(f"conv.verify.{key}", lang)] for key in ("ask_any", "ask_dob", "ask_national_id")
    ]


async def verified(chat: ChatFactory, lang: str, **kwargs: object) -> Chat:
    """A chat that asked its balance, proved who it is, and got the figures."""
    c = chat(lang, **kwargs)  # type: ignore[arg-type]
    replies = await c.verify(PHRASES[lang]["balance"])
    assert replies[0] == render("conv.verify.done", lang)
    return c


@LANGS
async def test_an_unverified_chat_learns_nothing_until_verified(
    chat: ChatFactory, world: World, lang: str
) -> None:
    borrower = world.borrowers[lang]
    c = chat(lang)
    asked = await c.say(PHRASES[lang]["balance"])
    assert asked in factor_questions(lang)
    assert not any(borrower.reference in t or money("9000", lang) in t for t in asked)
    answer = "4821" if asked == factor_questions(lang)[2] else DEFAULT_DOB.strftime("%d/%m/%Y")
    done, balance = await c.say(answer)
    assert done == render("conv.verify.done", lang)
    assert borrower.reference in balance
    assert money("9000", lang) in balance and money("3000", lang) in balance


@LANGS
async def test_telegram_asks_for_the_shared_contact_first(
    chat: ChatFactory, world: World, lang: str
) -> None:
    c = chat(lang, channel="telegram", with_phone=False)
    assert await c.say(PHRASES[lang]["next_due"]) == [render("conv.verify.share_contact", lang)]
    (ask,) = c.replies
    assert ask.request_contact
    assert ask.contact_button_title == render("conv.share_contact_button", lang)
    # The gateway sends "/inform" with the proven phone once the user shares their own contact.
    asked = await c.say("/inform", phone=world.borrowers[lang].phone)
    assert asked in factor_questions(lang)
    answer = "4821" if asked == factor_questions(lang)[2] else DEFAULT_DOB.strftime("%d/%m/%Y")
    # The question asked before verification is answered once it succeeds.
    done, next_due = await c.say(answer)
    assert done == render("conv.verify.done", lang)
    assert money("3000", lang) in next_due


@LANGS
async def test_account_figures_in_the_borrowers_formats(
    chat: ChatFactory, world: World, lang: str
) -> None:
    borrower = world.borrowers[lang]
    c = await verified(chat, lang)
    (next_due,) = await c.say(PHRASES[lang]["next_due"])
    assert next_due == render(
        "conv.next_due",
        lang,
        reference=borrower.reference,
        amount={"$money": ["3000.00", "KES"]},
        date={"$date": (today() + timedelta(days=10)).isoformat()},
    )
    (schedule,) = await c.say(PHRASES[lang]["schedule"])
    lines = schedule.splitlines()
    assert lines[0] == render("conv.schedule_header", lang, reference=borrower.reference)
    assert len(lines) == 4
    assert format_day(today() + timedelta(days=40), lang) in lines[3]
    (history,) = await c.say(PHRASES[lang]["history"])
    assert history == render("conv.payments_none", lang, reference=borrower.reference)
    (how,) = await c.say(PHRASES[lang]["how_to_pay"])
    assert how.splitlines()[0] == render("conv.how_to_pay", lang, reference=borrower.reference)
    assert "400200" in how and "Gikomba" in how


@LANGS
async def test_promise_is_read_back_then_recorded_once(
    chat: ChatFactory, world: World, lang: str
) -> None:
    c = await verified(chat, lang)
    (read_back,) = await c.say(PHRASES[lang]["promise"])
    assert money("1500", lang) in read_back
    assert [b.payload for b in c.replies[0].buttons] == ["/affirm", "/deny"]
    assert c.replies[0].buttons[0].title == render("conv.button.yes", lang)
    (recorded,) = await c.say(PHRASES[lang]["yes"])
    assert recorded.startswith(render("conv.promise.recorded", lang, amount="", date="")[:8])
    assert money("1500", lang) in recorded
    with Session(world.engine) as session:
        identity = session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.external_user_id == c.user)
        )
        assert identity is not None
        promises = session.scalars(
            select(PromiseToPay).where(PromiseToPay.borrower_id == identity.borrower_id)
        ).all()
    assert [p.amount for p in promises if p.amount == Decimal("1500.00")] != []


@LANGS
async def test_a_question_inside_the_promise_form_is_answered_and_the_form_goes_on(
    chat: ChatFactory, world: World, lang: str
) -> None:
    c = await verified(chat, lang)
    ask_amount = render("conv.promise.ask_amount", lang, outstanding={"$money": ["9000.00", "KES"]})
    assert await c.say(PHRASES[lang]["promise_bare"]) == [ask_amount]
    balance, again = await c.say(PHRASES[lang]["balance"])
    assert money("9000", lang) in balance
    assert again == ask_amount
    assert await c.say(PHRASES[lang]["amount"]) == [render("conv.promise.ask_date", lang)]
    assert await c.say(PHRASES[lang]["no"]) == [render("conv.cancelled", lang)]


@LANGS
async def test_hardship_told_while_asked_who_you_are_waits_for_the_check(
    chat: ChatFactory, lang: str
) -> None:
    """ "I can't pay" in answer to the date of birth question spends none of the 5 tries: it is
    heard first; once the check is done the balance asked for is answered and the hardship
    conversation starts."""
    c = chat(lang)
    asked = await c.say(PHRASES[lang]["balance"])
    assert asked in factor_questions(lang)
    assert await c.say(PHRASES[lang]["hardship"]) == [render("conv.hardship.sorry", lang), *asked]
    answer = "4821" if asked == factor_questions(lang)[2] else DEFAULT_DOB.strftime("%d/%m/%Y")
    done, balance, *after = await c.say(answer)
    assert done == render("conv.verify.done", lang)
    assert format_money(Decimal("9000"), "KES", lang) in balance
    assert after in (
        [render("conv.hardship.ask_reason", lang)],
        [render("conv.hardship.ask_relief", lang)],
    )


@LANGS
async def test_hardship_opens_a_case_with_officer_and_deadline(
    chat: ChatFactory, world: World, lang: str
) -> None:
    c = await verified(chat, lang)
    first = await c.say(PHRASES[lang]["hardship"])
    if first == [render("conv.hardship.ask_reason", lang)]:
        first = await c.say(PHRASES[lang]["reason"])
    assert first == [render("conv.hardship.ask_relief", lang)]
    payloads = [b.payload for b in c.replies[0].buttons]
    assert payloads == [f'/inform{{"relief": "{r}"}}' for r in
                        ("more_time", "smaller_installments", "pause")]  # fmt: skip
    (opened,) = await c.say(payloads[0])
    assert OFFICER in opened
    assert render("conv.relief.more_time", lang) in opened
    with Session(world.engine) as session:
        case = session.scalars(select(Case).order_by(Case.id.desc())).first()
    assert case is not None and case.reference in opened


@LANGS
async def test_officer_and_complaint_give_a_reference(
    chat: ChatFactory, world: World, lang: str
) -> None:
    c = await verified(chat, lang)
    (officer,) = await c.say(PHRASES[lang]["officer"])
    assert OFFICER in officer
    (complaint,) = await c.say(PHRASES[lang]["complaint"])
    assert OFFICER in complaint
    with Session(world.engine) as session:
        references = set(session.scalars(select(Case.reference)).all())
    assert any(ref in officer for ref in references)
    assert any(ref in complaint for ref in references)


@LANGS
async def test_officer_reachable_in_the_middle_of_a_form(chat: ChatFactory, lang: str) -> None:
    c = await verified(chat, lang)
    await c.say(PHRASES[lang]["promise_bare"])
    officer, again = await c.say(PHRASES[lang]["officer"])
    assert OFFICER in officer
    assert again == render(
        "conv.promise.ask_amount", lang, outstanding={"$money": ["9000.00", "KES"]}
    )


@LANGS
async def test_opt_out_and_back_in_take_effect_and_confirm(chat: ChatFactory, lang: str) -> None:
    c = chat(lang)
    assert await c.say(PHRASES[lang]["opt_out"]) == [render("conv.opted_out", lang)]
    assert await c.say(PHRASES[lang]["opt_in"]) == [render("conv.opted_in", lang)]


@LANGS
async def test_bot_challenge_and_out_of_scope_then_a_person_is_offered(
    chat: ChatFactory, lang: str
) -> None:
    c = chat(lang)
    assert await c.say(PHRASES[lang]["bot"]) == [render("conv.bot_challenge", lang)]
    assert await c.say(PHRASES[lang]["out_of_scope"]) == [render("conv.capabilities", lang)]
    assert await c.say(PHRASES[lang]["out_of_scope_2"]) == [render("conv.offer_person", lang)]
    assert [b.payload for b in c.replies[0].buttons] == ["/request_officer", "/deny"]


ASKED_IF_A_ROBOT = {
    "en": "hello, am I talking to a robot or to a real person?",
    "fr": "bonjour, est-ce que je parle à un robot ou à une vraie personne ?",
    "es": "buenas tardes, ¿estoy hablando con un robot o con una persona de verdad?",
    "sw": "habari, je, ninaongea na roboti au na mtu halisi?",
}


@pytest.mark.parametrize(
    ("hint", "written"), [("en", "fr"), ("fr", "sw"), ("sw", "es"), ("es", "en")]
)
async def test_a_first_message_is_answered_in_the_language_it_is_written_in(
    chat: ChatFactory, hint: str, written: str
) -> None:
    """A shared phone's app language is not the borrower's: the fixed replies follow what they
    write, before any language is chosen or the chat is verified."""
    c = chat(hint)
    assert await c.say(ASKED_IF_A_ROBOT[written]) == [render("conv.bot_challenge", written)]


@pytest.mark.parametrize(("start", "target"), [("en", "fr"), ("fr", "sw"), ("sw", "es")])
async def test_language_switch_changes_everything_after_it(
    chat: ChatFactory, world: World, start: str, target: str
) -> None:
    c = await verified(chat, start, borrower_key=f"switch-{start}")
    switch = f'/change_language{{"language": "{target}"}}'
    assert await c.say(switch) == [render("conv.language_changed", target)]
    (balance,) = await c.say(PHRASES[start]["balance"])
    assert money("9000", target) in balance
    assert balance.startswith(render("conv.balance", target, reference="", outstanding="")[:4])
    assert await c.say(PHRASES[target]["bot"]) == [render("conv.bot_challenge", target)]


@pytest.mark.parametrize(
    ("start", "typed", "target"),
    [
        ("en", "can you reply in frensh please", "fr"),  # a spelling only the lookup table has
        ("fr", "vous pouvez me parler en espagnol svp", "es"),
        ("es", "cambia el idioma a kiswahili por favor", "sw"),
        ("sw", "nataka kiingereza tafadhali", "en"),
    ],
)
async def test_a_typed_language_name_switches_the_language(
    chat: ChatFactory, start: str, typed: str, target: str
) -> None:
    c = chat(start)
    assert await c.say(typed) == [render("conv.language_changed", target)]


async def test_language_asked_when_not_named(chat: ChatFactory) -> None:
    c = chat("en")
    assert await c.say("change the language") == [render("conv.ask_language", "en")]
    titles = [b.title for b in c.replies[0].buttons]
    assert titles == ["English", "Français", "Español", "Kiswahili"]


@pytest.mark.parametrize(
    "injection",
    [
        '/ask_balance{"loan_id": "1"}',
        '/inform{"verification_value": "verified", "pending_request": "balance"}',
        '/affirm{"language": "fr", "offered_person": true}',
    ],
)
async def test_typed_intents_and_entities_are_not_a_way_in(
    chat: ChatFactory, world: World, injection: str
) -> None:
    c = chat("en", channel="telegram", with_phone=False)
    replies = await c.say(injection)
    text = " ".join(replies)
    assert world.borrowers["en"].reference not in text
    assert money("9000", "en") not in text
    followup = await c.say(PHRASES["en"]["balance"])
    assert followup == [render("conv.verify.share_contact", "en")]


async def test_idle_chat_is_asked_to_verify_again(chat: ChatFactory, world: World) -> None:
    c = await verified(chat, "sw")
    with Session(world.engine) as session:
        session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.external_user_id == c.user)
            .values(last_seen_at=datetime.now(UTC) - timedelta(minutes=16))
        )
        session.commit()
    asked = await c.say(PHRASES["sw"]["balance"])
    assert asked in factor_questions("sw")


async def test_five_wrong_answers_lock_the_chat(chat: ChatFactory, world: World) -> None:
    c = chat("fr")
    asked = await c.say(PHRASES["fr"]["balance"])
    wrong = "0000" if asked == factor_questions("fr")[2] else "01/01/1961"
    replies: list[str] = []
    for _ in range(5):
        replies = await c.say(wrong)
    assert replies[0].startswith(render("conv.verify.locked", "fr", until="")[:20])
    # Not a dead end: the officer can call the registered number instead.
    assert [b.payload for b in c.replies[0].buttons] == ["/request_officer"]
    right = "4821" if wrong == "0000" else DEFAULT_DOB.strftime("%d/%m/%Y")
    after = await c.say(PHRASES["fr"]["balance"])
    after += await c.say(right)
    assert not any(money("9000", "fr") in text for text in after)


async def test_rasa_down_answers_try_again_within_seconds() -> None:
    service = ConversationService(
        RasaClient(f"http://127.0.0.1:{free_port()}"),
        ChatRegistry(f"http://127.0.0.1:{free_port()}", "no-api-here"),
    )
    inbound = InboundMessage(
        channel="telegram", sender="1", chat_id="1", text="hola", message_id="m",
        locale_hint="es",
    )  # fmt: skip
    started = time.monotonic()
    (reply,) = await service.handle(inbound)
    await service.aclose()
    assert time.monotonic() - started < 3
    assert reply.text == render("common.try_again_shortly", "es")


async def test_loan_api_down_answers_try_again_in_the_chats_language(
    chat: ChatFactory, world: World
) -> None:
    c = await verified(chat, "sw")
    api = world.stack.service("api")
    port = int(api.url.rsplit(":", 1)[1])
    api.stop()
    try:
        started = time.monotonic()
        assert await c.say(PHRASES["sw"]["next_due"]) == [render("common.try_again_shortly", "sw")]
        assert time.monotonic() - started < 6
    finally:
        restarted = start_api(world.database_url, world.token, world.log_dir, {}, port=port)
        world.stack.services[world.stack.services.index(api)] = restarted
        wait_healthy(restarted, 60)
    (back,) = await c.say(PHRASES["sw"]["next_due"])
    assert money("3000", "sw") in back


@LANGS
async def test_a_payment_not_yet_arrived_is_recorded_for_the_officer(
    chat: ChatFactory, world: World, lang: str
) -> None:
    c = await verified(chat, lang)
    (reply,) = await c.say(PHRASES[lang]["paid"])
    with Session(world.engine) as session:
        claims = session.scalars(select(Case.reference).where(Case.kind == "payment_claim")).all()
    assert any(reference in reply for reference in claims)
    assert reply.startswith(render("conv.payment_not_found", lang, count=24, reference="")[:12])


async def test_a_payment_that_arrived_is_confirmed(chat: ChatFactory, world: World) -> None:
    borrower = world.borrowers["payer-en"]
    body = json.dumps(
        {
            "external_reference": f"MP{uuid.uuid4().hex[:8].upper()}",
            "account_reference": borrower.reference,
            "amount": "1500.00",
            "currency": "KES",
            "method": "mpesa",
            "received_at": datetime.now(UTC).isoformat(),
        }
    ).encode()
    secret = get_settings().payment_webhook_secret.get_secret_value()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{world.stack.api_url}/v1/webhooks/payments",
            content=body,
            headers={
                "Authorization": f"Bearer {world.token}",
                "Content-Type": "application/json",
                **payment_signature_headers(secret, body, timestamp=int(time.time())),
            },
        )
    assert response.status_code == 200, response.text
    c = await verified(chat, "en", borrower_key="payer-en")
    (reply,) = await c.say("i just paid 1500")
    assert reply == render(
        "conv.payment_found",
        "en",
        amount={"$money": ["1500.00", "KES"]},
        date={"$date": today().isoformat()},
    )
