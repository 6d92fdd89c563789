# ruff: noqa: F811 (the imported fixtures are test arguments of the same name)
"""Reliability matrix, the conversation's rows: B4, B8, B9, B11, P3, P4.

The API rows run on SQLite and PostgreSQL (the ``api`` fixture of ``tests/api``); the chat rows
run through the real stack (gateway conversation service, Rasa, the action server and the loan
API, ``tests/conversation/conftest.py``).
"""

from __future__ import annotations

import logging
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, ChannelIdentity, Consent
from api.cases.models import Case
from api.loans.models import Loan
from i18n import format_money, render
from tests.api.conftest import Api, api, clock  # noqa: F401 (fixtures, used by name)
from tests.api.factories import (
    DEFAULT_DOB,
    DEFAULT_NATIONAL_ID_LAST4,
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
    unique_phone,
)
from tests.api.test_verification import SCHEDULE
from tests.conversation.conftest import Chat, ChatFactory, World, chat, world  # noqa: F401
from tests.conversation.phrases import PHRASES

# The one-answer form the API always took, so these tests also run against the code before the
# escalation and the offered set (where they fail).
WRONG_DOB = {"factor": "dob", "value": "1990-01-01"}
RIGHT_DOB = {"factor": "dob", "value": DEFAULT_DOB.isoformat()}


def _borrower(session: Session) -> Borrower:
    branch = make_branch(session)
    borrower = make_borrower(session, branch, officer=make_officer(session, branch))
    make_loan(session, borrower, schedule=SCHEDULE)
    return borrower


def _fail(api: Api, base: str, times: int) -> list[int]:
    return [api.post(f"{base}/complete", WRONG_DOB).status_code for _ in range(times)]


