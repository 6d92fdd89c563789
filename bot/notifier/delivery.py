"""Deliver due outbox rows: claim, check the rules again, render, send, record the outcome.

Claiming (rule R-2): on PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` marks a batch
``claimed`` with a lease, so several worker processes share the work; on SQLite a single
in-process worker claims with a plain update. Before its request may leave, a row becomes
``sending`` in its own committed transaction. A worker that dies therefore leaves either
``claimed`` rows (nothing left: reclaimed after the lease) or ``sending`` rows (maybe delivered:
marked ``unknown`` after the lease, never resent, counted against the caps, rule R-4).

Outcomes: sent; retryable (full-jitter exponential backoff, at most ``max_attempts``, then
``dead`` with an alert to the loan officer); final (the channel is unusable: opt-out recorded,
never retried); unknown (never resent); rate limited (the channel pauses for ``retry_after`` in
the shared limiter and the row waits); outside the WhatsApp window (retried as a template).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

import api.models  # noqa: F401 - every table, so that foreign keys resolve in a worker
from api.borrowers.models import Borrower, Channel, ChannelIdentity, Consent
from api.branches.models import Branch, Officer
from api.ledger import service as ledger
from api.ledger.models import ContactEvent
from api.loans.models import Installment, InstallmentStatus, Loan
from api.outbox.models import OutboxMessage, OutboxStatus
from api.promises.models import PromiseStatus, PromiseToPay
from bot.channels.base import ChannelGateway, OutboundMessage, SendOutcome, SendResult
from bot.notifier.config import (
    CampaignConfig,
    Policy,
    TemplateConfig,
    load_campaigns,
    load_templates,
)
from bot.notifier.planner import _window
from bot.notifier.ratelimit import LocalRateLimiter, RateLimiter, acquire, limits_from_config
from bot.notifier.render import CAMPAIGN_PURPOSES, TemplateMissing, build_outbound
from bot.notifier.rules import Calendar, Caps, Decision, Snapshot, Window, decide, local_day

logger = logging.getLogger(__name__)

ATTEMPTED = (OutboxStatus.sending, OutboxStatus.sent, OutboxStatus.unknown)
FORCE_TEMPLATE = "outside_window"


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

    def add(self, other: DeliveryStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def recover_expired(session: Session, now: datetime) -> tuple[int, int]:
    """Release claims whose worker vanished: ``claimed`` back to pending, ``sending`` to unknown.

    Returns:
        (reclaimed, unknown) counts.
    """
    reclaimed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.claimed, OutboxMessage.lease_until < now)
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


def claim(
    session: Session, *, now: datetime, worker_id: str, limit: int, lease_seconds: float
) -> list[tuple[int, str, str]]:
    """Claim up to ``limit`` due rows for ``worker_id``, oldest first.

    Returns:
        (id, channel, recipient) of each claimed row, in id order.
    """
    lease = now + timedelta(seconds=lease_seconds)
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.retry]),
            OutboxMessage.send_at <= now,
        )
        .order_by(OutboxMessage.send_at)
        .limit(limit)
    )
    if _is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    rows = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due.scalar_subquery()))
        .values(status=OutboxStatus.claimed, claimed_by=worker_id, lease_until=lease)
        .returning(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.recipient)
    ).all()
    return sorted((int(r[0]), str(r[1]), str(r[2])) for r in rows)


class Deliverer:
    """One worker's delivery logic; :func:`deliver_due` runs one pass of it."""

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
    ) -> None:
        self.session_factory = session_factory
        self.gateways = gateways
        self.worker_id = worker_id
        self.config = config or load_campaigns()
        self.templates = templates or load_templates()
        self.limiter = limiter or LocalRateLimiter(limits_from_config(self.config.channels))
        self.clock = clock
        self._policies: dict[int, tuple[Policy, Window]] = {}
        # Set on SIGTERM: the current sends finish, the rest of the batch is released.
        self.stopping = False

    async def run_once(self, *, now: datetime | None = None, limit: int = 100) -> DeliveryStats:
        stats = DeliveryStats()
        start = now or self.clock()
        lease = self.config.delivery.lease_seconds

        def claim_batch() -> list[tuple[int, str, str]]:
            with self.session_factory() as session, session.begin():
                stats.reclaimed, stats.unknown = recover_expired(session, start)
                return claim(
                    session, now=start, worker_id=self.worker_id, limit=limit, lease_seconds=lease
                )

        rows = await asyncio.to_thread(claim_batch)
        stats.claimed = len(rows)
        renewed = time.monotonic()
        for index, claimed in enumerate(rows):
            if time.monotonic() - renewed > lease / 3:
                # Heartbeat: the rows still waiting in this batch keep their lease.
                rest = [outbox_id for outbox_id, _, _ in rows[index:]]
                until = (now or self.clock()) + timedelta(seconds=lease)
                await asyncio.to_thread(self._renew, rest, until)
                renewed = time.monotonic()
            if self.stopping:
                # Shutting down: give the rest back now rather than after the lease.
                rest = [outbox_id for outbox_id, _, _ in rows[index:]]
                await asyncio.to_thread(self._release_all, rest, start)
                stats.deferred += len(rest)
                break
            try:
                await self._deliver_one(claimed, now, stats)
            except Exception:  # one bad row must not stop the batch; its lease will expire
                logger.exception("delivery of outbox row %s failed", claimed[0])
        return stats

    # -- one row ---------------------------------------------------------------------------
    def _policy(self, session: Session, branch_id: int) -> tuple[Policy, Window]:
        cached = self._policies.get(branch_id)
        if cached is None:
            branch = session.get(Branch, branch_id)
            assert branch is not None
            policy = self.config.policy_for(country=branch.country, branch_code=branch.code)
            cached = (policy, _window(policy, branch))
            self._policies[branch_id] = cached
        return cached

    async def _deliver_one(
        self, claimed: tuple[int, str, str], now: datetime | None, stats: DeliveryStats
    ) -> None:
        outbox_id, channel, recipient = claimed
        gateway = self.gateways.get(channel)
        if gateway is None:
            with self.session_factory() as session, session.begin():
                later = (now or self.clock()) + timedelta(minutes=5)
                self._release(session, outbox_id, later, "no gateway")
            stats.deferred += 1
            return
        # 1. A rate slot; a long wait (a 429 pause) gives the row back instead of holding it.
        # The slot is taken before the rules are asked, so a message they stop costs one slot:
        # cheaper than a second transaction for every message that goes.
        max_wait = self.config.delivery.lease_seconds / 3
        wait = await acquire(self.limiter, channel, recipient, max_wait)
        if wait > 0:
            with self.session_factory() as session, session.begin():
                later = (now or self.clock()) + timedelta(seconds=wait)
                self._release(session, outbox_id, later, None)
            stats.deferred += 1
            return
        # 2. Ask the rules with fresh facts and mark the row as possibly leaving (in a thread:
        # psycopg releases the GIL while it waits, so the lanes overlap their round trips).
        prepared = await asyncio.to_thread(self._prepare, outbox_id, now, stats)
        if prepared is None:
            return
        outbound, decision = prepared
        # A 429 seen by any worker while this row was being prepared: the slot taken before
        # no longer holds. Nothing has left, so the row simply waits for the pause to pass.
        paused = await self.limiter.paused_for(channel)
        if paused > 0:
            later = (now or self.clock()) + timedelta(seconds=paused)
            await asyncio.to_thread(self._unsend, outbox_id, later)
            stats.deferred += 1
            return
        # 3. Send, then record what happened.
        result = await gateway.send(outbound)
        await asyncio.to_thread(self._finish, outbox_id, result, decision, now, stats)
        if result.outcome == SendOutcome.rate_limited:
            # Shared with every worker: nothing to this channel before retry_after.
            slack = self.config.delivery.retry_after_slack_seconds
            await self.limiter.pause(channel, (result.retry_after or 1.0) + slack)

    def _prepare(
        self, outbox_id: int, now: datetime | None, stats: DeliveryStats
    ) -> tuple[OutboundMessage, Decision] | None:
        """Judge and render the row, and commit it as ``sending`` before the request leaves.

        Campaign rows lock their loan while its facts are read, so that two workers cannot
        both pass the caps; after the commit a crash can only leave an unknown outcome, never
        a resend.
        """
        with self.session_factory() as session, session.begin():
            row = self._lock(session, outbox_id)
            if row is None:
                stats.lost_lease += 1
                return None
            at = now or self.clock()
            decision, window = self._decide(session, row, at)
            if decision.action != "send":
                self._not_now(session, row, decision, at, window, stats)
                return None
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
                    use_template=self._needs_template(session, row, at),
                    templates=self.templates,
                )
            except TemplateMissing:
                self._suppress(session, row, "whatsapp_no_template", at, stats)
                return None
            row.status = OutboxStatus.sending
            row.attempts += 1
            row.lease_until = at + timedelta(seconds=self.config.delivery.lease_seconds)
        return outbound, decision

    def _finish(
        self,
        outbox_id: int,
        result: SendResult,
        decision: Decision,
        now: datetime | None,
        stats: DeliveryStats,
    ) -> None:
        with self.session_factory() as session, session.begin():
            row = session.get(OutboxMessage, outbox_id, with_for_update=_is_postgres(session))
            if row is None or row.claimed_by != self.worker_id:
                stats.lost_lease += 1
                return
            self._record(session, row, result, decision, now or self.clock(), stats)

    def _lock(self, session: Session, outbox_id: int) -> OutboxMessage | None:
        row = session.get(OutboxMessage, outbox_id, with_for_update=_is_postgres(session))
        if row is None or row.status != OutboxStatus.claimed or row.claimed_by != self.worker_id:
            return None
        return row

    def _unsend(self, outbox_id: int, send_at: datetime) -> None:
        """Take back a ``sending`` mark whose request never left."""
        with self.session_factory() as session, session.begin():
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == outbox_id,
                    OutboxMessage.claimed_by == self.worker_id,
                    OutboxMessage.status == OutboxStatus.sending,
                )
                .values(
                    status=OutboxStatus.pending,
                    attempts=OutboxMessage.attempts - 1,
                    send_at=send_at,
                    claimed_by=None,
                    lease_until=None,
                )
            )

    def _renew(self, ids: list[int], until: datetime) -> None:
        with self.session_factory() as session, session.begin():
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    OutboxMessage.claimed_by == self.worker_id,
                    OutboxMessage.status == OutboxStatus.claimed,
                )
                .values(lease_until=until)
            )

    def _release_all(self, ids: list[int], send_at: datetime) -> None:
        with self.session_factory() as session, session.begin():
            for outbox_id in ids:
                self._release(session, outbox_id, send_at, None)

    def _release(
        self, session: Session, outbox_id: int, send_at: datetime, error: str | None
    ) -> None:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id, OutboxMessage.claimed_by == self.worker_id)
            .where(OutboxMessage.status == OutboxStatus.claimed)
            .values(
                status=OutboxStatus.pending,
                send_at=send_at,
                claimed_by=None,
                lease_until=None,
                last_error=error,
            )
        )

    def _needs_template(self, session: Session, row: OutboxMessage, at: datetime) -> bool:
        if row.channel != "whatsapp":
            return False
        if row.last_error == FORCE_TEMPLATE or row.borrower_id is None:
            return row.last_error == FORCE_TEMPLATE
        hours = self.config.delivery.whatsapp_session_hours
        last_inbound = session.scalar(
            select(ContactEvent.at)
            .where(
                ContactEvent.borrower_id == row.borrower_id,
                ContactEvent.channel == "whatsapp",
                ContactEvent.direction == "inbound",
            )
            .order_by(ContactEvent.at.desc())
            .limit(1)
        )
        return last_inbound is None or last_inbound < at - timedelta(hours=hours)

    def _decide(
        self, session: Session, row: OutboxMessage, at: datetime
    ) -> tuple[Decision, Window]:
        """Build the send-time snapshot of ``row`` and ask the rules.

        The facts come in two queries (borrower and channel; installment, promises and loan),
        plus the loan's recent attempts: each round trip is paid by every message.
        """
        facts = self._channel_facts(session, row) if row.borrower_id is not None else None
        to_borrower = row.officer_id is None and facts is not None
        if facts is not None:
            policy, window = self._policy(session, facts.branch_id)
        else:
            policy = Policy()
            window = Window("UTC", policy.quiet_hours.start, policy.quiet_hours.end, _NO_DAYS_OFF)
        opted_out = opted_in = False
        verified = True
        if to_borrower and facts is not None:
            opted_out = bool(
                (facts.consent_in is False and facts.opted_out_at is not None)
                or facts.identity_in is False
            )
            opted_in = bool(facts.consent_in or facts.identity_in)
            verified = bool(
                facts.identity_borrower == row.borrower_id and facts.verified_at is not None
            )
        snapshot = Snapshot(
            at=at,
            purpose=row.purpose,
            channel=row.channel,
            window=window,
            caps=Caps(**policy.caps.model_dump()),
            is_collection=row.is_collection,
            to_borrower=to_borrower,
            opted_out=opted_out,
            whatsapp_opted_in=opted_in,
            channel_verified=verified,
        )
        if row.purpose in CAMPAIGN_PURPOSES and row.loan_id is not None:
            snapshot = self._campaign_facts(session, row, snapshot, policy, window, at)
        return decide(snapshot), window

    def _channel_facts(self, session: Session, row: OutboxMessage) -> Any:
        """Branch, consent and chat identity of the row's borrower on the row's channel."""
        channel = Channel(row.channel) if row.channel in Channel.__members__ else None
        return session.execute(
            select(
                Borrower.branch_id,
                Consent.opted_in.label("consent_in"),
                Consent.opted_out_at,
                ChannelIdentity.opted_in.label("identity_in"),
                ChannelIdentity.borrower_id.label("identity_borrower"),
                ChannelIdentity.verified_at,
            )
            .select_from(Borrower)
            .outerjoin(
                Consent, and_(Consent.borrower_id == Borrower.id, Consent.channel == channel)
            )
            .outerjoin(
                ChannelIdentity,
                and_(
                    ChannelIdentity.channel == channel,
                    ChannelIdentity.external_user_id == row.recipient,
                ),
            )
            .where(Borrower.id == row.borrower_id)
        ).first()

    def _campaign_facts(
        self,
        session: Session,
        row: OutboxMessage,
        snapshot: Snapshot,
        policy: Policy,
        window: Window,
        at: datetime,
    ) -> Snapshot:
        promise_step = row.step == "promise_due"
        installment_status = (
            select(Installment.status).where(Installment.id == row.installment_id)
        ).scalar_subquery()
        promise_status = (
            select(PromiseToPay.status).where(PromiseToPay.id == row.promise_id)
        ).scalar_subquery()
        pending_until = (
            select(func.max(PromiseToPay.promised_date)).where(
                PromiseToPay.loan_id == row.loan_id,
                PromiseToPay.status == PromiseStatus.pending,
            )
        ).scalar_subquery()
        query = select(
            Loan.collection_paused,
            installment_status.label("installment_status"),
            promise_status.label("promise_status"),
            pending_until.label("pending_until"),
        ).where(Loan.id == row.loan_id)
        if _is_postgres(session):
            # The loan's lock serialises its messages across workers, so two cannot both pass
            # the caps (SQLite has a single worker).
            query = query.with_for_update(of=Loan)
        facts = session.execute(query).one()
        paid = (
            row.installment_id is not None
            and row.purpose == "reminder"
            and facts.installment_status == InstallmentStatus.paid
        )
        settled = (
            row.promise_id is not None
            and promise_step
            and facts.promise_status != PromiseStatus.pending
        )
        pending = facts.pending_until
        if isinstance(pending, str):  # SQLite hands MAX() of a date back as text
            pending = date.fromisoformat(pending)
        hold = pending + timedelta(days=policy.promise_grace_days) if pending else None
        others = session.execute(
            select(OutboxMessage.sent_at, OutboxMessage.send_at).where(
                OutboxMessage.loan_id == row.loan_id,
                OutboxMessage.id != row.id,
                OutboxMessage.purpose.in_(CAMPAIGN_PURPOSES),
                OutboxMessage.status.in_(ATTEMPTED),
                OutboxMessage.send_at >= at - timedelta(days=32),
            )
        ).all()
        attempts: tuple[date, ...] = tuple(
            local_day(sent_at or send_at, window.tz) for sent_at, send_at in others
        )
        return Snapshot(
            **{
                **snapshot.__dict__,
                "loan_paused": bool(facts.collection_paused),
                "installment_paid": paid,
                "promise_settled": settled,
                "promise_step": promise_step,
                "promise_pending_until": hold,
                "attempts": attempts,
            }
        )

    # -- outcomes --------------------------------------------------------------------------
    def _log(
        self,
        session: Session,
        row: OutboxMessage,
        at: datetime,
        decision: str,
        rule: str,
        **detail: Any,
    ) -> None:
        ledger.record(
            session=session,
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
            external_message_id=row.provider_message_id,
            detail={
                "outbox_id": row.id,
                "step": row.step,
                "attempt": row.attempts,
                "policy_version": self.config.version,
                "worker": self.worker_id,
                **detail,
            },
        )

    def _suppress(
        self, session: Session, row: OutboxMessage, rule: str, at: datetime, stats: DeliveryStats
    ) -> None:
        row.status = OutboxStatus.suppressed
        row.last_error = rule
        row.claimed_by = None
        row.lease_until = None
        self._log(session, row, at, "suppressed", rule)
        stats.suppressed += 1

    def _not_now(
        self,
        session: Session,
        row: OutboxMessage,
        decision: Decision,
        at: datetime,
        window: Window,
        stats: DeliveryStats,
    ) -> None:
        if decision.action == "suppress":
            self._suppress(session, row, str(decision.rule), at, stats)
            return
        row.status = OutboxStatus.pending
        row.send_at = decision.send_at
        row.claimed_by = None
        row.lease_until = None
        self._log(
            session,
            row,
            at,
            "rescheduled",
            str(decision.rule),
            local_send_at=decision.send_at.astimezone(window.zone).isoformat(),
        )
        stats.rescheduled += 1

    def _record(
        self,
        session: Session,
        row: OutboxMessage,
        result: SendResult,
        decision: Decision,
        at: datetime,
        stats: DeliveryStats,
    ) -> None:
        delivery = self.config.delivery
        outcome = result.outcome
        row.lease_until = None
        if outcome == SendOutcome.sent:
            row.status = OutboxStatus.sent
            row.sent_at = at
            row.provider_message_id = result.provider_message_id
            row.last_error = None
            self._log(session, row, at, "sent", str(decision.rule), limited=decision.limited)
            stats.sent += 1
        elif outcome == SendOutcome.unknown:
            row.status = OutboxStatus.unknown
            row.last_error = result.error
            self._log(session, row, at, "unknown", "provider_timeout")
            stats.unknown += 1
        elif outcome == SendOutcome.final:
            row.status = OutboxStatus.failed
            row.last_error = result.error
            self._log(session, row, at, "failed", "blocked_by_user")
            if row.borrower_id is not None and row.officer_id is None:
                self._record_opt_out(session, row, at)
            stats.failed += 1
        elif outcome == SendOutcome.rate_limited:
            wait = (result.retry_after or 1.0) + delivery.retry_after_slack_seconds
            row.attempts -= 1  # refused before delivery: not an attempt on the borrower
            row.status = OutboxStatus.retry
            row.send_at = at + timedelta(seconds=wait)
            row.claimed_by = None
            self._log(session, row, at, "rescheduled", "rate_limited", retry_after=wait)
            stats.rate_limited += 1
        elif outcome == SendOutcome.outside_window:
            row.attempts -= 1
            row.status = OutboxStatus.retry
            row.send_at = at
            row.claimed_by = None
            row.last_error = FORCE_TEMPLATE
            self._log(session, row, at, "rescheduled", "whatsapp_window")
            stats.retried += 1
        elif row.attempts >= delivery.max_attempts:
            row.status = OutboxStatus.dead
            row.last_error = result.error
            self._log(session, row, at, "dead", "retries_exhausted")
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
            self._log(session, row, at, "rescheduled", "retryable_failure")
            stats.retried += 1

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


_NO_DAYS_OFF = Calendar("ZZ", closed_weekdays=frozenset())


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
    return await deliverer.run_once(now=now, limit=limit)
