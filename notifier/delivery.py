"""Deliver due outbox rows: claim, judge again, book send slots, send, record the outcome.

Each lane of a worker works a chunk at a time, each chunk costing a handful of statements
whatever its size (rule R-2 and the throughput target of ``bench/notify``). The lane loop here
hands the chunk from one part to the next:

- :mod:`notifier.bookkeeping` claims and judges it, marks its sends and records their outcomes
  (in a thread of the worker, or in its judging process, :mod:`notifier.judging`);
- :mod:`notifier.pacing` books its slots in the shared limiter and sends each at its slot;
- :mod:`notifier.outcomes` says what each result does to its row; :mod:`notifier.outbox` holds
  the statements.

A worker that dies therefore leaves ``ready`` rows (nothing left: back to pending after the
lease) or ``sending`` rows (maybe delivered: marked ``unknown`` after the lease, never resent,
counted against the caps, rule R-4).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from bot.channels.base import ChannelGateway
from notifier.bookkeeping import Bookkeeper, utcnow
from notifier.config import CampaignConfig, TemplateConfig, load_campaigns, load_templates
from notifier.jobs import DeliveryStats, Job
from notifier.pacing import Pacer
from notifier.ratelimit import LocalRateLimiter, RateLimiter, limits_from_config

T = TypeVar("T")

# A chunk holds about CHUNK_SECONDS of the fastest channel's sends: big enough to make its
# claim and judging cheap per message, small enough to be judged just before it goes.
CHUNK_SECONDS = 0.3
MAX_CHUNK = 300
# Its sends are recorded in stretches of RECORD_SECONDS of slots, each as soon as it is done: a
# crash leaves at most about a stretch per lane as unknown outcomes.
RECORD_SECONDS = 0.1
# Verdicts older than this when their rows come to be booked are asked again (an opt-out, a
# promise or the end of the send window may have come meanwhile): a chunk kept waiting by a 429
# pause or a fully booked channel. At full rate a lane's next chunk waits about a lane cycle
# (lanes x CHUNK_SECONDS) and is not judged twice.
REJUDGE_AFTER = 2.0


class Judging(Protocol):
    """Claim-and-judge and recording off this process (:class:`notifier.judging.JudgingProcess`):
    :class:`Bookkeeper`'s work, called from the event loop."""

    async def warm_up(self) -> None: ...

    async def judge(
        self, limit: int, now: datetime | None, stats: DeliveryStats
    ) -> tuple[int, list[Job]]: ...

    async def rejudge(
        self, ids: list[int], now: datetime | None, stats: DeliveryStats
    ) -> list[Job]: ...

    async def record(
        self,
        jobs: list[Job],
        now: datetime | None,
        stats: DeliveryStats,
        waits: Mapping[str, float],
    ) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Chunk:
    """A chunk being claimed and judged, and since when its rows' leases have been fresh (its
    claim, or the last heartbeat that renewed them)."""

    judged: asyncio.Future[tuple[int, list[Job]]]
    wanted: int
    fresh_since: float
    judged_since: float  # monotonic time its claim began: its verdicts are at most this old

    def held(self) -> list[int]:
        """The ids of the rows judged ready (none before the judging is done)."""
        future = self.judged
        if not future.done() or future.cancelled() or future.exception() is not None:
            return []
        return [job.id for job in future.result()[1]]