def test_B8_locked_after_5_then_longer_then_held_for_an_officer_with_a_case(
    api: Api, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """5 failures lock for 30 min, the next 5 for 60 min; the 15th failure within 24 h holds
    the chat until an officer unlocks it, and raises a case for the phone's borrower."""
    borrower = _borrower(session)
    user = "b8-254700"
    base = f"/v1/identities/whatsapp/{user}/verification"
    assert api.post(f"{base}/start", {"phone": borrower.phone_e164}).status_code == 200

    assert _fail(api, base, 5) == [401, 401, 401, 401, 423]
    assert api.post(f"{base}/complete", RIGHT_DOB).status_code == 423
    api.clock.advance(minutes=30, seconds=1)

    second = [api.post(f"{base}/complete", WRONG_DOB) for _ in range(5)]
    assert [r.status_code for r in second] == [401, 401, 401, 401, 423]
    until = second[-1].json()["locked_until"]
    assert until.startswith((api.clock.now + timedelta(minutes=60)).strftime("%Y-%m-%dT%H:%M"))
    api.clock.advance(minutes=30)
    assert api.post(f"{base}/complete", RIGHT_DOB).status_code == 423  # still locked at 30 min
    api.clock.advance(minutes=30, seconds=1)

    with caplog.at_level(logging.WARNING):
        third = [api.post(f"{base}/complete", WRONG_DOB) for _ in range(5)]
    assert [r.status_code for r in third] == [401, 401, 401, 401, 423]
    assert third[-1].json()["held"] is True
    assert third[-1].json()["locked_until"] is None
    assert any("held" in record.getMessage() for record in caplog.records)  # the alert
    cases = list(session.scalars(select(Case).where(Case.borrower_id == borrower.id)))
    assert [(c.kind.value, c.category) for c in cases] == [("officer_request", "verification_held")]

    # Held: no time unlocks it, not even a day later.
    api.clock.advance(days=2)
    assert api.post(f"{base}/complete", RIGHT_DOB).status_code == 423
    assert api.post(f"{base}/start", {"phone": borrower.phone_e164}).status_code == 423
    assert api.get(f"/v1/identities/whatsapp/{user}").json()["status"] == "locked"

    # The officer unlocks it after calling the borrower; the right answer then passes.
    assert api.post(f"/v1/identities/whatsapp/{user}/unlock", {}).status_code == 204
    assert api.post(f"{base}/start", {"phone": borrower.phone_e164}).status_code == 200
    assert api.post(f"{base}/complete", RIGHT_DOB).status_code == 200


def test_B8_a_lockout_window_is_24_hours(api: Api, session: Session) -> None:
    """Failures a day apart start over: 30 minutes again, never a hold."""
    borrower = _borrower(session)
    base = "/v1/identities/telegram/b8-window/verification"
    api.post(f"{base}/start", {"phone": borrower.phone_e164})
    for _ in range(3):
        assert _fail(api, base, 5)[-1] == 423
        api.clock.advance(hours=24, seconds=1)
    response = [api.post(f"{base}/complete", WRONG_DOB) for _ in range(5)][-1]
    assert response.json()["locked_until"].startswith(
        (api.clock.now + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    )


def test_B8_only_an_offered_factor_is_checked_and_two_answers_are_one_try(
    api: Api, session: Session
) -> None:
    """The API checks answers only against the factors this check offered; an answer to
    another factor counts nothing. Both factors at once are one try, and must both match."""
    borrower = _borrower(session)
    base = "/v1/identities/telegram/b8-offered/verification"
    # Before any start nothing is offered: nothing is checked, nothing counted.
    assert api.post(f"{base}/complete", RIGHT_DOB).json()["code"] == "verification_not_started"
    started = api.post(f"{base}/start", {"phone": borrower.phone_e164}).json()

    identity = session.scalar(
        select(ChannelIdentity).where(ChannelIdentity.external_user_id == "b8-offered")
    )
    assert identity is not None
    identity.pending_factor = "dob"  # an institution that offers the date of birth only
    session.commit()
    refused = api.post(f"{base}/complete", {"factor": "national_id", "value": "0000"})
    assert (refused.status_code, refused.json()["code"]) == (409, "factor_not_offered")
    session.refresh(identity)
    assert identity.failed_attempts == 0

    assert started["factors"] == ["dob", "national_id"]  # both offered by default
    identity.pending_factor = "dob,national_id"
    session.commit()
    both_wrong_id = {"answers": {"dob": DEFAULT_DOB.isoformat(), "national_id": "0000"}}
    assert api.post(f"{base}/complete", both_wrong_id).json()["attempts_left"] == 4
    both = {"answers": {"dob": DEFAULT_DOB.isoformat(), "national_id": DEFAULT_NATIONAL_ID_LAST4}}
    assert api.post(f"{base}/complete", both).status_code == 200


def test_B8_typed_answers_never_reach_the_logs(
    api: Api, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    borrower = _borrower(session)
    base = "/v1/identities/telegram/b8-logs/verification"
    canary = {"answers": {"dob": "1911-11-11", "national_id": "9731"}}
    one_canary = {"factor": "dob", "value": "1911-11-11"}
    with caplog.at_level(logging.DEBUG):
        api.post(f"{base}/start", {"phone": borrower.phone_e164})
        for i in range(16):
            api.post(f"{base}/complete", canary if i % 2 else one_canary)
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert "1911-11-11" not in logged and "9731" not in logged
    assert borrower.phone_e164 not in logged


def _transcript(api: Api, user: str, phone: str, attempts: int) -> list[tuple[int, bytes]]:
    base = f"/v1/identities/telegram/{user}"
    steps = [api.post(f"{base}/verification/start", {"phone": phone})]
    steps += [
        api.post(f"{base}/verification/complete", {"factor": "national_id", "value": "0000"})
        for _ in range(attempts)
    ]
    steps.append(api.post(f"{base}/callback", {"phone": phone}))
    steps.append(api.get(base))
    return [(r.status_code, r.content) for r in steps]


def test_P4_unknown_and_registered_phones_get_byte_identical_answers(
    api: Api, session: Session
) -> None:
    """Start, 15 failures (through lockouts and the hold), a callback request and the status:
    the same bytes whether or not a borrower has the phone."""
    known = _borrower(session)
    unknown = unique_phone()

    def run(user: str, phone: str) -> list[tuple[int, bytes]]:
        answers = []
        for lock in range(3):
            answers += _transcript(api, f"{user}", phone, 5)
            api.clock.advance(minutes=30 * 2**lock, seconds=1)
        return answers

    start = api.clock.now
    known_answers = run("p4-known", known.phone_e164)
    api.clock.now = start
    unknown_answers = run("p4-unknown", unknown)
    assert known_answers == unknown_answers
    assert any(code == 423 and b'"held":true' in body for code, body in known_answers)


def test_P4_unknown_and_registered_phones_answer_in_similar_time(
    api: Api, session: Session
) -> None:
    """Median time of a failed check, 15 each, alternating: within 25 % (and 5 ms) of each
    other, so that timing does not tell who is a client."""
    known = _borrower(session)
    unknown = unique_phone()
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(15):
        for name, phone in (("known", known.phone_e164), ("unknown", unknown)):
            base = f"/v1/identities/telegram/p4t-{name}-{i}/verification"
            api.post(f"{base}/start", {"phone": phone})
            began = time.perf_counter()
            response = api.post(f"{base}/complete", WRONG_DOB)
            timings[name].append(time.perf_counter() - began)
            assert response.status_code == 401
    known_median = statistics.median(timings["known"])
    unknown_median = statistics.median(timings["unknown"])
    assert abs(known_median - unknown_median) <= max(0.25 * known_median, 0.005)


# --- through the running stack (Rasa, the action server, the loan API) ----------------------


def _identity(world: World, c: Chat) -> ChannelIdentity:
    with Session(world.engine) as session:
        identity = session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.external_user_id == c.user)
        )
        assert identity is not None
        return identity


def _owed(lang: str) -> list[str]:
    return [format_money(Decimal(a), "KES", lang) for a in ("9000", "3000")]


@pytest.mark.stack
async def test_B4_guessing_in_chat_is_rate_limited_with_generic_replies(
    chat: ChatFactory, world: World
) -> None:
    """Five wrong answers lock the chat (5 failed lookups per chat, then 30 min), every reply
    generic (nothing about whether the phone is a client's); the lock is what an alert counts
    (the 15th failure in 24 h holds the chat and alerts: test_B8_... above)."""
    c = chat("en")
    await c.say(PHRASES["en"]["balance"])
    replies = [await c.say(f"01/01/19{60 + i}") for i in range(6)]
    assert [r[0] for r in replies[:4]] == [
        render("conv.verify.failed", "en", count=n) for n in (4, 3, 2, 1)
    ]
    assert replies[4][0].startswith(render("conv.verify.locked", "en", until="")[:25])
    assert _identity(world, c).locked_until is not None
    assert not any(any(o in t for o in _owed("en")) for r in replies for t in r)


@pytest.mark.stack
@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "stop"),
        ("en", "STOP!!"),
        ("en", "unsubscribe"),
        ("en", "please stop messaging me"),
        ("fr", "arrêtez de m'envoyer des messages"),
        ("es", "ya no me manden mensajes"),
        ("sw", "acha kunitumia ujumbe"),
    ],
)
async def test_B9_opt_out_variants_are_recognised_with_one_confirmation(
    chat: ChatFactory, world: World, lang: str, text: str
) -> None:
    """Each variant: exactly one reply, the confirmation, and the chat's consent already off
    when it arrives (the notifier reads it before its next send)."""
    c = chat(lang)
    assert await c.say(text) == [render("conv.opted_out", lang)]
    assert _identity(world, c).opted_in is False


