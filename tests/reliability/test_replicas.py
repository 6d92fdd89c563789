"""Several Rasa replicas (issue 16): a conversation can move between them and lose nothing.

On the session's production topology (``gateway_rig.py``): two Rasa replicas sharing the SQL
tracker store on PostgreSQL and the Redis lock store, two gateways routing each conversation to
its replica. A promise is the test's thread: it spans three turns (the request, the identity
answer, the confirmation) with a form open in the tracker, and the loan API must end with
exactly one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.promises.models import PromiseToPay
from bot.channels.base import InboundMessage
from bot.conversation import ChatRegistry, ConversationService
from bot.rasa_client import RasaClient
from bot.rasa_pool import rank
from i18n import render
from i18n.messages.common import TRY_AGAIN_KEY
from tests.api.factories import DEFAULT_DOB
from tests.api.factories import today as branch_today
from tests.bot.conftest import wait_until
from tests.reliability.gateway_rig import Rig, post_whatsapp, wa_body

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(1800)]

TURNS = ("I want to pay 1500 next friday", f"{DEFAULT_DOB:%d/%m/%Y}", "yes")


def _borrower(rig: Rig) -> str:
    """A borrower owing 4,000 KES, due in 5 days; answers to DEFAULT_DOB. Returns the phone."""
    due = branch_today() + timedelta(days=5)
    return rig.add_borrower(dob=DEFAULT_DOB, national_id="11114821", due=due, amount="4000.00")


def _promises(rig: Rig, phone: str) -> list[tuple[Decimal, str]]:
    with Session(rig.engine) as session:
        rows = session.execute(
            select(PromiseToPay.amount, PromiseToPay.promised_date)
            .join(Borrower, Borrower.id == PromiseToPay.borrower_id)
            .where(Borrower.phone_e164 == phone)
        ).all()
    return [(amount, day.isoformat()) for amount, day in rows]


def _replica_process(rig: Rig, url: str) -> int:
    [service] = [s for s in rig.stack.services if s.url == url]
    return service.process.pid


async def test_a_conversation_whose_turns_alternate_between_replicas_makes_one_promise(
    rig: Rig,
) -> None:
    """Turn 1 on replica A, turn 2 on B, turn 3 on A: each replica reads the tracker the other
    saved (the open promise form, the request kept through the check)."""
    phone = _borrower(rig)
    assert rig.stack.api_url is not None and len(rig.stack.rasa_urls) == 2
    services = [
        ConversationService(RasaClient(url), ChatRegistry(rig.stack.api_url, rig.token))
        for url in rig.stack.rasa_urls
    ]
    wa_id = phone.lstrip("+")
    replies: list[list[str]] = []
    try:
        for n, body in enumerate(TURNS):
            inbound = InboundMessage(
                channel="whatsapp",
                sender=wa_id,
                chat_id=wa_id,
                text=body,
                message_id=f"wamid.alt-{wa_id}-{n}",
                locale_hint="en",
                proven_phone=phone,
            )
            answer = await services[n % 2].handle(inbound)
            replies.append([message.text for message in answer])
    finally:
        for service in services:
            await service.aclose()
    assert render(TRY_AGAIN_KEY, "en") not in [text for turn in replies for text in turn]
    assert any("1,500" in text for text in replies[1]), replies  # the kept promise, to confirm
    [(amount, _day)] = _promises(rig, phone)
    assert amount == Decimal("1500.00")


def test_a_replica_killed_mid_form_hands_the_conversation_to_the_other(rig: Rig) -> None:
    """Through the gateways: the promise form is open on the conversation's replica when it is
    SIGKILLed; the confirmation goes to the other replica at once, which carries on from the
    shared tracker store, and the loan API ends with one promise. (Last in the module: the rig
    has one replica left after it.)"""
    phone = _borrower(rig)
    wa_id = phone.lstrip("+")
    sender = rig.conversation("whatsapp", wa_id)
    home = rank(sender, rig.stack.rasa_urls)[0]

    def turn(n: int, body: str) -> list[str]:
        before = len(rig.whatsapp.sent_texts(wa_id))
        raw = wa_body(wa_id, body, f"wamid.kill-{wa_id}-{n}")
        assert post_whatsapp(rig.gateways[n % 2].url, raw).status_code == 200
        wait_until(lambda: len(rig.whatsapp.sent_texts(wa_id)) > before, timeout=120)
        time.sleep(0.5)  # a turn may answer in several messages
        return rig.whatsapp.sent_texts(wa_id)[before:]

    turn(0, TURNS[0])
    asked = turn(1, TURNS[1])
    assert any("1,500" in text for text in asked), asked  # the form waits for the confirmation

    with contextlib.suppress(ProcessLookupError):
        os.killpg(_replica_process(rig, home), signal.SIGKILL)
    answered = turn(2, TURNS[2])

    assert render(TRY_AGAIN_KEY, "en") not in answered
    [(amount, _day)] = _promises(rig, phone)
    assert amount == Decimal("1500.00")
