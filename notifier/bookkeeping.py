"""The database side of a delivery pass: claim and judge a chunk, mark sends, record outcomes.

Each method is one transaction, run off the worker's event loop: in a thread of the worker, or
in its judging process (:mod:`notifier.judging`), which holds a :class:`Bookkeeper` of its own
under the worker's id.

1. **Claim and judge.** Due rows are claimed straight into ``ready`` with a lease (``FOR UPDATE
   SKIP LOCKED`` on PostgreSQL, so several worker processes share the work; a plain update on
   SQLite, with one worker), the send-time facts of all of them are read at once
   (:mod:`notifier.facts`), the rules asked and the messages rendered. ``ready`` rows count
   against the caps; the rows the rules stop are suppressed or rescheduled, with their ledger
   events, in the same transaction.
2. **Mark.** The sends of a tick are committed ``sending`` before their requests may leave: after
   that a crash can only leave an unknown outcome, never a resend.
3. **Record.** Every outcome of a stretch of sends is written with its ledger event (rule C-10),
   sends in bulk (:mod:`notifier.outcomes`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

import api.models  # noqa: F401 - every table, so that foreign keys resolve in a worker
from api.core.db import in_ids
from api.outbox.models import OutboxMessage, OutboxStatus
from bot.channels.base import SendOutcome
from i18n import SUPPORTED_LOCALES, format_day, format_money
from notifier import outbox
from notifier.config import CampaignConfig, TemplateConfig
from notifier.facts import SendTimeFacts
from notifier.jobs import DeliveryStats, Job
from notifier.outcomes import FORCE_TEMPLATE, Outcomes, audit, counts
from notifier.policy import BranchPolicies
from notifier.render import (
    TemplateMissing,
    build_outbound,
    template_version,
    whatsapp_template_version,
)
from notifier.rules import CAMPAIGN_PURPOSES, decide, window_closes


def utcnow() -> datetime:
    return datetime.now(UTC)


class Bookkeeper:
    """One worker's transactions on the outbox (claims and leases under ``worker_id``)."""

    def __init__(
        self,
        *,
        session_factory: Callable[[], Session],
        channels: Collection[str],
        worker_id: str,
        config: CampaignConfig,
        templates: TemplateConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.channels = channels  # the worker's gateways: rows of other channels wait
        self.worker_id = worker_id
        self.config = config
        self.templates = templates
        self.clock = clock
        self.outcomes = Outcomes(config=config, worker_id=worker_id)
        self._policies = BranchPolicies(config)
        self._recovered_at: float | None = None  # monotonic time of the last lease recovery

    def warm_up(self, connections: int) -> None:
        """Open ``connections`` pooled connections, compile the claim, mark and record
        statements and load the locales' Babel data."""
        with self.session_factory() as session, session.begin():
            outbox.claim(
                session,
                now=self.clock(),
                worker_id=self.worker_id,
                limit=0,
                lease_seconds=self.config.delivery.lease_seconds,
            )
            pooled = outbox.is_postgres(session)  # SQLite: one worker, one connection at a time
            if pooled:
                self.outcomes.record_sent(session, {}, self.clock(), DeliveryStats())
        if pooled:
            self.mark_sending([], None)
            with ExitStack() as stack:
                for _ in range(connections):
                    stack.enter_context(self.session_factory()).execute(select(1))
        for locale in SUPPORTED_LOCALES:
            format_money(Decimal(1), "USD", locale)
            format_day(date(2000, 1, 1), locale)

    # -- 1. claim and judge ----------------------------------------------------------------
    def claim_and_judge(
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
                reclaimed, unknown = outbox.recover_expired(session, at)
                stats.reclaimed += reclaimed
                stats.unknown += unknown
                self._recovered_at = time.monotonic()
            # Claimed straight into ``ready``: the rows the rules stop get their own status
            # below, in this same transaction, so no other worker ever sees the difference.
            claimed = outbox.claim(
                session,
                now=at,
                worker_id=self.worker_id,
                limit=limit,
                lease_seconds=lease,
                status=OutboxStatus.ready,
            )
            orphans = [i for i, channel, _ in claimed if channel not in self.channels]
            if orphans:
                outbox.release(
                    session, orphans, self.worker_id, at + timedelta(minutes=5), "no gateway"
                )
                stats.deferred += len(orphans)
            ids = [i for i, channel, _ in claimed if channel in self.channels]
            if not ids:
                return len(claimed), jobs
            # Locked by the claim's update until this transaction ends.
            rows = list(
                session.scalars(select(OutboxMessage).where(in_ids(OutboxMessage.id, ids, session)))
            )
            jobs = self._judge_rows(session, rows, at, stats)
        return len(claimed), jobs

    def rejudge(self, ids: list[int], now: datetime | None, stats: DeliveryStats) -> list[Job]:
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
            if outbox.is_postgres(session):
                query = query.with_for_update()
            return self._judge_rows(session, list(session.scalars(query)), at, stats)

    def _judge_rows(
        self, session: Session, rows: list[OutboxMessage], at: datetime, stats: DeliveryStats
    ) -> list[Job]:
        """Ask the rules about ``rows`` (held by this worker) at ``at``: the rows they stop are
        suppressed or rescheduled here; the others are rendered into jobs."""
        jobs: list[Job] = []
        facts = SendTimeFacts(
            session,
            rows,
            policies=self._policies,
            lock_loans=outbox.is_postgres(session),
        )
        for row in sorted(rows, key=lambda r: (r.send_at, r.id)):
            snapshot, window = facts.snapshot(row, at)
            decision = decide(snapshot)
            campaign = row.purpose in CAMPAIGN_PURPOSES
            in_caps = counts(snapshot, decision)
            version = template_version(
                row.message_key, row.locale, limited=decision.limited, campaign=campaign
            )
            if decision.action != "send":
                self.outcomes.not_now(session, row, decision, at, window, stats, in_caps, version)
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
                about = audit(window.tz, at, in_caps, version)
                self.outcomes.suppress(session, row, "whatsapp_no_template", at, stats, about)
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
                    counts=in_caps,
                    template_version=version,
                    # The window is the borrower's for campaign messages only (C-1).
                    closes=window_closes(at, window).timestamp() if campaign else math.inf,
                )
            )
        return jobs

    def _needs_template(self, row: OutboxMessage, at: datetime, facts: SendTimeFacts) -> bool:
        if row.channel != "whatsapp":
            return False
        if row.last_error == FORCE_TEMPLATE or row.borrower_id is None:
            return row.last_error == FORCE_TEMPLATE
        last_inbound = facts.last_whatsapp_inbound(row.borrower_id)
        hours = self.config.delivery.whatsapp_session_hours
        return last_inbound is None or last_inbound < at - timedelta(hours=hours)

    # -- 2. mark ---------------------------------------------------------------------------
    def mark_sending(self, ids: list[int], now: datetime | None) -> set[int]:
        """Commit ``sending`` before the requests may leave: after this a crash can only leave an
        unknown outcome, never a resend. A lost connection is retried (outbox.reconnecting)."""
        lease = self.config.delivery.lease_seconds

        def attempt(again: bool) -> set[int]:
            with self.session_factory() as session, session.begin():
                until = (now or self.clock()) + timedelta(seconds=lease)
                return outbox.mark_sending(
                    session, ids, self.worker_id, lease_until=until, again=again
                )

        return outbox.reconnecting(attempt, lease / 3)

    # -- 3. record -------------------------------------------------------------------------
    def finish(
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

        def attempt(_: bool) -> DeliveryStats:
            counted = DeliveryStats()
            self._finish_once(jobs, now, counted, waits)
            return counted

        stats.add(outbox.reconnecting(attempt, self.config.delivery.lease_seconds))

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
        :meth:`Outcomes.record` row by row. Jobs held back (a pause, a missed slot) never left:
        they go back to the queue, in one update per channel, for when their chat's and their
        channel's next slots are free, rather than keeping this lane waiting. Rows this worker
        no longer holds (another took them over after the lease) are left alone.
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
                self.outcomes.record_sent(session, sent, at, stats)
            for (channel, closes), ids in held.items():
                send_at = at + timedelta(seconds=waits[channel])
                if closes is not None:
                    # Not before the window has closed: then it is judged outside the window
                    # and rescheduled to the next one, with its ledger event.
                    send_at = max(send_at, datetime.fromtimestamp(closes, UTC))
                released = outbox.return_unsent(session, ids, self.worker_id, send_at)
                stats.deferred += released
                stats.lost_lease += len(ids) - released
            for job in others:
                row = outbox.held_for_outcome(session, job.id, self.worker_id)
                if row is None:
                    stats.lost_lease += 1
                    continue
                assert job.result is not None
                self.outcomes.record(session, row, job.result, job, at, stats)

    # -- leases ----------------------------------------------------------------------------
    def renew(self, ids: list[int], until: datetime) -> None:
        with self.session_factory() as session, session.begin():
            outbox.renew(session, ids, self.worker_id, until)

    def release(self, ids: list[int], send_at: datetime, error: str | None) -> None:
        with self.session_factory() as session, session.begin():
            outbox.release(session, ids, self.worker_id, send_at, error)