@pytest.mark.stack
async def test_B9_opt_out_mid_verification_reaches_the_borrowers_consent(
    chat: ChatFactory, world: World
) -> None:
    c = chat("sw", borrower_key="switch-sw")
    await c.say(PHRASES["sw"]["balance"])
    replies = await c.say("STOP")
    assert replies[0] == render("conv.opted_out", "sw")
    assert replies.count(render("conv.opted_out", "sw")) == 1
    await c.say("4821")
    identity = _identity(world, c)
    with Session(world.engine) as session:
        consent = session.scalar(select(Consent).where(Consent.borrower_id == identity.borrower_id))
    assert consent is not None and consent.opted_in is False


ANGRY = {
    "en": "this is bullshit, i lost my job and you keep texting me. i CANNOT pay!!",
    "sw": "mnanisumbua sana! nimefutwa kazi, sina pesa ya kulipa, acheni ujinga",
}


@pytest.mark.stack
@pytest.mark.parametrize("lang", sorted(ANGRY))
async def test_B11_angry_hardship_gets_a_calm_reply_an_officer_case_and_a_pause(
    chat: ChatFactory, world: World, lang: str
) -> None:
    """An angry, profane hardship message: acknowledged kindly (no payment asked, no amount
    owed sent back), a hardship case for the officer, collection reminders paused."""
    c = chat(lang, borrower_key=f"switch-{lang}")
    first = await c.say(ANGRY[lang])
    assert first[0] in (
        render("conv.hardship.sorry", lang),
        render("conv.hardship.sorry_unsure", lang),
    )
    assert not any(any(o in t for o in _owed(lang)) for t in first)
    if first[0] == render("conv.hardship.sorry_unsure", lang):
        first = await c.say("/hardship")
    after = await c.say("4821")
    assert after[0] == render("conv.verify.done", lang)
    if render("conv.hardship.ask_reason", lang) in after:
        after = await c.say(ANGRY[lang])
    assert after[-1] == render("conv.hardship.ask_relief", lang)
    opened = await c.say('/inform{"relief": "more_time"}')
    assert not any(any(o in t for o in _owed(lang)) for t in opened)
    borrower_id = _identity(world, c).borrower_id
    with Session(world.engine) as session:
        kinds = session.scalars(select(Case.kind).where(Case.borrower_id == borrower_id)).all()
        paused = session.scalars(
            select(Loan.collection_paused).where(Loan.borrower_id == borrower_id)
        ).all()
    assert "hardship" in [k.value for k in kinds]
    assert paused and all(paused)


