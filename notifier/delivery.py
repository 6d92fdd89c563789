"""Deliver due outbox rows: claim, judge again, book send slots, send, record the outcome.

Each lane of a worker works a chunk at a time, each chunk costing a handful of statements
whatever its size (rule R-2 and the throughput target of ``bench/notify``):

1. **Claim and judge.** One transaction claims due rows straight into ``ready`` with a lease
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several worker processes share the work; a plain
   update on SQLite, with one worker), reads the send-time facts of all of them
   (:mod:`notifier.facts`), asks the rules and renders the messages. ``ready`` rows count
   against the caps; the rows the rules stop are suppressed or rescheduled, with their ledger
   events, in the same transaction.
2. **Book.** One call to the shared limiter books evenly spaced slots for the ready rows. Each
   booked chat is held until its request has been answered (one release call per stretch of
   sends): its next send is booked a chat interval after that, so a request held up on its way
   cannot reach the provider within a second of the chat's next one (row L-1).
3. **Mark.** One statement marks each coming ``MARK_TICK`` of sends ``sending``, an adaptive
   margin before the first of them; only then may their requests leave, each at its own slot
   (a send that wakes too late for it is booked a later one, and a campaign message whose slot
   comes within WINDOW_END_GUARD of its window's end stays back, row F-3).
4. **Record.** One transaction writes every outcome of the booking with its ledger event (rule,
   local time, cap counts and template version: rule C-10).

A worker that dies therefore leaves ``ready`` rows (nothing left: back to pending after the
lease) or ``sending`` rows (maybe delivered: marked ``unknown`` after the lease, never resent,
counted against the caps, rule R-4), of which at most a margin and a tick per lane never left,
besides the few sends that woke too late and were waiting for a later slot.

Outcomes: sent; retryable (full-jitter exponential backoff, at most ``max_attempts``, then
``dead`` with a dead letter and an alert to the loan officer); blocked (the user blocked the bot
or cannot receive: opt-out recorded, never retried); channel error (a token, request or template
the provider refuses: the channel's campaign halts with a dead letter until an operator resumes
it, nobody is opted out); unknown (never resent); rate limited (the channel pauses for
``retry_after`` in the shared limiter, and every booked send still waiting in any worker is held
back); recipient rate limited (that chat alone backs off); outside the WhatsApp window (retried
as a template).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, String, Update, case, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

import api.models  # noqa: F401 - every table, so that foreign keys resolve in a worker
from api.borrowers.models import Borrower, Channel, Consent
from api.branches.models import Officer
from api.core.db import by_id, in_ids
from api.ledger import service as ledger
from api.loans.models import Loan
from api.outbox.models import DeadLetter, DeadLetterReason, OutboxMessage, OutboxStatus
from bot.channels.base import ChannelGateway, OutboundMessage, SendOutcome, SendResult
from i18n import SUPPORTED_LOCALES, format_day, format_money
from notifier.config import (
    CampaignConfig,
    Policy,
    TemplateConfig,
    load_campaigns,
    load_templates,
)
from notifier.facts import SendTimeFacts
from notifier.ratelimit import LocalRateLimiter, RateLimiter, limits_from_config
from notifier.render import (
    TemplateMissing,
    build_outbound,
    template_version,
    whatsapp_template_version,
)
from notifier.rules import (
    CAMPAIGN_PURPOSES,
    Decision,
    Snapshot,
    Window,
    cap_counts,
    decide,
    local_day,
    window_closes,
    zone,
)

if TYPE_CHECKING:
    from notifier.judging import JudgingProcess

logger = logging.getLogger(__name__)
T = TypeVar("T")

FORCE_TEMPLATE = "outside_window"
# A chunk holds about CHUNK_SECONDS of the fastest channel's sends: big enough to make its
# claim and judging cheap per message, small enough to be judged just before it goes.
CHUNK_SECONDS = 0.3
MAX_CHUNK = 300
# Its sends are recorded in stretches of RECORD_SECONDS of slots, each as soon as it is done: a
# crash leaves at most about a stretch per lane as unknown outcomes.
RECORD_SECONDS = 0.1
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
# Verdicts older than this when their rows come to be booked are asked again (an opt-out, a
# promise or the end of the send window may have come meanwhile): a chunk kept waiting by a 429
# pause or a fully booked channel. At full rate a lane's next chunk waits about a lane cycle
# (lanes x CHUNK_SECONDS, 1.2 s with 4 lanes) and is not judged twice.
REJUDGE_AFTER = 2.0
# Database work cut off by a lost connection is tried again after these waits (doubling).
DB_RETRY_FIRST = 0.05
DB_RETRY_MAX = 1.0
# A channel halted by a channel_error is paused in the shared limiter this long, so that the
# sends other workers have booked are held back at once; the halt itself (a dead letter) is what
# keeps its messages from being claimed until an operator resumes it.
HALT_PAUSE_SECONDS = 60.0
_HELD_BY_THIS_PASS = (OutboxStatus.claimed, OutboxStatus.ready)
# What the ledger event of a decision about an outbox row needs of it (see Deliverer._event).
_EVENT_COLUMNS = (
    OutboxMessage.id,
    OutboxMessage.purpose,
    OutboxMessage.step,
    OutboxMessage.attempts,
    OutboxMessage.borrower_id,
    OutboxMessage.loan_id,
    OutboxMessage.case_id,
    OutboxMessage.channel,
    OutboxMessage.message_key,
)


@dataclass
class DeliveryStats:
    claimed: int = 0
    sent: int = 0
    suppressed: int = 0
    rescheduled: int = 0
    retried: int = 0
    rate_limited: int = 0
    dead: int = 0
    failed: int = 0
    unknown: int = 0
    deferred: int = 0
    reclaimed: int = 0
    lost_lease: int = 0
    # Sends that woke too late for their slot (a slow mark, a busy machine), given a later one.
    moved: int = 0
    # Sends that found no later slot either and went back to the queue.
    late: int = 0
    # Rows judged again after waiting longer than REJUDGE_AFTER for a slot.
    rejudged: int = 0
    # channel_error outcomes: the channel's campaign was halted (nobody opted out).
    halted: int = 0
    # One recipient's limit (WhatsApp 131056): that recipient backs off, the others go on.
    recipient_limited: int = 0
    # Sends held back at their slot because their send window was about to end (F-3).
    window_closed: int = 0

    def add(self, other: DeliveryStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Job:
    """One row of a pass, from its verdict to its outcome."""

    id: int
    channel: str
    recipient: str
    outbound: OutboundMessage
    decision: Decision
    slot: float = 0.0  # loop time of its booked slot
    result: SendResult | None = None
    marked: bool = False  # committed ``sending``: its request may leave
    lost: bool = False  # another worker took the row over (lease expired)
    # For the ledger (rule C-10): the borrower's zone, the attempts in the cap windows when it
    # was judged, and the version of the text or template it goes with.
    tz: str = "UTC"
    counts: dict[str, int] | None = None
    template_version: str | None = None
    # When its send window stops allowing it (POSIX seconds; a campaign message), and whether
    # it was held back at its slot because that time had come (row F-3).
    closes: float = math.inf
    closed: bool = False
    # A per-recipient limit's wait (WhatsApp 131056), applied when the chat's hold is released.
    back_off: float = 0.0


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


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def recover_expired(session: Session, now: datetime) -> tuple[int, int]:
    """Release claims whose worker vanished: ``claimed`` and ``ready`` back to pending, ``sending``
    to unknown.

    Returns:
        (reclaimed, unknown) counts.
    """
    reclaimed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status.in_(_HELD_BY_THIS_PASS), OutboxMessage.lease_until < now)
        .values(status=OutboxStatus.pending, claimed_by=None, lease_until=None)
        .returning(OutboxMessage.id)
    ).all()
    lost = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.sending, OutboxMessage.lease_until < now)
        .values(status=OutboxStatus.unknown, last_error="lease expired while sending")
        .returning(
            OutboxMessage.id,
            OutboxMessage.borrower_id,
            OutboxMessage.loan_id,
            OutboxMessage.channel,
            OutboxMessage.purpose,
            OutboxMessage.message_key,
        )
    ).all()
    for row in lost:
        ledger.record(
            session=session,
            at=now,
            direction="outbound",
            kind=row.purpose,
            decision="unknown",
            rule="lease_expired",
            borrower_id=row.borrower_id,
            loan_id=row.loan_id,
            channel=row.channel,
            message_key=row.message_key,
            detail={"outbox_id": row.id},
        )
    return len(reclaimed), len(lost)


def _open_halts() -> Select[str]:
    return select(DeadLetter.channel).where(
        DeadLetter.halts_channel.is_(True), DeadLetter.resolved_at.is_(None)
    )


def halted_channels(session: Session) -> set[str]:
    """The channels whose campaign is stopped by an open dead letter (a ``channel_error``)."""
    return set(session.scalars(_open_halts()))


def resume_channel(session: Session, channel: str, *, at: datetime, by: str) -> int:
    """Resolve the open halts of ``channel``: its waiting messages are claimed again.

    Returns:
        How many halts were resolved.
    """
    resolved = session.execute(
        update(DeadLetter)
        .where(
            DeadLetter.channel == channel,
            DeadLetter.halts_channel.is_(True),
            DeadLetter.resolved_at.is_(None),
        )
        .values(resolved_at=at, resolved_by=by)
        .returning(DeadLetter.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(resolved)


def claim(
    session: Session,
    *,
    now: datetime,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    status: OutboxStatus = OutboxStatus.claimed,
) -> list[tuple[int, str, str]]:
    """Claim up to ``limit`` due rows for ``worker_id``, oldest first, setting ``status``.

    Returns:
        (id, channel, recipient) of each claimed row, in id order.
    """
    lease = now + timedelta(seconds=lease_seconds)
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.retry]),
            OutboxMessage.send_at <= now,
            # A halted channel's messages wait for an operator (see halted_channels).
            OutboxMessage.channel.not_in(_open_halts()),
        )
        .order_by(OutboxMessage.send_at)
        .limit(limit)
    )
    if _is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    rows = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(status=status, claimed_by=worker_id, lease_until=lease)
        .returning(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.recipient)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted((int(r[0]), str(r[1]), str(r[2])) for r in rows)


class Deliverer:
    """One worker's delivery logic; :func:`deliver_due` runs one pass of it.

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
        clock: Callable[[], datetime] = _utcnow,
        prefetch: bool = False,
        judging: JudgingProcess | None = None,
    ) -> None:
        self.session_factory = session_factory
        # Claim-and-judge and recording in a process of their own (notifier.judging), else
        # in this process's database thread.
        self.judging = judging
        self.gateways = gateways
        self.worker_id = worker_id
        self.config = config or load_campaigns()
        self.templates = templates or load_templates()
        limits = self._limits = limits_from_config(self.config.channels)
        self.limiter = limiter or LocalRateLimiter(limits)
        self._late_limits = {name: item.lateness_allowed() for name, item in limits.items()}
        self.clock = clock
        # Judge the next chunk while this one is sent (needs a pool: two statements at once).
        self.prefetch = prefetch
        self._policies: dict[int, tuple[Policy, Window]] = {}
        # channel -> (loop time the pause ends, loop time it was read from the limiter)
        self._pauses: dict[str, tuple[float, float]] = {}
        self._recovered_at: float | None = None  # monotonic time of the last lease recovery
        self._mark_seconds = 0.0  # how long marks have recently taken (see _mark_margin)
        # Sends that woke too late, per channel, waiting to be booked later slots together.
        self._late: dict[str, list[Job]] = {}
        self._moving = asyncio.Lock()
        # The sends being gathered for the next mark statement, and its outcome.
        self._mark_batch: tuple[list[int], asyncio.Future[set[int]]] | None = None
        # Database work runs in threads (psycopg waits without the GIL), one at a time for the
        # heavy statements and one for the marks: every extra thread would take the GIL from the
        # event loop, whose sends must leave on time.
        self._db = ThreadPoolExecutor(1, thread_name_prefix="notify-db")
        self._marks = ThreadPoolExecutor(1, thread_name_prefix="notify-mark")
        # Set on SIGTERM: the current sends finish, the rest of the batch is released.
        self.stopping = False

    async def warm_up(self, connections: int) -> None:
        """Pay the first-use costs before a campaign comes due: ``connections`` pooled database
        connections, the claim statement's compilation and the locales' Babel data. A cold
        worker judged its first chunk in twice the time of the next ones and left its first
        second of slots short (``bench/notify``)."""
        if self.judging is not None:
            await self.judging.warm_up()
        await self._in_thread(self._db, self._warm_up, connections)

    def _warm_up(self, connections: int) -> None:
        with self.session_factory() as session, session.begin():
            claim(
                session,
                now=self.clock(),
                worker_id=self.worker_id,
                limit=0,
                lease_seconds=self.config.delivery.lease_seconds,
            )
            pooled = _is_postgres(session)  # SQLite: one worker, one connection at a time
            if pooled:
                self._record_sent(session, {}, self.clock(), DeliveryStats())
        if pooled:
            self._mark_sending([], None)
            with ExitStack() as stack:
                for _ in range(connections):
                    stack.enter_context(self.session_factory()).execute(select(1))
        for locale in SUPPORTED_LOCALES:
            format_money(Decimal(1), "USD", locale)
            format_day(date(2000, 1, 1), locale)

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
                # the chunk claimed ahead (a lane kept waiting for slots once held them past
                # their lease, and another worker took them over).
                started = time.monotonic()
                until = (now or self.clock()) + timedelta(seconds=lease)
                ahead = upcoming.held() if upcoming is not None else []
                await self._in_thread(
                    self._db, self._renew, [job.id for job in ready] + ahead, until
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
                await self._in_thread(
                    self._db, self._release, [job.id for job in ready], now or self.clock(), None
                )
                stats.deferred += len(ready)
                break
            if self.prefetch and upcoming is None and remaining > 0:
                upcoming = next_chunk()
            ready = await self._deliver_ready(ready, now, stats)
        return stats

    # -- 1. claim, 2. judge ----------------------------------------------------------------
    async def _judge(
        self, limit: int, now: datetime | None, stats: DeliveryStats
    ) -> tuple[int, list[Job]]:
        if self.judging is not None:
            return await self.judging.judge(limit, now, stats)
        return await self._in_thread(self._db, self._claim_and_judge, limit, now, stats)

    async def _judge_again(
        self, jobs: list[Job], now: datetime | None, stats: DeliveryStats
    ) -> list[Job]:
        ids = [job.id for job in jobs]
        stats.rejudged += len(ids)
        if self.judging is not None:
            return await self.judging.rejudge(ids, now, stats)
        return await self._in_thread(self._db, self._rejudge, ids, now, stats)

    def _claim_and_judge(
        self, limit: int, now: datetime | None, stats: DeliveryStats
    ) -> tuple[int, list[Job]]:
        """Claim up to ``limit`` due rows and ask the rules about each with fresh facts, in one
        transaction; the rows that may go are rendered and committed ``ready``.

        Returns:
            (rows claimed, jobs ready to book).
        """
        jobs: list[Job] = []
        lease = self.config.delivery.lease_seconds
        with self.session_factory() as session, session.begin():
            at = now or self.clock()
            if self._recovered_at is None or time.monotonic() - self._recovered_at > lease / 3:
                reclaimed, unknown = recover_expired(session, at)
                stats.reclaimed += reclaimed
                stats.unknown += unknown
                self._recovered_at = time.monotonic()
            # Claimed straight into ``ready``: the rows the rules stop get their own status
            # below, in this same transaction, so no other worker ever sees the difference.
            claimed = claim(
                session,
                now=at,
                worker_id=self.worker_id,
                limit=limit,
                lease_seconds=lease,
                status=OutboxStatus.ready,
            )
            orphans = [i for i, channel, _ in claimed if channel not in self.gateways]
            if orphans:
                self._release_in(session, orphans, at + timedelta(minutes=5), "no gateway")
                stats.deferred += len(orphans)
            ids = [i for i, channel, _ in claimed if channel in self.gateways]
            if not ids:
                return len(claimed), jobs
            # Locked by the claim's update until this transaction ends.
            rows = list(
                session.scalars(select(OutboxMessage).where(in_ids(OutboxMessage.id, ids, session)))
            )
            jobs = self._judge_rows(session, rows, at, stats)
        return len(claimed), jobs

    def _judge_rows(
        self, session: Session, rows: list[OutboxMessage], at: datetime, stats: DeliveryStats
    ) -> list[Job]:
        """Ask the rules about ``rows`` (held by this worker) at ``at``: the rows they stop are
        suppressed or rescheduled here; the others are rendered into jobs."""
        jobs: list[Job] = []
        facts = SendTimeFacts(
            session,
            rows,
            config=self.config,
            policies=self._policies,
            lock_loans=_is_postgres(session),
        )
        for row in sorted(rows, key=lambda r: (r.send_at, r.id)):
            snapshot, window = facts.snapshot(row, at)
            decision = decide(snapshot)
            campaign = row.purpose in CAMPAIGN_PURPOSES
            counts = _counts(snapshot, decision)
            version = template_version(
                row.message_key, row.locale, limited=decision.limited, campaign=campaign
            )
            if decision.action != "send":
                self._not_now(session, row, decision, at, window, stats, counts, version)
                continue
            try:
                outbound = build_outbound(
                    channel=row.channel,
                    recipient=row.recipient,
                    purpose=row.purpose,
                    message_key=row.message_key,
                    locale=row.locale,
                    args=row.args,
                    buttons=row.buttons,
                    limited=decision.limited,
                    use_template=self._needs_template(row, at, facts),
                    templates=self.templates,
                )
            except TemplateMissing:
                audit = _audit(window.tz, at, counts, version)
                self._suppress(session, row, "whatsapp_no_template", at, stats, audit)
                continue
            if row.parts_sent:
                outbound = replace(outbound, first_part=row.parts_sent)
            if outbound.template is not None:
                version = whatsapp_template_version(outbound.template, self.templates)
            facts.record_attempt(row, at)
            jobs.append(
                Job(
                    row.id,
                    row.channel,
                    row.recipient,
                    outbound,
                    decision,
                    tz=window.tz,
                    counts=counts,
                    template_version=version,
                    # The window is the borrower's for campaign messages only (C-1).
                    closes=window_closes(at, window).timestamp() if campaign else math.inf,
                )
            )
        return jobs

    def _rejudge(self, ids: list[int], now: datetime | None, stats: DeliveryStats) -> list[Job]:
        """Judge again rows judged ready a while ago and still waiting for a slot (an opt-out,
        a promise, a hardship case or the end of the send window may have come meanwhile).

        Returns:
            The jobs that may still go; the others are suppressed or rescheduled.
        """
        with self.session_factory() as session, session.begin():
            at = now or self.clock()
            query = select(OutboxMessage).where(
                in_ids(OutboxMessage.id, ids, session),
                OutboxMessage.claimed_by == self.worker_id,
                OutboxMessage.status == OutboxStatus.ready,
            )
            if _is_postgres(session):
                query = query.with_for_update()
            return self._judge_rows(session, list(session.scalars(query)), at, stats)

    def _needs_template(self, row: OutboxMessage, at: datetime, facts: SendTimeFacts) -> bool:
        if row.channel != "whatsapp":
            return False
        if row.last_error == FORCE_TEMPLATE or row.borrower_id is None:
            return row.last_error == FORCE_TEMPLATE
        last_inbound = facts.last_whatsapp_inbound(row.borrower_id)
        hours = self.config.delivery.whatsapp_session_hours
        return last_inbound is None or last_inbound < at - timedelta(hours=hours)

    # -- 3. book, 4. send, 5. record -------------------------------------------------------
    async def _deliver_ready(
        self, ready: list[Job], now: datetime | None, stats: DeliveryStats
    ) -> list[Job]:
        """Book slots for ``ready`` rows and deliver the booked ones; returns those still
        waiting for a slot."""
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
                lead=self._mark_margin() + MARK_TICK / 2,
                horizon=BOOKING_HORIZON,
                # Each chat's next send is booked from when this one is answered (L-1): a
                # request held up on its way cannot reach the provider within a second of the
                # next. Released in _send_and_record; a dead worker's chats wait a lease.
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
        if not booked:
            if retry_in > self.config.delivery.lease_seconds / 3:
                # A long pause (429): give the rows back instead of holding their claims.
                later = (now or self.clock()) + timedelta(seconds=retry_in)
                await self._in_thread(
                    self._db, self._release, [job.id for job in waiting], later, None
                )
                stats.deferred += len(waiting)
                return []
            await asyncio.sleep(retry_in)
            return waiting
        booked.sort(key=lambda job: job.slot)
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
            await self._dispatch(booked, now, stats)
        finally:
            await self._release_chats(booked)
        # How long a held-back send must wait, per channel: its chat's slot was spent, and the
        # channel may be paused.
        waits = {
            channel: max(self._paused_locally(channel), self._chat_interval(channel))
            for channel in {job.channel for job in booked}
        }
        if self.judging is None:
            await self._in_thread(self._db, self._finish, booked, now, stats, waits)
        else:
            await self.judging.record(booked, now, stats, waits)

    async def _dispatch(
        self, booked: list[Job], now: datetime | None, stats: DeliveryStats
    ) -> None:
        """Mark the sends of the coming tick ``sending`` a margin before the first of them, then
        send each at its own slot (``booked`` is in slot order). A slow mark does not cascade: the
        next one takes everything that has come due meanwhile."""
        loop = asyncio.get_running_loop()
        sends: list[asyncio.Task[None]] = []
        start = 0
        while start < len(booked):
            margin = self._mark_margin()
            # Every lane marks on the same grid of ticks, so that their marks of one tick go to
            # the database together (_marks_of_this_tick).
            tick = math.floor((booked[start].slot - margin) / MARK_TICK) * MARK_TICK
            await _sleep_until(tick)
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
            marked = await self._in_thread(self._marks, self._mark_sending, batch[0], now)
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

    async def _release_chats(self, booked: list[Job]) -> None:
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
        await _sleep_until(job.slot)
        moves = 0
        # Woke too late for its slot (Limits.lateness_allowed): a later slot, so that late sends
        # cannot bunch up above the provider's limit; after MAX_MOVES, back to the queue.
        while loop.time() - job.slot > self._lateness(job.channel):
            if moves == MAX_MOVES or not await self._move_late(job, stats):
                stats.late += 1
                return  # held back: no result, it never left
            moves += 1
            await _sleep_until(job.slot)
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
        outcome = job.result.outcome
        if outcome == SendOutcome.sent:
            return
        if outcome == SendOutcome.rate_limited:
            # Shared with every worker: nothing to this channel before retry_after.
            slack = self.config.delivery.retry_after_slack_seconds
            seconds = (job.result.retry_after or 1.0) + slack
            self._note_pause(job.channel, seconds)
            await self.limiter.pause(job.channel, seconds)
        elif outcome == SendOutcome.recipient_rate_limited:
            # This recipient only (WhatsApp 131056): its chat's next slot moves past the wait in
            # the shared limiter; the channel and every other chat go on.
            slack = self.config.delivery.retry_after_slack_seconds
            seconds = (job.result.retry_after or 1.0) + slack
            job.back_off = seconds  # kept when the chat's hold ends
            await self.limiter.back_off(job.channel, job.recipient, seconds)
        elif outcome == SendOutcome.channel_error:
            # The provider refused the channel itself (token, request, template): hold back
            # every send of it here and in every worker now; the halt recorded with the outcome
            # keeps its messages from being claimed until an operator resumes it.
            logger.error(
                "channel %s halted by outbox row %s: %s", job.channel, job.id, job.result.error
            )
            self._note_pause(job.channel, HALT_PAUSE_SECONDS)
            await self.limiter.pause(job.channel, HALT_PAUSE_SECONDS)

    def _lateness(self, channel: str) -> float:
        """How late a send on ``channel`` may leave (Limits.lateness_allowed)."""
        return self._late_limits.get(channel, 0.015)

    def _chat_interval(self, channel: str) -> float:
        limits = self._limits.get(channel)
        return limits.bucket(limits.per_chat_per_second)[0] if limits is not None else 1.0

    def _mark_margin(self) -> float:
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

    def _mark_sending(self, ids: list[int], now: datetime | None) -> set[int]:
        """Commit ``sending`` before the requests may leave: after this a crash can only leave an
        unknown outcome, never a resend. A lost connection is retried (see _reconnecting)."""
        patience = self.config.delivery.lease_seconds / 3
        return _reconnecting(lambda again: self._mark_once(ids, now, again), patience)

    def _mark_once(self, ids: list[int], now: datetime | None, again: bool) -> set[int]:
        with self.session_factory() as session, session.begin():
            at = now or self.clock()
            mine = [
                in_ids(OutboxMessage.id, ids, session),
                OutboxMessage.claimed_by == self.worker_id,
            ]
            if not again:
                statement = update(OutboxMessage).where(
                    *mine, OutboxMessage.status == OutboxStatus.ready
                )
                attempts: Any = OutboxMessage.attempts + 1
            else:
                # The connection was lost, maybe after the first try committed: rows it marked
                # are marked already, and their attempt counted once.
                statement = update(OutboxMessage).where(
                    *mine, OutboxMessage.status.in_([OutboxStatus.ready, OutboxStatus.sending])
                )
                attempts = OutboxMessage.attempts + case(
                    (OutboxMessage.status == OutboxStatus.ready, 1), else_=0
                )
            marked = session.scalars(
                statement.values(
                    status=OutboxStatus.sending,
                    attempts=attempts,
                    lease_until=at + timedelta(seconds=self.config.delivery.lease_seconds),
                )
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            )
            return set(marked)

    def _finish(
        self,
        jobs: list[Job],
        now: datetime | None,
        stats: DeliveryStats,
        waits: Mapping[str, float],
    ) -> None:
        """:meth:`_finish_once`, again while the database connection is lost (for up to a
        lease: after it another worker turns the rows unknown, and this one's late update of
        them finds nothing to change). A retry after a commit whose answer was lost changes
        nothing either: every update is of rows this worker holds in the state it left them."""

        def attempt(_: int) -> DeliveryStats:
            counted = DeliveryStats()
            self._finish_once(jobs, now, counted, waits)
            return counted

        stats.add(_reconnecting(attempt, self.config.delivery.lease_seconds))

    def _finish_once(
        self,
        jobs: list[Job],
        now: datetime | None,
        stats: DeliveryStats,
        waits: Mapping[str, float],
    ) -> None:
        """Record every outcome of one booking in one transaction.

        Sends (nearly all of them) are written in bulk: one update, returning what their ledger
        events need, and one ledger insert for the lot; the rarer outcomes go through
        :meth:`_record` row by row. Jobs held back (a pause, a missed slot) never left: they go
        back to the queue, in one update per channel, for when their chat's and their channel's
        next slots are free, rather than keeping this lane waiting. Rows this worker no longer
        holds (another took them over after the lease) are left alone.
        """
        live = [job for job in jobs if not job.lost]
        if not live:
            return
        sent = {
            job.id: job
            for job in live
            if job.result is not None and job.result.outcome == SendOutcome.sent
        }
        # Held back, by channel and, for those held at the window's end, when it ends.
        held: dict[tuple[str, float | None], list[int]] = {}
        for job in live:
            if job.result is None:
                held.setdefault((job.channel, job.closes if job.closed else None), []).append(
                    job.id
                )
        others = [job for job in live if job.result is not None and job.id not in sent]
        with self.session_factory() as session, session.begin():
            at = now or self.clock()
            if sent:
                self._record_sent(session, sent, at, stats)
            for (channel, closes), ids in held.items():
                send_at = at + timedelta(seconds=waits[channel])
                if closes is not None:
                    # Not before the window has closed: then it is judged outside the window
                    # and rescheduled to the next one, with its ledger event.
                    send_at = max(send_at, datetime.fromtimestamp(closes, UTC))
                # Never left: not an attempt on the borrower after all.
                released = session.execute(
                    self._held_by_me(session, ids, OutboxStatus.sending)
                    .values(
                        status=OutboxStatus.pending,
                        send_at=send_at,
                        attempts=OutboxMessage.attempts
                        - case((OutboxMessage.status == OutboxStatus.sending, 1), else_=0),
                        claimed_by=None,
                        lease_until=None,
                    )
                    .returning(OutboxMessage.id)
                    .execution_options(synchronize_session=False)
                ).all()
                stats.deferred += len(released)
                stats.lost_lease += len(ids) - len(released)
            for job in others:
                row = session.get(OutboxMessage, job.id, with_for_update=True)
                if (
                    row is None
                    or row.claimed_by != self.worker_id
                    or row.status not in (OutboxStatus.ready, OutboxStatus.sending)
                ):
                    stats.lost_lease += 1
                    continue
                assert job.result is not None
                self._record(session, row, job.result, job, at, stats)

    def _record_sent(
        self, session: Session, sent: Mapping[int, Job], at: datetime, stats: DeliveryStats
    ) -> None:
        """Mark the rows of ``sent`` sent, with their provider's ids and ledger events."""
        provider_ids = {i: job.result.provider_message_id for i, job in sent.items() if job.result}
        rows = session.execute(
            update(OutboxMessage)
            .where(
                in_ids(OutboxMessage.id, list(sent), session),
                OutboxMessage.claimed_by == self.worker_id,
                OutboxMessage.status == OutboxStatus.sending,
            )
            .values(
                status=OutboxStatus.sent,
                sent_at=at,
                provider_message_id=by_id(OutboxMessage.id, provider_ids, String(), session),
                last_error=None,
                lease_until=None,
            )
            .returning(*_EVENT_COLUMNS)
            .execution_options(synchronize_session=False)
        ).all()
        events = []
        for row in rows:
            job = sent[row.id]
            events.append(
                self._event(
                    row,
                    at,
                    "sent",
                    str(job.decision.rule),
                    external_message_id=provider_ids[row.id],
                    limited=job.decision.limited,
                    **_job_audit(job, at),
                )
            )
        ledger.record_many(session, events)
        stats.sent += len(rows)
        stats.lost_lease += len(sent) - len(rows)

    # -- leases ----------------------------------------------------------------------------
    def _held_by_me(self, session: Session, ids: list[int], *also: OutboxStatus) -> Update:
        """An update of those of ``ids`` this worker holds and that have not left (or are in one
        of the states ``also``)."""
        return update(OutboxMessage).where(
            in_ids(OutboxMessage.id, ids, session),
            OutboxMessage.claimed_by == self.worker_id,
            OutboxMessage.status.in_([*_HELD_BY_THIS_PASS, *also]),
        )

    def _renew(self, ids: list[int], until: datetime) -> None:
        with self.session_factory() as session, session.begin():
            session.execute(
                self._held_by_me(session, ids)
                .values(lease_until=until)
                .execution_options(synchronize_session=False)
            )

    def _release(self, ids: list[int], send_at: datetime, error: str | None) -> None:
        with self.session_factory() as session, session.begin():
            self._release_in(session, ids, send_at, error)

    def _release_in(
        self, session: Session, ids: list[int], send_at: datetime, error: str | None
    ) -> None:
        """Give claimed or judged rows back to the queue; nothing of them has left."""
        if not ids:
            return
        values: dict[str, Any] = {
            "status": OutboxStatus.pending,
            "send_at": send_at,
            "claimed_by": None,
            "lease_until": None,
        }
        if error is not None:
            values["last_error"] = error
        session.execute(
            self._held_by_me(session, ids)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    # -- outcomes --------------------------------------------------------------------------
    def _event(
        self,
        row: Any,
        at: datetime,
        decision: str,
        rule: str,
        *,
        external_message_id: str | None,
        **detail: Any,
    ) -> dict[str, Any]:
        """The ledger event of a decision about ``row`` (an outbox row or a row of its columns)."""
        return ledger.event_values(
            at=at,
            direction="outbound",
            kind=row.purpose,
            decision=decision,
            rule=rule,
            borrower_id=row.borrower_id,
            loan_id=row.loan_id,
            case_id=row.case_id,
            channel=row.channel,
            message_key=row.message_key,
            external_message_id=external_message_id,
            detail={
                "outbox_id": row.id,
                "step": row.step,
                "attempt": row.attempts,
                "policy_version": self.config.version,
                "worker": self.worker_id,
                **detail,
            },
        )

    def _log(
        self,
        session: Session,
        row: OutboxMessage,
        at: datetime,
        decision: str,
        rule: str,
        audit: Mapping[str, Any] | None = None,
        **detail: Any,
    ) -> None:
        event = self._event(
            row,
            at,
            decision,
            rule,
            external_message_id=row.provider_message_id,
            **(audit or {}),
            **detail,
        )
        ledger.record_many(session, [event])

    def _suppress(
        self,
        session: Session,
        row: OutboxMessage,
        rule: str,
        at: datetime,
        stats: DeliveryStats,
        audit: Mapping[str, Any],
    ) -> None:
        row.status = OutboxStatus.suppressed
        row.last_error = rule
        row.claimed_by = None
        row.lease_until = None
        self._log(session, row, at, "suppressed", rule, audit)
        stats.suppressed += 1

    def _not_now(
        self,
        session: Session,
        row: OutboxMessage,
        decision: Decision,
        at: datetime,
        window: Window,
        stats: DeliveryStats,
        counts: dict[str, int],
        version: str,
    ) -> None:
        # The local time the decision is about: when it would have gone, or goes now.
        audit = _audit(window.tz, decision.send_at, counts, version)
        if decision.action == "suppress":
            self._suppress(session, row, str(decision.rule), at, stats, audit)
            return
        row.status = OutboxStatus.pending
        row.send_at = decision.send_at
        row.claimed_by = None
        row.lease_until = None
        self._log(session, row, at, "rescheduled", str(decision.rule), audit)
        stats.rescheduled += 1

    def _record(
        self,
        session: Session,
        row: OutboxMessage,
        result: SendResult,
        job: Job,
        at: datetime,
        stats: DeliveryStats,
    ) -> None:
        delivery = self.config.delivery
        outcome = result.outcome
        decision = job.decision
        row.lease_until = None
        # The parts of a long text that went stay gone: a retry sends the rest (never resent).
        row.parts_sent = max(row.parts_sent, result.parts_sent)
        if outcome == SendOutcome.sent:
            row.status = OutboxStatus.sent
            row.sent_at = at
            row.provider_message_id = result.provider_message_id
            row.last_error = None
            self._log(
                session,
                row,
                at,
                "sent",
                str(decision.rule),
                _job_audit(job, at),
                limited=decision.limited,
            )
            stats.sent += 1
        elif outcome == SendOutcome.unknown:
            row.status = OutboxStatus.unknown
            row.last_error = result.error
            self._log(session, row, at, "unknown", "provider_timeout", _job_audit(job, at))
            stats.unknown += 1
        elif outcome == SendOutcome.blocked:
            row.status = OutboxStatus.failed
            row.last_error = result.error
            self._log(session, row, at, "failed", "blocked_by_user", _job_audit(job, at))
            if row.borrower_id is not None and row.officer_id is None:
                self._record_opt_out(session, row, at)
            stats.failed += 1
        elif outcome == SendOutcome.channel_error:
            # Refused before delivery, and not the borrower's doing: the message waits, unsent,
            # for the channel to be resumed; nobody is opted out.
            row.attempts -= 1
            row.status = OutboxStatus.retry
            row.send_at = at
            row.claimed_by = None
            row.last_error = result.error
            self._log(session, row, at, "rescheduled", "channel_halted", _job_audit(job, at))
            self._halt_channel(session, row, result, at)
            stats.halted += 1
        elif outcome == SendOutcome.recipient_rate_limited:
            wait = (result.retry_after or 1.0) + delivery.retry_after_slack_seconds
            row.attempts -= 1  # refused before delivery
            row.status = OutboxStatus.retry
            row.send_at = at + timedelta(seconds=wait)
            row.claimed_by = None
            self._log(
                session,
                row,
                at,
                "rescheduled",
                "recipient_rate_limited",
                _job_audit(job, row.send_at),
                retry_after=wait,
            )
            stats.recipient_limited += 1
        elif outcome == SendOutcome.rate_limited:
            wait = (result.retry_after or 1.0) + delivery.retry_after_slack_seconds
            row.attempts -= 1  # refused before delivery: not an attempt on the borrower
            row.status = OutboxStatus.retry
            row.send_at = at + timedelta(seconds=wait)
            row.claimed_by = None
            self._log(
                session,
                row,
                at,
                "rescheduled",
                "rate_limited",
                _job_audit(job, row.send_at),
                retry_after=wait,
            )
            stats.rate_limited += 1
        elif outcome == SendOutcome.outside_window:
            row.attempts -= 1
            row.status = OutboxStatus.retry
            row.send_at = at
            row.claimed_by = None
            row.last_error = FORCE_TEMPLATE
            self._log(session, row, at, "rescheduled", "whatsapp_window", _job_audit(job, at))
            stats.retried += 1
        elif row.attempts >= delivery.max_attempts:
            row.status = OutboxStatus.dead
            row.last_error = result.error
            self._log(session, row, at, "dead", "retries_exhausted", _job_audit(job, at))
            session.add(
                DeadLetter(
                    at=at,
                    channel=row.channel,
                    reason=DeadLetterReason.retries_exhausted,
                    error=(result.error or "")[:200],
                    outbox_id=row.id,
                    halts_channel=False,
                    worker=self.worker_id,
                )
            )
            self._alert_officer(session, row, at)
            stats.dead += 1
        else:
            # Full jitter: spread retries so that recovering providers are not stampeded.
            ceiling = min(
                delivery.backoff_cap_seconds,
                delivery.backoff_base_seconds * 2 ** (row.attempts - 1),
            )
            row.status = OutboxStatus.retry
            row.send_at = at + timedelta(seconds=random.uniform(0, ceiling))
            row.claimed_by = None
            row.last_error = result.error
            self._log(
                session, row, at, "rescheduled", "retryable_failure", _job_audit(job, row.send_at)
            )
            stats.retried += 1

    def _halt_channel(
        self, session: Session, row: OutboxMessage, result: SendResult, at: datetime
    ) -> None:
        """Stop the campaign on ``row``'s channel with a dead letter an operator sees in
        ``kopa cases`` (one open halt per channel; the sends refused with it add nothing)."""
        if row.channel in halted_channels(session):
            return
        session.add(
            DeadLetter(
                at=at,
                channel=row.channel,
                reason=DeadLetterReason.channel_error,
                error=(result.error or "")[:200],
                outbox_id=row.id,
                halts_channel=True,
                worker=self.worker_id,
            )
        )
        session.flush()

    def _record_opt_out(self, session: Session, row: OutboxMessage, at: datetime) -> None:
        """A blocked chat is an opt-out from that channel (rules C-5, R-7)."""
        assert row.borrower_id is not None
        channel = Channel(row.channel)
        consent = session.scalar(
            select(Consent).where(
                Consent.borrower_id == row.borrower_id, Consent.channel == channel
            )
        )
        if consent is None:
            consent = Consent(borrower_id=row.borrower_id, channel=channel)
            session.add(consent)
        consent.opted_in = False
        consent.opted_out_at = at
        consent.source = "provider_blocked"
        ledger.record(
            session=session,
            at=at,
            direction="internal",
            kind="status",
            decision="opted_out",
            rule="blocked_by_user",
            borrower_id=row.borrower_id,
            channel=row.channel,
            detail={"outbox_id": row.id},
        )

    def _alert_officer(self, session: Session, row: OutboxMessage, at: datetime) -> None:
        """Dead letters are visible to officers: the borrower's officer gets a chat alert."""
        if row.borrower_id is None or row.officer_id is not None:
            return
        officer = session.scalar(
            select(Officer)
            .join(Borrower, Borrower.officer_id == Officer.id)
            .where(Borrower.id == row.borrower_id)
        )
        loan = session.get(Loan, row.loan_id) if row.loan_id is not None else None
        if officer is None or officer.channel is None or officer.chat_id is None:
            return
        session.add(
            OutboxMessage(
                business_key=f"notify:dead:{row.id}",
                purpose="officer_alert",
                step="dead_letter",
                officer_id=officer.id,
                borrower_id=row.borrower_id,
                loan_id=row.loan_id,
                channel=officer.channel,
                recipient=officer.chat_id,
                locale=officer.locale,
                message_key="notify.officer.dead_letter",
                args={
                    "account": loan.account_reference if loan else "-",
                    "attempts": row.attempts,
                },
                buttons=[],
                status=OutboxStatus.pending,
                send_at=at,
                attempts=0,
            )
        )


def _counts(snapshot: Snapshot, decision: Decision) -> dict[str, int]:
    """The loan's attempts in the cap windows of the day a decision is about (rule C-10)."""
    return cap_counts(local_day(decision.send_at, snapshot.window.tz), snapshot.attempts)


def _audit(tz: str, local: datetime, counts: dict[str, int], version: str | None) -> dict[str, Any]:
    """What every ledger event of a decision carries besides its rule (C-10): the borrower's
    local time it is about, the counts in the cap windows, the template version."""
    return {
        "local_send_at": local.astimezone(zone(tz)).isoformat(),
        "counts": counts,
        "template_version": version,
    }


def _job_audit(job: Job, local: datetime) -> dict[str, Any]:
    return _audit(job.tz, local, job.counts or {"day": 0, "7d": 0, "30d": 0}, job.template_version)


def _reconnecting(attempt: Callable[[bool], T], patience: float) -> T:
    """Run ``attempt(again)`` until it gets through a lost or refused database connection (a
    restarted server, a terminated backend), waiting DB_RETRY_FIRST, then twice as long each
    time up to DB_RETRY_MAX, for ``patience`` seconds at most. SQLAlchemy invalidates the pool's
    connections on the first disconnect it sees, so the next try connects afresh; ``again``
    tells a retry from the first try."""
    deadline = time.monotonic() + patience
    delay = DB_RETRY_FIRST
    again = False
    while True:
        try:
            return attempt(again)
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning(
                "database connection lost (%s); trying again in %.2f s", type(exc).__name__, delay
            )
            time.sleep(delay)
            delay = min(DB_RETRY_MAX, 2 * delay)
            again = True


async def _sleep_until(loop_time: float) -> None:
    delay = loop_time - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)


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
