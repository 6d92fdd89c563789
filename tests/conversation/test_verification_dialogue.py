"""The identity check as borrowers meet it, through the running stack, in the four languages:
answers in the form they know, no try spent on what is no answer, requests kept through the
check, sympathy before procedure, and an officer's call back instead of a dead end."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, ChannelIdentity
from api.cases.models import Case, CaseStatus
from api.promises.models import PromiseToPay
from i18n import SUPPORTED_LOCALES, format_money, render
from tests.api.factories import DEFAULT_DOB, today
from tests.conversation.conftest import Chat, ChatFactory, World
from tests.conversation.phrases import PHRASES

pytestmark = pytest.mark.stack
LANGS = pytest.mark.parametrize("lang", SUPPORTED_LOCALES)
# DEFAULT_DOB (14 March 1985) and an ID number ending in the default 4821, as people write them.
DOB_IN_WORDS = {
    "en": "I was born on March 14, 1985",
    "fr": "je suis née le 14 mars 1985",
    "es": "nací el 14 de marzo del 85",
    "sw": "nilizaliwa 14 Machi 1985",
}
FULL_ID = {
    "en": "ok. my ID number is 28114821",
    "fr": "CNI 1752198804821",
    "es": "mi cédula es 1122334821",
    "sw": "namba ya kitambulisho ni 30114821",
}
THANKS = {"en": "ok thanks", "fr": "merci", "es": "gracias", "sw": "asante sana"}
YES = {"en": "yes", "fr": "oui", "es": "sí", "sw": "ndio"}
AMOUNT = {"en": "500 bob", "fr": "500 KES", "es": "500 chelines", "sw": "shilingi 500"}
WHEN = {"en": "next friday", "fr": "vendredi prochain", "es": "el viernes", "sw": "ijumaa"}
CALL_ME = {
    "en": "please ask my officer to call me",
    "fr": "je veux que mon agent m'appelle",
    "es": "quiero que mi asesor me llame",
    "sw": "afisa anipigie",
}


def identity_of(world: World, chat: Chat) -> ChannelIdentity:
    with Session(world.engine) as session:
        identity = session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.external_user_id == chat.user)
        )
        assert identity is not None
        return identity


def callback_cases(world: World, lang: str) -> int:
    with Session(world.engine) as session:
        borrower_id = session.scalar(
            select(Borrower.id).where(Borrower.phone_e164 == world.borrowers[lang].phone)
        )
        return len(
            session.scalars(
                select(Case).where(Case.borrower_id == borrower_id, Case.category == "callback")
            ).all()
        )


def resolve_open_cases(world: World, lang: str) -> None:
    with Session(world.engine) as session, session.begin():
        borrower_id = session.scalar(
            select(Borrower.id).where(Borrower.phone_e164 == world.borrowers[lang].phone)
        )
        for case in session.scalars(select(Case).where(Case.borrower_id == borrower_id)):
            if case.status != CaseStatus.resolved:
                case.status = CaseStatus.resolved
                case.resolved_at = datetime.now(UTC)


def ask(lang: str) -> str:
    return render("conv.verify.ask_any", lang)


def kes(amount: str, lang: str) -> str:
    return format_money(Decimal(amount), "KES", lang)


@LANGS
async def test_the_check_offers_both_factors_and_a_full_id_passes(
    chat: ChatFactory, world: World, lang: str
) -> None:
    c = chat(lang)
    assert await c.say(PHRASES[lang]["balance"]) == [ask(lang)]
    assert [b.payload for b in c.replies[0].buttons] == ["/request_officer"]
    done, balance = await c.say(FULL_ID[lang])
    assert done == render("conv.verify.done", lang)
    assert kes("9000", lang) in balance
    assert identity_of(world, c).failed_attempts == 0


@LANGS
async def test_a_date_of_birth_in_words_passes(chat: ChatFactory, world: World, lang: str) -> None:
    c = chat(lang)
    await c.say(PHRASES[lang]["next_due"])
    done, next_due = await c.say(DOB_IN_WORDS[lang])
    assert done == render("conv.verify.done", lang)
    assert kes("3000", lang) in next_due


@LANGS
async def test_both_factors_in_one_message_pass(chat: ChatFactory, lang: str) -> None:
    c = chat(lang)
    await c.say(PHRASES[lang]["balance"])
    both = f"{FULL_ID[lang]}, {DEFAULT_DOB.strftime('%d/%m/%Y')}"
    done, balance = await c.say(both)
    assert done == render("conv.verify.done", lang)
    assert kes("9000", lang) in balance


@LANGS
async def test_thanks_and_yes_mid_check_cost_no_try_and_say_what_is_needed(
    chat: ChatFactory, world: World, lang: str
) -> None:
    c = chat(lang)
    await c.say(PHRASES[lang]["balance"])
    for text in (THANKS[lang], YES[lang], "12/05/2031"):
        replies = await c.say(text)
        assert replies[-1] == ask(lang)  # what is needed, said plainly
        assert not any(render("conv.verify.failed", lang, count=4)[:15] in r for r in replies)
        assert not any(kes("9000", lang) in r for r in replies)
    assert identity_of(world, c).failed_attempts == 0
    # A wrong answer of the right form is a try.
    (failed, again) = await c.say("01/01/1961")
    assert failed == render("conv.verify.failed", lang, count=4)
    assert again == ask(lang)


@LANGS
async def test_a_question_asked_during_the_check_is_answered_after_it(
    chat: ChatFactory, lang: str
) -> None:
    c = chat(lang)
    await c.say(PHRASES[lang]["balance"])
    noted, again = await c.say(PHRASES[lang]["next_due"])
    assert (noted, again) == (render("conv.verify.after_check", lang), ask(lang))
    done, balance, next_due = await c.say("4821")
    assert done == render("conv.verify.done", lang)
    assert kes("9000", lang) in balance and kes("3000", lang) in next_due


@LANGS
async def test_an_amount_and_a_day_given_during_the_check_become_the_promise(
    chat: ChatFactory, world: World, lang: str
) -> None:
    """ "10 000 FCFA", then "vendredi prochain", while asked who you are: kept, and read back
    as the promise to confirm once the check passes; recorded exactly once."""
    c = chat(lang)
    await c.say(PHRASES[lang]["balance"])
    for text in (AMOUNT[lang], WHEN[lang]):
        assert await c.say(text) == [render("conv.verify.after_check", lang), ask(lang)]
    assert identity_of(world, c).failed_attempts == 0
    done, balance, read_back = await c.say(DEFAULT_DOB.strftime("%d/%m/%Y"))
    assert done == render("conv.verify.done", lang)
    assert kes("9000", lang) in balance
    assert kes("500", lang) in read_back
    assert [b.payload for b in c.replies[-1].buttons] == ["/affirm", "/deny"]
    (recorded,) = await c.say(YES[lang])
    assert kes("500", lang) in recorded
    borrower_id = identity_of(world, c).borrower_id
    with Session(world.engine) as session:
        promises = session.scalars(
            select(PromiseToPay).where(
                PromiseToPay.borrower_id == borrower_id, PromiseToPay.amount == Decimal("500.00")
            )
        ).all()
    assert len(promises) == 1
    assert promises[0].promised_date.weekday() == 4  # Friday
    assert promises[0].promised_date > today()


@LANGS
async def test_hardship_is_heard_first_and_a_callback_needs_no_check(
    chat: ChatFactory, world: World, lang: str
) -> None:
    resolve_open_cases(world, lang)  # earlier tests' cases: a new request would only add to them
    c = chat(lang)
    sorry, *asked = await c.say(PHRASES[lang]["hardship"])
    assert sorry == render("conv.hardship.sorry", lang)
    assert asked == [ask(lang)]
    before = callback_cases(world, lang)
    replies = await c.say(CALL_ME[lang])
    assert replies[0] == render("conv.callback.requested", lang)
    assert not any(kes("9000", lang) in r or world.borrowers[lang].reference in r for r in replies)
    assert identity_of(world, c).borrower_id is None  # still not verified
    # One case for the officer, on the borrower whose registered phone the chat proved.
    assert callback_cases(world, lang) == before + 1


async def test_a_language_the_bot_does_not_speak_gets_the_list_in_all_four(
    chat: ChatFactory,
) -> None:
    c = chat("en")
    replies = await c.say("/other_language")
    assert replies == [render("conv.languages", locale) for locale in SUPPORTED_LOCALES]
