"""Send-rate limits: the GCRA never exceeds its rate, in process and shared through Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from notifier.ratelimit import (
    Limits,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    acquire,
)

LIMITS = {"telegram": Limits(per_second=40, per_chat_per_second=1, headroom=0.05)}


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[object]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _pump(limiter: RateLimiter, seconds: float, chats: int) -> list[float]:
    granted: list[float] = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if await acquire(limiter, "telegram", f"chat-{n % chats}", max_wait=1.0) == 0:
            granted.append(time.monotonic())
    return granted


def _max_in_any_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, at in enumerate(stamps):
        while at - stamps[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_local_limiter_paces_the_channel_and_each_chat() -> None:
    limiter = LocalRateLimiter(LIMITS)
    many = await _pump(limiter, 1.5, chats=1000)
    one_chat = await _pump(LocalRateLimiter(LIMITS), 2.5, chats=1)

    assert 30 <= len(many) <= 61  # about 40/s for 1.5 s (a loaded machine wakes late)
    assert _max_in_any_second(many) <= 40
    gaps = [b - a for a, b in itertools.pairwise(one_chat)]
    assert len(one_chat) >= 3 and min(gaps) >= 0.99  # 1/s per chat
    await limiter.pause("telegram", 0.5)
    assert 0.4 < await limiter.try_acquire("telegram", "x") <= 0.5


async def test_workers_share_the_rate_and_the_429_pause_through_redis(redis_client: object) -> None:
    prefix = f"kopa-test:{uuid.uuid4().hex}"
    workers = [RedisRateLimiter(redis_client, LIMITS, prefix=prefix) for _ in range(3)]
    for n, worker in enumerate(workers):  # load the script and open the connections first
        await worker.try_acquire("warm-up", f"chat-{n}")

    results = await asyncio.gather(*(_pump(w, 1.5, chats=1000) for w in workers))

    stamps = [s for r in results for s in r]
    assert 30 <= len(stamps) <= 61  # three workers together get about 40/s, never more
    assert _max_in_any_second(stamps) <= 40
    await workers[0].pause("telegram", 1.0)
    assert 0.8 < await workers[2].try_acquire("telegram", "someone") <= 1.01


async def _book_for(limiter: RateLimiter, seconds: float, chunk: int) -> list[float]:
    """Book chunks of distinct chats, as delivery lanes do, and return the booked instants."""
    loop = asyncio.get_running_loop()
    booked: list[float] = []
    deadline = loop.time() + seconds
    chats = itertools.count()
    while loop.time() < deadline:
        recipients = [f"chat-{next(chats)}" for _ in range(chunk)]
        booking = await limiter.reserve("telegram", recipients, lead=0.01, horizon=0.4)
        now = loop.time()
        booked += [now + d for d in booking.delays if d is not None]
        if booking.booked == 0:
            await asyncio.sleep(booking.retry_in)
    return booked


def _assert_evenly_booked(booked: list[float], jitter: float) -> None:
    gaps = [b - a for a, b in itertools.pairwise(sorted(booked))]
    # 40/s less 7.5 % headroom (3 sends' worth at this rate): one slot every 27 ms, all booked.
    assert min(gaps) >= 1 / 40 - jitter
    assert _max_in_any_second(booked) <= 40
    assert len(booked) >= 2.0 * 40 * 0.85


async def test_booked_slots_are_evenly_spaced_and_never_above_the_rate() -> None:
    _assert_evenly_booked(await _book_for(LocalRateLimiter(LIMITS), 2.0, chunk=4), jitter=0.002)


async def test_booked_slots_through_redis_are_shared_evenly_by_workers(
    redis_client: object,
) -> None:
    prefix = f"kopa-test:{uuid.uuid4().hex}"
    workers = [RedisRateLimiter(redis_client, LIMITS, prefix=prefix) for _ in range(3)]

    results = await asyncio.gather(*(_book_for(w, 2.0, chunk=4) for w in workers))

    # Each worker turns Redis's delays into its own clock one round trip late: a few ms apart.
    _assert_evenly_booked([at for booked in results for at in booked], jitter=0.008)


async def test_a_booking_waits_until_the_whole_chunk_fits_and_skips_busy_chats() -> None:
    limiter = LocalRateLimiter(LIMITS)
    first = await limiter.reserve("telegram", ["a", "b", "c"], lead=0.0, horizon=0.1)
    # Three more slots (27 ms apart at this rate) do not all fit in the 0.1 s horizon behind
    # the first three: none is booked, and the answer says how long until they all fit.
    later = await limiter.reserve("telegram", ["x", "y", "z"], lead=0.0, horizon=0.1)
    # "a" had its message a moment ago (1/s per chat); "d" is free.
    again = await limiter.reserve("telegram", ["a", "d"], lead=0.5, horizon=0.5)

    assert first.booked == 3 and first.delays[0] == pytest.approx(0.0, abs=0.005)
    assert later.booked == 0 and 0.01 < later.retry_in < 0.06
    assert again.delays[0] is None and again.delays[1] is not None


async def test_a_paused_channel_books_nothing_until_the_pause_ends(redis_client: object) -> None:
    limiter = RedisRateLimiter(redis_client, LIMITS, prefix=f"t:{uuid.uuid4().hex}")
    await limiter.pause("telegram", 1.5)

    booking = await limiter.reserve("telegram", ["a", "b"], lead=0.01, horizon=0.4)

    assert booking.booked == 0 and 1.3 < booking.retry_in <= 1.51


async def _moved_then_soon(limiter: RateLimiter) -> None:
    first = await limiter.reserve("telegram", ["a"], lead=0.0, horizon=0.1)
    # Its slot passed unused: it is moved 0.3 s on, though its chat's next slot is a second away.
    moved = await limiter.reserve("telegram", ["a"], lead=0.3, horizon=0.1, moved=True)
    # A second after the first slot, but less than one after the moved one: too soon for "a".
    soon = await limiter.reserve("telegram", ["a", "b"], lead=1.15, horizon=0.05)

    assert first.booked == 1 and moved.booked == 1
    assert moved.delays[0] is not None and moved.delays[0] >= 0.29
    assert soon.delays[0] is None and soon.delays[1] is not None


async def test_a_moved_send_takes_its_chats_next_slot_along() -> None:
    await _moved_then_soon(LocalRateLimiter(LIMITS))


async def test_a_moved_send_takes_its_chats_next_slot_along_in_redis(redis_client: object) -> None:
    await _moved_then_soon(RedisRateLimiter(redis_client, LIMITS, prefix=f"t:{uuid.uuid4().hex}"))


async def _held_until_released(limiter: RateLimiter) -> None:
    # "a" named twice in one booking: the second waits for the first (one slot per chat).
    first = await limiter.reserve("telegram", ["a", "a", "b"], lead=0.0, horizon=0.2, hold=30)
    # Long after a chat interval, a held chat still gets no slot: its request is not answered.
    await asyncio.sleep(1.2)
    held = await limiter.reserve("telegram", ["a", "c"], lead=0.0, horizon=0.2)
    await limiter.release("telegram", ["a"], [0.0])
    released = time.monotonic()
    # Released: its next slot is a chat interval (1/s less the headroom: 1.05 s) from then.
    early = await limiter.reserve("telegram", ["a"], lead=0.9, horizon=0.1)
    later = await limiter.reserve("telegram", ["a"], lead=1.06, horizon=0.2)

    assert first.delays[0] is not None and first.delays[1] is None
    assert first.delays[2] is not None
    assert held.delays[0] is None and held.delays[1] is not None
    assert early.booked == 0
    assert later.delays[0] is not None
    assert time.monotonic() - released + later.delays[0] >= 1.0


async def test_a_held_chat_gets_its_next_slot_only_from_its_release() -> None:
    await _held_until_released(LocalRateLimiter(LIMITS))


async def test_a_held_chat_gets_its_next_slot_only_from_its_release_in_redis(
    redis_client: object,
) -> None:
    await _held_until_released(
        RedisRateLimiter(redis_client, LIMITS, prefix=f"t:{uuid.uuid4().hex}")
    )


async def test_a_release_keeps_a_recipients_back_off() -> None:
    limiter = LocalRateLimiter(LIMITS)
    await limiter.reserve("telegram", ["a"], lead=0.0, horizon=0.1, hold=30)
    await limiter.release("telegram", ["a"], [5.0])  # WhatsApp 131056: 5 s for this recipient

    booking = await limiter.reserve("telegram", ["a"], lead=3.0, horizon=1.0)

    assert booking.booked == 0
