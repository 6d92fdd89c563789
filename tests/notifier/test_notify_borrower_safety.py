"""Borrower safety under provider errors and waits (issue 14, defects 1, 6, 10a and 11).

Real gateways against the fake providers, on SQLite and PostgreSQL: only a user who blocked the
bot is opted out; a provider error that says the channel is wrong halts the channel's campaign
with a dead letter; one WhatsApp recipient's pair rate limit backs off that recipient only; a
text sent in parts resends none of the parts that went; and a verdict that waited too long for
a slot is asked again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from api.borrowers.models import Borrower, Channel, Consent
from api.ledger.models import ContactEvent
from api.outbox import service as outbox
from api.outbox.models import DeadLetter, DeadLetterReason, OutboxMessage, OutboxStatus
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.fakes.common import Fault, FaultSpec
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp
from i18n import render
from notifier.delivery import Deliverer
from notifier.outbox import resume_channel
from notifier.planner import Planner
from notifier.ratelimit import Limits, LocalRateLimiter, Reservation
from notifier.rules import CLOCK_SKEW_MARGIN
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound

AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # Tuesday 09:30 in Nairobi
TODAY = date(2026, 12, 1)
# Slots 50 ms apart: an error's answer is back before the next booked slot comes.
SLOW = {"telegram": Limits(20, 20), "whatsapp": Limits(20, 20)}


def _rows(bound: Bound) -> list[OutboxMessage]:
    bound.session.expire_all()
    return list(bound.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _borrowers(bound: Bound, count: int, **channels: bool) -> list[Borrower]:
    """``count`` borrowers of one Nairobi branch with an installment due in three days,
    planned at AT and committed."""
    br = f.branch(bound.session)
    people = [f.borrower(bound.session, br, **channels) for _ in range(count)]
    for person in people:
        f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()
    return people


def _opted_out(bound: Bound) -> list[Consent]:
    bound.session.expire_all()
    return list(bound.session.scalars(select(Consent).where(Consent.opted_in.is_(False))))


def _dead_letters(bound: Bound) -> list[DeadLetter]:
    bound.session.expire_all()
    return list(bound.session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def _deliverer(
    bound: Bound, gateways: dict[str, Any], limiter: Any = None, **kwargs: Any
) -> Deliverer:
    return Deliverer(
        session_factory=bound.factory,
        gateways=gateways,
        worker_id="w",
        limiter=limiter or LocalRateLimiter(SLOW),
        **kwargs,
    )


# -- defect 1: only a blocked user is an opt-out ---------------------------------------------
async def test_a_revoked_telegram_token_halts_the_campaign_and_opts_nobody_out(
    bound: Bound,
    fake_tg: tuple[FakeTelegram, ServerThread],
    telegram: TelegramGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, _ = fake_tg
    _borrowers(bound, 3)
    chats = [row.recipient for row in _rows(bound)]
    fake.state.faults.append(Fault(FaultSpec(kind="invalid_token")))  # 401 to every request

    with caplog.at_level(logging.INFO):
        stats = await _deliverer(bound, {"telegram": telegram}).run_once(now=AT)
    halted = await _deliverer(bound, {"telegram": telegram}).run_once(now=AT + timedelta(minutes=5))

    # The first refusal stopped the campaign: the sends booked after it never left.
    assert (stats.halted, stats.sent, stats.failed) == (1, 0, 0)
    assert len(fake.state.query("sendMessage", None)) == 1
    assert halted.claimed == 0  # the channel stays halted until an operator resumes it
    assert _opted_out(bound) == []
    rows = _rows(bound)
    assert {row.status for row in rows} <= {OutboxStatus.retry, OutboxStatus.pending}
    assert all(row.attempts == 0 for row in rows)  # refused: no attempt on any borrower
    [letter] = _dead_letters(bound)
    assert (letter.channel, letter.reason, letter.halts_channel, letter.resolved_at) == (
        "telegram",
        DeadLetterReason.channel_error,
        True,
        None,
    )
    assert letter.error == "InvalidToken"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("telegram halted" in r.getMessage() for r in errors)
    # Operators are alerted without personal data: no chat id, no token in any log line.
    assert not any(chat in caplog.text for chat in chats)
    assert "notifier-test-token" not in caplog.text

    # The token is fixed and an operator resumes the channel: each message goes once.
    fake.state.faults.clear()
    resume_channel(bound.session, "telegram", at=AT + timedelta(minutes=6), by="ops")
    bound.session.commit()
    sent = 0
    for minute in (7, 8, 9):  # a busy machine may send one back to the queue for a later pass
        after = await _deliverer(bound, {"telegram": telegram}).run_once(
            now=AT + timedelta(minutes=minute)
        )
        sent += after.sent

    assert sent == 3
    for chat in chats:
        assert [e["outcome"] for e in fake.state.query("sendMessage", chat)] in (
            ["invalid_token", "ok"],
            ["ok"],
        )
    assert _dead_letters(bound)[0].resolved_by == "ops"


@pytest.mark.parametrize("kind", ["template_error", "invalid_token", "unknown_code"])
async def test_a_whatsapp_template_token_or_unknown_error_halts_and_opts_nobody_out(
    bound: Bound,
    fake_wa: tuple[FakeWhatsApp, ServerThread],
    whatsapp: WhatsAppGateway,
    kind: str,
) -> None:
    fake, _ = fake_wa
    _borrowers(bound, 2, telegram=False, whatsapp=True, whatsapp_opt_in=True)
    fake.state.faults.append(Fault(FaultSpec(kind=kind)))

    stats = await _deliverer(bound, {"whatsapp": whatsapp}).run_once(now=AT)

    # A request already in flight when the refusal came back is refused too; one halt.
    requests = len(fake.state.query("messages", None))
    assert (stats.halted, stats.sent, stats.failed) == (requests, 0, 0)
    assert _opted_out(bound) == []
    [letter] = _dead_letters(bound)
    assert (letter.channel, letter.halts_channel) == ("whatsapp", True)
    assert letter.error is not None and letter.error.startswith("graph ")


async def test_a_whatsapp_user_who_cannot_receive_is_opted_out_of_whatsapp_only(
    bound: Bound, fake_wa: tuple[FakeWhatsApp, ServerThread], whatsapp: WhatsAppGateway
) -> None:
    fake, _ = fake_wa
    [person, _other] = _borrowers(bound, 2, telegram=False, whatsapp=True, whatsapp_opt_in=True)
    fake.state.faults.append(
        Fault(FaultSpec(kind="stopped_marketing", recipient=person.phone_e164.lstrip("+")))
    )

    stats = await _deliverer(bound, {"whatsapp": whatsapp}).run_once(now=AT)

    assert (stats.failed, stats.sent, stats.halted) == (1, 1, 0)
    [consent] = _opted_out(bound)
    assert (consent.borrower_id, consent.channel) == (person.id, Channel.whatsapp)
    assert _dead_letters(bound) == []


# -- defect 11: one recipient's pair rate limit ----------------------------------------------
async def test_a_whatsapp_pair_rate_limit_backs_off_that_recipient_only(
    bound: Bound, fake_wa: tuple[FakeWhatsApp, ServerThread], whatsapp: WhatsAppGateway
) -> None:
    fake, _ = fake_wa
    people = _borrowers(bound, 4, telegram=False, whatsapp=True, whatsapp_opt_in=True)
    first = _rows(bound)[0].recipient  # the first to be sent
    assert first in {p.phone_e164.lstrip("+") for p in people}
    fake.state.faults.append(Fault(FaultSpec(kind="pair_rate_limit", recipient=first)))
    limiter = LocalRateLimiter(SLOW)

    passes = []
    for second in (0, 1, 2):  # a busy machine may send one back to the queue for a later pass
        deliverer = _deliverer(bound, {"whatsapp": whatsapp}, limiter)
        passes.append(await deliverer.run_once(now=AT + timedelta(seconds=second)))

    # The other recipients went on within those 2 s (under a 6 s pause of the channel none
    # would have); the channel was never paused.
    assert sum(p.recipient_limited for p in passes) == 1
    assert sum(p.sent for p in passes) == 3
    assert sum(p.rate_limited for p in passes) == 0
    assert await limiter.paused_for("whatsapp") == 0.0
    assert all(len(fake.state.query("messages", p.phone_e164.lstrip("+"))) == 1 for p in people)
    rows = {row.recipient: row for row in _rows(bound)}
    assert rows[first].status == OutboxStatus.retry
    assert rows[first].send_at >= AT + timedelta(seconds=6)  # 131056: about 6 s per recipient
    assert rows[first].attempts == 0
    assert all(row.status == OutboxStatus.sent for chat, row in rows.items() if chat != first)
    # The shared limiter keeps that recipient waiting, and no one else.
    booking = await limiter.reserve("whatsapp", [first, "254799999999"], lead=0.0, horizon=0.6)
    assert booking.delays[0] is None and booking.delays[1] is not None


# -- defect 10a: a text in parts -------------------------------------------------------------
async def test_a_retried_text_in_parts_sends_only_the_parts_that_did_not_go(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    fake, _ = fake_tg
    br = f.branch(bound.session)
    person = f.borrower(bound.session, br)
    args = {"reference": "K-1", "officer_name": "Amina " * 1500}  # about 9,000 characters
    outbox.enqueue(
        session=bound.session,
        business_key="test:long-update",
        purpose="case_update",
        channel="telegram",
        recipient="777000111",
        locale="en",
        message_key="cases.update.acknowledged",
        args=args,
        borrower_id=person.id,
        send_at=AT,
    )
    bound.session.commit()
    # The first part goes; the second meets a 502.
    fake.state.faults.append(
        Fault(FaultSpec(kind="server_error", recipient="777000111", after=1, times=1))
    )

    first = await _deliverer(bound, {"telegram": telegram}).run_once(now=AT)
    [row] = _rows(bound)
    retry = await _deliverer(bound, {"telegram": telegram}).run_once(now=row.send_at)

    assert (first.retried, retry.sent) == (1, 1)
    log = fake.state.query("sendMessage", "777000111")
    assert [e["outcome"] for e in log] == ["ok", "server_error", "ok", "ok"]
    delivered = [str(e["payload"]["text"]) for e in log if e["outcome"] == "ok"]
    full = render("cases.update.acknowledged", "en", **args)
    assert len(delivered) == 3 and len(set(delivered)) == 3  # no part twice
    assert " ".join(delivered).split() == full.split()
    assert [row.status for row in _rows(bound)] == [OutboxStatus.sent]


# -- defect 6: a verdict that waited too long is asked again ---------------------------------
class _NoRoomFor:
    """A shared limiter whose channels are fully booked by other workers for a while."""

    def __init__(self, inner: LocalRateLimiter, seconds: float) -> None:
        self._inner = inner
        self._until = time.monotonic() + seconds

    async def reserve(self, channel: str, recipients: Sequence[str], **kwargs: Any) -> Reservation:
        if time.monotonic() < self._until:
            return Reservation((None,) * len(recipients), retry_in=0.1)
        return await self._inner.reserve(channel, recipients, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _clock_from(start: datetime) -> Callable[[], datetime]:
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


async def test_a_verdict_kept_waiting_is_judged_again_for_an_opt_out_and_19_00(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """Claimed and judged at 18:57:58.6 in Nairobi; the channel has no free slot for 2.5 s,
    during which one borrower opts out and the clock passes 18:58, where the 08:00-19:00 window
    stops allowing sends (its end less the 2-minute clock-skew margin, row F-13). Neither
    message may go."""
    fake, _ = fake_tg
    [quitter, _other] = _borrowers(bound, 2)
    # 18:57:58.6 EAT
    evening = datetime(2026, 12, 1, 15, 59, 58, 600000, tzinfo=UTC) - CLOCK_SKEW_MARGIN

    async def opt_out_meanwhile() -> None:
        await asyncio.sleep(1.0)
        with bound.factory() as session, session.begin():
            session.add(
                Consent(
                    borrower_id=quitter.id,
                    channel=Channel.telegram,
                    opted_in=False,
                    opted_out_at=evening + timedelta(seconds=1),
                    source="chat",
                )
            )

    deliverer = _deliverer(
        bound,
        {"telegram": telegram},
        _NoRoomFor(LocalRateLimiter(SLOW), 2.5),
        clock=_clock_from(evening),
    )
    stats, _ = await asyncio.gather(deliverer.run_once(), opt_out_meanwhile())

    assert fake.state.query("sendMessage", None) == []
    assert (stats.claimed, stats.rejudged, stats.sent) == (2, 2, 0)
    rows = {row.borrower_id: row for row in _rows(bound)}
    assert (rows[quitter.id].status, rows[quitter.id].last_error) == (
        OutboxStatus.suppressed,
        "opted_out",
    )
    [later] = [row for borrower, row in rows.items() if borrower != quitter.id]
    assert later.status == OutboxStatus.pending
    # Rescheduled to the next morning's window, at 08:02 in Nairobi (its start and the margin).
    assert later.send_at == datetime(2026, 12, 2, 5, 0, tzinfo=UTC) + CLOCK_SKEW_MARGIN


async def test_a_send_whose_slot_comes_after_the_window_closed_is_held_and_rescheduled(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """F-3 at the slot: judged at 18:57:58.4 in Nairobi, inside the window (which stops
    allowing sends at 18:58, its end less the clock-skew margin), a reminder gets no slot for
    1.8 s. At its slot the window has closed: it does not leave, goes back to the queue until
    18:58, and is then rescheduled to the next morning with its ledger event."""
    fake, _ = fake_tg
    _borrowers(bound, 1)
    closes = datetime(2026, 12, 1, 15, 58, tzinfo=UTC)  # 18:58 EAT
    deliverer = _deliverer(
        bound,
        {"telegram": telegram},
        _NoRoomFor(LocalRateLimiter(SLOW), 1.8),
        clock=_clock_from(closes - timedelta(seconds=1.6)),
    )
    stats = await deliverer.run_once()

    assert fake.state.query("sendMessage", None) == []
    assert (stats.claimed, stats.sent, stats.window_closed, stats.rejudged) == (1, 0, 1, 0)
    [row] = _rows(bound)
    assert (row.status, row.attempts) == (OutboxStatus.pending, 0)
    assert closes <= row.send_at < closes + timedelta(seconds=3)

    later = await _deliverer(bound, {"telegram": telegram}).run_once(now=row.send_at)

    assert (later.claimed, later.rescheduled, later.sent) == (1, 1, 0)
    [row] = _rows(bound)
    assert row.send_at == datetime(2026, 12, 2, 5, 0, tzinfo=UTC) + CLOCK_SKEW_MARGIN
    [event] = bound.session.scalars(
        select(ContactEvent).where(ContactEvent.decision == "rescheduled")
    ).all()
    assert (event.rule, event.detail["outbox_id"]) == ("quiet_hours", row.id)
    assert event.detail["local_send_at"] == "2026-12-02T08:02:00+03:00"


async def test_a_verdict_booked_within_the_bound_is_not_judged_again(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """The hot path: a chunk booked soon after its claim costs no second judging."""
    _borrowers(bound, 3)
    stats = await _deliverer(bound, {"telegram": telegram}).run_once(now=AT)

    assert (stats.sent, stats.rejudged) == (3, 0)
