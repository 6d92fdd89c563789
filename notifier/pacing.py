"""When each send leaves: slots booked in the shared limiter, marks a margin ahead, pauses.

1. **Book.** One call to the shared limiter books evenly spaced slots for a chunk's ready rows.
   Each booked chat is held until its request has been answered (one release call per stretch
   of sends): its next send is booked a chat interval after that, so a request held up on its
   way cannot reach the provider within a second of the chat's next one (row L-1).
2. **Mark.** One statement marks each coming ``MARK_TICK`` of sends ``sending``, an adaptive
   margin before the first of them; only then may their requests leave, each at its own slot.
3. **Send.** A send that wakes too late for its slot is booked a later one (so late sends cannot
   bunch up above the provider's limit), and a campaign message whose slot comes within
   ``WINDOW_END_GUARD`` of its window's end stays back (row F-3). A 429 pauses the channel in
   the shared limiter, so every booked send still waiting in any worker is held back; a
   recipient's own limit moves only that chat's next slot; a channel error pauses the channel
   at once while its halt is recorded.

A worker that dies leaves at most a margin and a tick per lane of ``sending`` rows that never
left (unknown outcomes), besides the few sends that woke too late and waited for a later slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime

from bot.channels.base import ChannelGateway, SendOutcome, SendResult
from notifier.config import CampaignConfig
from notifier.jobs import DeliveryStats, Job
from notifier.ratelimit import Limits, RateLimiter

logger = logging.getLogger(__name__)

# Slots are booked up to BOOKING_HORIZON seconds ahead (from just after the mark margin): the
# lanes of every worker queue their chunks one after the other, and a verdict is never more than
# a moment old.
BOOKING_HORIZON = 0.6
# Sends whose slots fall within one tick are marked ``sending`` by one statement, a margin ahead
# of the first of them. The margin follows how long marks have recently taken (a busy machine
# makes them slow), between these bounds; a crash strands at most a margin and a tick of sends
# that never left, as unknown outcomes.
MARK_TICK = 0.05
MARK_MARGIN_MIN = 0.01
MARK_MARGIN_MAX = 0.15
# A send that wakes too late for its slot is given a later one at most this many times (a
# machine that busy sends the rest back to the queue).
MAX_MOVES = 2
# How long the pause of a channel, as last read from the shared limiter, is trusted.
PAUSE_RECHECK = 0.02
# A campaign message leaves at least this long before its send window stops allowing it
# (rules.window_closes), so that its request reaches the provider inside the window too; at its
# slot a message past that is held back and judged again (rescheduled) after the window.
WINDOW_END_GUARD = 1.0
# A channel halted by a channel_error is paused in the shared limiter this long, so that the
# sends other workers have booked are held back at once; the halt itself (a dead letter) is what
# keeps its messages from being claimed until an operator resumes it.
HALT_PAUSE_SECONDS = 60.0

Mark = Callable[[list[int], datetime | None], Awaitable[set[int]]]


async def sleep_until(loop_time: float) -> None:
    delay = loop_time - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


class Pacer:
    """One worker's send timing, shared by its lanes: the pause each channel was last seen
    under, how long marks take, and the sends being gathered into the next mark."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        limits: Mapping[str, Limits],
        gateways: Mapping[str, ChannelGateway],
        config: CampaignConfig,
        clock: Callable[[], datetime],
        mark: Mark,
    ) -> None:
        self.limiter = limiter
        self._limits = limits
        self._late_limits = {name: item.lateness_allowed() for name, item in limits.items()}
        self.gateways = gateways
        self.config = config
        self.clock = clock
        self._mark = mark  # commits ``sending`` (off the event loop), returns the ids marked
        # channel -> (loop time the pause ends, loop time it was read from the limiter)
        self._pauses: dict[str, tuple[float, float]] = {}
        self._mark_seconds = 0.0  # how long marks have recently taken (see mark_margin)
        # Sends that woke too late, per channel, waiting to be booked later slots together.
        self._late: dict[str, list[Job]] = {}
        self._moving = asyncio.Lock()
        # The sends being gathered for the next mark statement, and its outcome.
        self._mark_batch: tuple[list[int], asyncio.Future[set[int]]] | None = None

    async def book(self, ready: list[Job]) -> tuple[list[Job], list[Job], float]:
        """Book slots for ``ready``, a limiter call per channel.

        Returns:
            (the booked jobs in slot order, those still waiting, and when a channel that booked
            nothing has a free slot again).
        """
        booked: list[Job] = []
        waiting: list[Job] = []
        retry_in = float("inf")
        loop = asyncio.get_running_loop()
        by_channel: dict[str, list[Job]] = {}
        for job in ready:
            by_channel.setdefault(job.channel, []).append(job)
        for channel, jobs in by_channel.items():
            booking = await self.limiter.reserve(
                channel,
                [job.recipient for job in jobs],
                lead=self.mark_margin() + MARK_TICK / 2,
                horizon=BOOKING_HORIZON,
                # Each chat's next send is booked from when this one is answered (L-1): a
                # request held up on its way cannot reach the provider within a second of the
                # next. Released in release_chats; a dead worker's chats wait a lease.
                hold=self.config.delivery.lease_seconds,
            )
            base = loop.time()
            for job, delay in zip(jobs, booking.delays, strict=True):
                if delay is None:
                    waiting.append(job)
                else:
                    job.slot = base + delay
                    booked.append(job)
            if booking.booked == 0:
                retry_in = min(retry_in, booking.retry_in)
        booked.sort(key=lambda job: job.slot)
        return booked, waiting, retry_in

    async def dispatch(self, booked: list[Job], now: datetime | None, stats: DeliveryStats) -> None:
        """Mark the sends of the coming tick ``sending`` a margin before the first of them, then
        send each at its own slot (``booked`` is in slot order). A slow mark does not cascade: the
        next one takes everything that has come due meanwhile."""
        loop = asyncio.get_running_loop()
        sends: list[asyncio.Task[None]] = []
        start = 0
        while start < len(booked):
            margin = self.mark_margin()
            # Every lane marks on the same grid of ticks, so that their marks of one tick go to
            # the database together (_marks_of_this_tick).
            tick = math.floor((booked[start].slot - margin) / MARK_TICK) * MARK_TICK
            await sleep_until(tick)
            until = max(loop.time(), tick) + margin + MARK_TICK
            end = start + 1
            while end < len(booked) and booked[end].slot < until:
                end += 1
            group, start = booked[start:end], end
            going: list[Job] = []
            for job in group:
                if await self._paused(job.channel) <= 0:
                    going.append(job)  # the others are held back: no result, never left
            if not going:
                continue
            marked = await self._marks_of_this_tick([job.id for job in going], now)
            for job in going:
                if job.id in marked:
                    job.marked = True
                else:
                    job.lost = True
                    stats.lost_lease += 1
            sends += [
                asyncio.create_task(self._send(job, now, stats)) for job in going if job.marked
            ]
        for failure in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(failure, Exception):
                # Only a send that never reached its gateway can raise (a limiter call failed):
                # it is held back like the others that did not leave.
                logger.error("a send was held back: %s", type(failure).__name__)

    async def _marks_of_this_tick(self, ids: list[int], now: datetime | None) -> set[int]:
        """Mark ``ids`` ``sending`` in one statement with those of every other lane that marks
        in this same turn of the event loop (each lane marking alone made four times as many
        transactions).

        Returns:
            The ids of the whole statement that were marked (of ``ids``: those this worker
            still held).
        """
        if self._mark_batch is not None:
            self._mark_batch[0].extend(ids)
            return await asyncio.shield(self._mark_batch[1])
        batch: tuple[list[int], asyncio.Future[set[int]]] = (
            list(ids),
            asyncio.get_running_loop().create_future(),
        )
        self._mark_batch = batch
        try:
            await asyncio.sleep(0)  # the lanes woken by the same tick add their sends
        finally:
            self._mark_batch = None
        started = time.monotonic()
        try:
            marked = await self._mark(batch[0], now)
        except asyncio.CancelledError:
            batch[1].cancel()
            raise
        except Exception as exc:
            batch[1].set_exception(exc)
            batch[1].exception()  # retrieved: the lanes that joined see it through their await
            raise
        # A slowly decaying maximum: one slow mark widens the margin for a while.
        self._mark_seconds = max(time.monotonic() - started, self._mark_seconds * 0.99)
        batch[1].set_result(marked)
        return marked

    async def _move_late(self, job: Job, stats: DeliveryStats) -> bool:
        """Book a later slot for a send that woke too late for its own. Sends that wake late
        together (the loop was held up) are booked by one call.

        Returns:
            Whether it got one.
        """
        slot = job.slot
        self._late.setdefault(job.channel, []).append(job)
        async with self._moving:
            waiting = self._late.pop(job.channel, [])
            if waiting:
                await self._move(job.channel, waiting, stats)
        return job.slot != slot

    async def _move(self, channel: str, missed: list[Job], stats: DeliveryStats) -> None:
        """Book later slots on ``channel`` for sends that missed theirs; those that get none
        keep their passed slot."""
        try:
            booking = await self.limiter.reserve(
                channel,
                [job.recipient for job in missed],
                lead=0.0,
                # Behind the slots the lanes have booked already (a margin and a horizon).
                horizon=2 * BOOKING_HORIZON,
                moved=True,
            )
        except Exception as exc:  # the limiter is unreachable: these sends do not leave
            logger.error("could not book later slots: %s", type(exc).__name__)
            return
        base = asyncio.get_running_loop().time()
        for job, delay in zip(missed, booking.delays, strict=True):
            if delay is not None:
                job.slot = base + delay
                stats.moved += 1

    async def release_chats(self, booked: list[Job]) -> None:
        """End the holds of the chats ``booked`` (every request to them answered, or never
        sent): their next sends may be booked a chat interval from now. One call per channel."""
        by_channel: dict[str, list[Job]] = {}
        for job in booked:
            by_channel.setdefault(job.channel, []).append(job)
        for channel, jobs in by_channel.items():
            try:
                await self.limiter.release(
                    channel, [job.recipient for job in jobs], [job.back_off for job in jobs]
                )
            except Exception as exc:  # the chats stay held until their hold runs out
                logger.error("could not release chats: %s", type(exc).__name__)

    async def _send(self, job: Job, now: datetime | None, stats: DeliveryStats) -> None:
        loop = asyncio.get_running_loop()
        await sleep_until(job.slot)
        moves = 0
        # Woke too late for its slot (Limits.lateness_allowed): a later slot, so that late sends
        # cannot bunch up above the provider's limit; after MAX_MOVES, back to the queue.
        while loop.time() - job.slot > self._lateness(job.channel):
            if moves == MAX_MOVES or not await self._move_late(job, stats):
                stats.late += 1
                return  # held back: no result, it never left
            moves += 1
            await sleep_until(job.slot)
        if self._paused_locally(job.channel) > 0:
            return  # held back: no result, it never left
        if (now or self.clock()).timestamp() >= job.closes - WINDOW_END_GUARD:
            # Judged inside the window, but its slot came too close to the window's end (F-3):
            # held back; judged again once the window has closed, it moves to the next one.
            job.closed = True
            stats.window_closed += 1
            return
        try:
            job.result = await self.gateways[job.channel].send(job.outbound)
        except Exception as exc:  # the request may have left: never resend what might have gone
            logger.error("outbox row %s: gateway raised %s", job.id, type(exc).__name__)
            job.result = SendResult(SendOutcome.unknown, error=type(exc).__name__)
        await self._heed(job, job.result)

    async def _heed(self, job: Job, result: SendResult) -> None:
        """What the provider's answer means for the sends still to come."""
        outcome = result.outcome
        wait = (result.retry_after or 1.0) + self.config.delivery.retry_after_slack_seconds
        if outcome == SendOutcome.rate_limited:
            # Shared with every worker: nothing to this channel before retry_after.
            self._note_pause(job.channel, wait)
            await self.limiter.pause(job.channel, wait)
        elif outcome == SendOutcome.recipient_rate_limited:
            # This recipient only (WhatsApp 131056): its chat's next slot moves past the wait in
            # the shared limiter; the channel and every other chat go on.
            job.back_off = wait  # kept when the chat's hold ends
            await self.limiter.back_off(job.channel, job.recipient, wait)
        elif outcome == SendOutcome.channel_error:
            # The provider refused the channel itself (token, request, template): hold back
            # every send of it here and in every worker now; the halt recorded with the outcome
            # keeps its messages from being claimed until an operator resumes it.
            logger.error(
                "channel %s halted by outbox row %s: %s", job.channel, job.id, result.error
            )
            self._note_pause(job.channel, HALT_PAUSE_SECONDS)
            await self.limiter.pause(job.channel, HALT_PAUSE_SECONDS)

    def waits(self, channels: Iterable[str]) -> dict[str, float]:
        """How long a held-back send must wait, per channel: its chat's slot was spent, and the
        channel may be paused."""
        return {
            channel: max(self._paused_locally(channel), self._chat_interval(channel))
            for channel in set(channels)
        }

    def _lateness(self, channel: str) -> float:
        """How late a send on ``channel`` may leave (Limits.lateness_allowed)."""
        return self._late_limits.get(channel, 0.015)

    def _chat_interval(self, channel: str) -> float:
        limits = self._limits.get(channel)
        return limits.bucket(limits.per_chat_per_second)[0] if limits is not None else 1.0

    def mark_margin(self) -> float:
        return min(MARK_MARGIN_MAX, max(MARK_MARGIN_MIN, 2 * self._mark_seconds))

    def _paused_locally(self, channel: str) -> float:
        until, _ = self._pauses.get(channel, (0.0, 0.0))
        return max(0.0, until - asyncio.get_running_loop().time())

    def _note_pause(self, channel: str, seconds: float) -> None:
        now = asyncio.get_running_loop().time()
        until, _ = self._pauses.get(channel, (0.0, 0.0))
        self._pauses[channel] = (max(until, now + seconds), now)

    async def _paused(self, channel: str) -> float:
        """Seconds left of a pause on ``channel``, read from the shared limiter at most every
        ``PAUSE_RECHECK`` seconds (a 429 seen by another worker)."""
        now = asyncio.get_running_loop().time()
        until, checked = self._pauses.get(channel, (0.0, float("-inf")))
        if now - checked >= PAUSE_RECHECK:
            left = await self.limiter.paused_for(channel)
            until = max(until, now + left)
            self._pauses[channel] = (until, now)
        return max(0.0, until - now)