@pytest.mark.stack
async def test_P3_no_amount_before_verification_nor_after_the_idle_timeout(
    chat: ChatFactory, world: World
) -> None:
    c = chat("fr")
    asked = await c.say(PHRASES["fr"]["balance"])
    assert asked == [render("conv.verify.ask_any", "fr")]
    done, balance = await c.say("4821")
    assert done == render("conv.verify.done", "fr")
    assert any(o in balance for o in _owed("fr"))
    with Session(world.engine) as session:
        identity = session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.external_user_id == c.user)
        )
        assert identity is not None
        identity.last_seen_at = datetime.now(UTC) - timedelta(minutes=16)
        session.commit()
    again = await c.say(PHRASES["fr"]["balance"])
    assert again == [render("conv.verify.ask_any", "fr")]


@pytest.mark.stack
async def test_P4_unknown_and_registered_phones_read_the_same_chat(
    chat: ChatFactory, world: World
) -> None:
    """A chat from a registered phone and one from a phone no borrower has: the same replies,
    word for word, to a question, thanks, wrong answers and a callback request; turn
    times within 30 % of each other."""
    known = chat("es")
    stranger = chat("es")
    stranger.phone = unique_phone()
    script = [
        PHRASES["es"]["balance"],
        "gracias",
        "01/01/1961",
        "0000",
        "quiero que mi asesor me llame",
    ]
    script += ["01/01/1962", "1234"]  # 4 wrong: the lock's time would differ by the clock
    times: dict[str, float] = {"known": 0.0, "stranger": 0.0}
    transcripts: dict[str, list[list[str]]] = {"known": [], "stranger": []}
    for text in script:
        for name, c in (("known", known), ("stranger", stranger)):
            began = time.perf_counter()
            transcripts[name].append(await c.say(text))
            times[name] += time.perf_counter() - began
    assert transcripts["known"] == transcripts["stranger"]
    # Within 30 % (or a second, on a busy machine): no reply waits on whether a client exists.
    assert abs(times["known"] - times["stranger"]) <= max(0.3 * max(times.values()), 1.0)


def test_P4_a_hardship_callback_is_a_hardship_case_and_the_same_answer(
    api: Api, session: Session
) -> None:
    """Before any check: the officer calls back the registered number; a borrower who told of
    hardship gets a hardship case (collection paused); a stranger's phone, the same answer."""
    borrower = _borrower(session)
    body = {"phone": borrower.phone_e164, "hardship": True, "borrower_words": "lost my job"}
    known = api.post("/v1/identities/telegram/cb-known/callback", body)
    again = api.post("/v1/identities/telegram/cb-known/callback", body)
    stranger = api.post(
        "/v1/identities/telegram/cb-stranger/callback", {**body, "phone": unique_phone()}
    )
    assert (known.status_code, known.content) == (stranger.status_code, stranger.content)
    assert again.content == known.content
    cases = list(session.scalars(select(Case).where(Case.borrower_id == borrower.id)))
    assert [(c.kind.value, c.category, c.borrower_words) for c in cases] == [
        ("hardship", "callback", "lost my job")
    ]
    loans = list(session.scalars(select(Loan).where(Loan.borrower_id == borrower.id)))
    assert all(loan.collection_paused for loan in loans)
    assert api.post("/v1/identities/telegram/cb-none/callback", {}).json()["code"] == (
        "phone_required"
    )