class Deliverer:
    """One worker's delivery lanes; :meth:`run_once` runs one pass of a lane.

    Several passes (lanes) may run at once on one instance: they share the policy cache and the
    pause each channel was last seen under.
    """

    def __init__(
        self,
        *,
        session_factory: Callable[[], Session],
        gateways: Mapping[str, ChannelGateway],
        worker_id: str,
        limiter: RateLimiter | None = None,
        config: CampaignConfig | None = None,
        templates: TemplateConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        prefetch: bool = False,
        judging: Judging | None = None,
    ) -> None:
        # Claim-and-judge and recording in a process of their own (notifier.judging), else in
        # this process's database thread.
        self.judging = judging
        self.gateways = gateways
        self.worker_id = worker_id
        self.config = config or load_campaigns()
        self.clock = clock
        self.books = Bookkeeper(
            session_factory=session_factory,
            channels=gateways,
            worker_id=worker_id,
            config=self.config,
            templates=templates or load_templates(),
            clock=clock,
        )
        limits = limits_from_config(self.config.channels)
        self.pacer = Pacer(
            limiter=limiter or LocalRateLimiter(limits),
            limits=limits,
            gateways=gateways,
            config=self.config,
            clock=clock,
            mark=lambda ids, now: self._in_thread(self._marks, self.books.mark_sending, ids, now),
        )
        # Judge the next chunk while this one is sent (needs a pool: two statements at once).
        self.prefetch = prefetch
        # Database work runs in threads (psycopg waits without the GIL), one at a time for the
        # heavy statements and one for the marks: every extra thread would take the GIL from the
        # event loop, whose sends must leave on time.
        self._db = ThreadPoolExecutor(1, thread_name_prefix="notify-db")
        self._marks = ThreadPoolExecutor(1, thread_name_prefix="notify-mark")
        # Set on SIGTERM: the current sends finish, the rest of the batch is released.
        self.stopping = False

    async def warm_up(self, connections: int) -> None:
        """Pay the first-use costs before a campaign comes due: ``connections`` pooled database
        connections, the claim statement's compilation and the locales' Babel data: a cold
        worker would judge its first chunk far slower than the next ones and leave its first
        second of slots short."""
        if self.judging is not None:
            await self.judging.warm_up()
        await self._in_thread(self._db, self.books.warm_up, connections)

    def close(self) -> None:
        self._db.shutdown(wait=True)
        self._marks.shutdown(wait=True)
        if self.judging is not None:
            self.judging.close()

    @staticmethod
    async def _in_thread(executor: ThreadPoolExecutor, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    def chunk_size(self) -> int:
        """Rows claimed and judged together."""
        rates = [
            limits.per_second
            for name, limits in self.config.channels.items()
            if name in self.gateways
        ]
        return max(1, min(MAX_CHUNK, int(max(rates, default=10.0) * CHUNK_SECONDS)))

    async def run_once(self, *, now: datetime | None = None, limit: int = 100) -> DeliveryStats:
        """Claim up to ``limit`` due rows, a chunk at a time, and deliver them.

        With ``prefetch`` the next chunk is claimed and judged while this one is being sent, so
        that a lane always has a chunk ready to book when its slots run out.
        """
        stats = DeliveryStats()
        lease = self.config.delivery.lease_seconds
        remaining = limit
        ready: list[Job] = []
        upcoming: _Chunk | None = None
        renewed = judged_since = time.monotonic()

        def next_chunk() -> _Chunk:
            nonlocal remaining
            wanted = min(remaining, self.chunk_size())
            remaining -= wanted
            started = time.monotonic()
            judged = asyncio.ensure_future(self._judge(wanted, now, stats))
            return _Chunk(judged, wanted, started, started)

        while True:
            if not ready:
                if upcoming is None:
                    if remaining <= 0 or self.stopping:
                        break
                    upcoming = next_chunk()
                chunk, upcoming = upcoming, None
                claimed, ready = await chunk.judged
                stats.claimed += claimed
                if claimed < chunk.wanted:
                    remaining = 0  # fewer due rows than asked for: the end of the queue
                renewed = chunk.fresh_since
                judged_since = chunk.judged_since
                continue
            if time.monotonic() - judged_since > REJUDGE_AFTER and not self.stopping:
                # Every row of ``ready`` comes from one chunk: one comparison per booking, and
                # only a chunk kept waiting (a 429 pause, a fully booked channel) pays a judging.
                judged_since = time.monotonic()
                ready = await self._judge_again(ready, now, stats)
                continue
            if time.monotonic() - renewed > lease / 3:
                # Heartbeat: rows waiting for a slot keep their lease, and so do those of
                # the chunk claimed ahead (a lane kept waiting for slots could otherwise hold
                # them past their lease, and another worker would take them over).
                started = time.monotonic()
                until = (now or self.clock()) + timedelta(seconds=lease)
                ahead = upcoming.held() if upcoming is not None else []
                await self._in_thread(
                    self._db, self.books.renew, [job.id for job in ready] + ahead, until
                )
                renewed = started
                if upcoming is not None and ahead:
                    upcoming.fresh_since = started
            if self.stopping:
                # Shutting down: give the rest back now rather than after the lease.
                if upcoming is not None:
                    claimed, more = await upcoming.judged
                    stats.claimed += claimed
                    ready += more
                    upcoming = None
                await self._release([job.id for job in ready], now or self.clock())
                stats.deferred += len(ready)
                break
            if self.prefetch and upcoming is None and remaining > 0:
                upcoming = next_chunk()
            ready = await self._deliver_ready(ready, now, stats)
        return stats

    async def _judge(
        self, limit: int, now: datetime | None, stats: DeliveryStats
    ) -> tuple[int, list[Job]]:
        if self.judging is not None:
            return await self.judging.judge(limit, now, stats)
        return await self._in_thread(self._db, self.books.claim_and_judge, limit, now, stats)

    async def _judge_again(
        self, jobs: list[Job], now: datetime | None, stats: DeliveryStats
    ) -> list[Job]:
        ids = [job.id for job in jobs]
        stats.rejudged += len(ids)
        if self.judging is not None:
            return await self.judging.rejudge(ids, now, stats)
        return await self._in_thread(self._db, self.books.rejudge, ids, now, stats)

    async def _release(self, ids: list[int], send_at: datetime) -> None:
        await self._in_thread(self._db, self.books.release, ids, send_at, None)

    async def _deliver_ready(
        self, ready: list[Job], now: datetime | None, stats: DeliveryStats
    ) -> list[Job]:
        """Book slots for ``ready`` rows and deliver the booked ones; returns those still
        waiting for a slot."""
        booked, waiting, retry_in = await self.pacer.book(ready)
        if not booked:
            if retry_in > self.config.delivery.lease_seconds / 3:
                # A long pause (429): give the rows back instead of holding their claims.
                later = (now or self.clock()) + timedelta(seconds=retry_in)
                await self._release([job.id for job in waiting], later)
                stats.deferred += len(waiting)
                return []
            await asyncio.sleep(retry_in)
            return waiting
        # Each stretch of RECORD_SECONDS of slots is recorded as soon as its sends are done, while
        # the next stretch goes: what a crash leaves unknown is bounded by the stretch, not by
        # the chunk.
        stretches: list[list[Job]] = []
        for job in booked:
            if not stretches or job.slot - stretches[-1][0].slot >= RECORD_SECONDS:
                stretches.append([])
            stretches[-1].append(job)
        await asyncio.gather(*(self._send_and_record(jobs, now, stats) for jobs in stretches))
        return waiting

    async def _send_and_record(
        self, booked: list[Job], now: datetime | None, stats: DeliveryStats
    ) -> None:
        try:
            await self.pacer.dispatch(booked, now, stats)
        finally:
            await self.pacer.release_chats(booked)
        waits = self.pacer.waits(job.channel for job in booked)
        if self.judging is None:
            await self._in_thread(self._db, self.books.finish, booked, now, stats, waits)
        else:
            await self.judging.record(booked, now, stats, waits)


async def deliver_due(
    *,
    session_factory: Callable[[], Session],
    gateways: Mapping[str, ChannelGateway],
    now: datetime | None = None,
    worker_id: str = "worker",
    limit: int = 100,
    limiter: RateLimiter | None = None,
    config: CampaignConfig | None = None,
    templates: TemplateConfig | None = None,
) -> DeliveryStats:
    """Run one delivery pass: claim up to ``limit`` due rows and deliver them.

    Args:
        session_factory: makes a new ``Session`` (e.g. ``sessionmaker(bind=engine)``).
        gateways: channel name -> gateway (``build_channels(settings).gateways``).
        now: the instant of the pass (claims rows due by then and judges the rules at it);
            ``None`` uses the wall clock, message by message.
        worker_id: this worker's name in the claims (unique per process).
        limit: how many rows to claim.
    """
    deliverer = Deliverer(
        session_factory=session_factory,
        gateways=gateways,
        worker_id=worker_id,
        limiter=limiter,
        config=config,
        templates=templates,
    )
    try:
        return await deliverer.run_once(now=now, limit=limit)
    finally:
        deliverer.close()
