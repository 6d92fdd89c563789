"""Pacing of deliveries on a busy machine: sends that wake late, sends recorded as they go,
and a chat's next message a second after a held-up one (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from api.outbox.models import OutboxStatus
from bot.channels.base import OutboundMessage, SendOutcome, SendResult
from bot.channels.telegram import TelegramGateway
from bot.fakes.common import Fault, FaultSpec
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from notifier.delivery import Deliverer
from notifier.planner import Planner
from notifier.ratelimit import Limits, LocalRateLimiter, RateLimiter, RedisRateLimiter
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound
from tests.notifier.delivery_setup import AT, TODAY, outbox_rows, plan_reminders, telegram_at


class _StallsOnce:
    """A gateway that blocks the event loop after its first send, as a busy machine does."""

    def __init__(self, inner: TelegramGateway, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds

    async def send(self, message: OutboundMessage) -> SendResult:
        result = await self._inner.send(message)
        if self._seconds:
            time.sleep(self._seconds)  # noqa: ASYNC251 - the stall is the point
            self._seconds = 0.0
        return result


async def test_sends_that_wake_late_get_later_slots_and_go_once(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    fake, _ = fake_tg
    plan_reminders(bound, 5)
    # One chunk of 5, slots 21 ms apart; a send may leave at most 30 ms late.
    config = telegram_at(50)
    deliverer = Deliverer(
        session_factory=bound.factory,
        gateways={"telegram": _StallsOnce(telegram, 0.3)},  # type: ignore[dict-item]
        worker_id="w",
        config=config,
    )

    stats = await deliverer.run_once(now=AT)

    # The stall made the next slots pass: those sends were booked again, none went late and
    # none went back to the queue.
    assert (stats.claimed, stats.sent, stats.late, stats.deferred) == (5, 5, 0, 0)
    assert stats.moved >= 4
    assert {row.status for row in outbox_rows(bound)} == {OutboxStatus.sent}
    stamps = sorted(float(e["at"]) for e in fake.state.query("sendMessage", None))  # type: ignore[arg-type]
    assert len(stamps) == 5
    # No burst after the stall: the four later sends keep their slots' spacing (3 x 21 ms),
    # less the 30 ms one of them may leave late; a burst would send them within a few ms.
    # (A single gap may be short: a late send followed by one on time; CI saw 7 ms.)
    assert stamps[-1] - stamps[1] > 3 * 0.021 - 0.030


async def test_sends_are_recorded_as_they_go_not_when_the_whole_chunk_is_done(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """A crash leaves the sends made but not yet recorded as unknown outcomes: those are
    bounded by a stretch of slots, not by the chunk, even while one request of the chunk
    hangs."""
    fake, _ = fake_tg
    plan_reminders(bound, 9)
    rows = outbox_rows(bound)
    slow = rows[0].recipient
    fake.state.faults.append(Fault(FaultSpec(kind="timeout", recipient=slow, delay=1.5)))
    config = telegram_at(30)  # one chunk of 9, in stretches of 0.1 s (3 sends)
    started = time.monotonic()
    deliverer = Deliverer(
        session_factory=bound.factory,
        gateways={"telegram": telegram},  # gives up on the slow request after 1 s
        worker_id="w",
        config=config,
        clock=lambda: AT + timedelta(seconds=time.monotonic() - started),
    )

    stats = await deliverer.run_once()

    assert (stats.claimed, stats.sent, stats.unknown) == (9, 8, 1)
    rows = outbox_rows(bound)
    [hung] = [row for row in rows if row.recipient == slow]
    assert hung.status == OutboxStatus.unknown
    # Recorded at their stretch's end, while the slow request still hung: all but its own
    # stretch-mates.
    recorded = [row.sent_at for row in rows if row.sent_at is not None]
    early = [at for at in recorded if at < AT + timedelta(seconds=0.8)]
    assert len(recorded) == 8 and len(early) >= 6


class _FirstRequestHeldUp:
    """A gateway whose first request spends ``delay`` seconds on its way to the provider (a
    busy machine, a slow network) before arriving; the others arrive at once. It keeps when
    each arrived, by chat."""

    name = "telegram"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrived: dict[str, list[float]] = {}

    async def send(self, message: OutboundMessage) -> SendResult:
        if not self.arrived:
            self.arrived[""] = []
            await asyncio.sleep(self.delay)
        stamps = self.arrived.setdefault(message.recipient, [])
        stamps.append(time.monotonic())
        return SendResult(SendOutcome.sent, provider_message_id=str(len(stamps)))


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def chat_limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    limits = {"telegram": Limits(per_second=50, per_chat_per_second=1)}
    if request.param == "local":
        yield LocalRateLimiter(limits)
        return
    url = request.getfixturevalue("redis_url")  # tests/notifier/conftest.py
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    yield RedisRateLimiter(client, limits, prefix=f"t:{uuid.uuid4().hex}")
    await client.aclose()


async def test_a_chats_next_message_reaches_the_provider_a_second_after_a_held_up_one(
    bound: Bound, chat_limiter: RateLimiter
) -> None:
    """L-1: one borrower with three loans gets three reminders in one chat. Its first request
    is held up 0.4 s after it left its slot; each next one is still booked from when the one
    before was answered, and reaches the provider at least a second after it (booked from the
    first's slot, the second arrived 0.64 s after it)."""
    br = f.branch(bound.session)
    person = f.borrower(bound.session, br)
    for _ in range(3):
        f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    assert Planner().plan(bound.session, AT, write=True).inserted == 3
    bound.session.commit()
    gateway = _FirstRequestHeldUp(0.4)
    config = telegram_at(50)
    config.channels["telegram"] = config.channels["telegram"].model_copy(
        update={"per_chat_per_second": 1}
    )
    deliverer = Deliverer(
        session_factory=bound.factory,
        gateways={"telegram": gateway},
        worker_id="w",
        limiter=chat_limiter,
        config=config,
    )
    try:
        stats = await deliverer.run_once(now=AT)
    finally:
        deliverer.close()

    assert stats.sent == 3
    [stamps] = [s for chat, s in gateway.arrived.items() if chat]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 3 and min(gaps) >= 1.0, gaps
