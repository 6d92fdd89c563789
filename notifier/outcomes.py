"""What a verdict or a send result does to its outbox row, with its ledger event.

A row the rules stop is suppressed or rescheduled. A send result moves its row on:

- sent; unknown (the request may have left: never resent, rule R-4);
- blocked (the user blocked the bot or cannot receive): failed, and the borrower is opted out
  of that channel (rules C-5, R-7);
- channel error (a token, request or template the provider refuses): the message waits unsent
  and the channel halts with a dead letter until an operator resumes it; nobody is opted out;
- rate limited, recipient rate limited: back to the queue after ``retry_after`` (not an attempt
  on the borrower);
- outside the WhatsApp window: at once again, as the approved template;
- retryable: full-jitter exponential backoff, at most ``max_attempts``, then ``dead`` with a dead
  letter and an alert to the borrower's loan officer.

Every event carries the rule, the borrower's local time, the cap counts and the template version
(rule C-10).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers import preferences as borrower_preferences
from api.borrowers.models import Borrower, Channel
from api.branches.models import Officer
from api.ledger import service as ledger
from api.loans.models import Loan
from api.outbox import service as outbox_service
from api.outbox.models import DeadLetterReason, OutboxMessage, OutboxStatus
from bot.channels.base import SendOutcome, SendResult
from notifier import outbox
from notifier.config import CampaignConfig
from notifier.jobs import DeliveryStats, Job
from notifier.rules import Decision, Snapshot, Window, cap_counts, local_day, zone

# ``last_error`` of a row the provider refused outside the WhatsApp window: its next try is the
# approved template.
FORCE_TEMPLATE = "outside_window"


def counts(snapshot: Snapshot, decision: Decision) -> dict[str, int]:
    """The loan's attempts in the cap windows of the day a decision is about (rule C-10)."""
    return cap_counts(local_day(decision.send_at, snapshot.window.tz), snapshot.attempts)


def audit(tz: str, local: datetime, counts: dict[str, int], version: str | None) -> dict[str, Any]:
    """What every ledger event of a decision carries besides its rule (C-10): the borrower's
    local time it is about, the counts in the cap windows, the template version."""
    return {
        "local_send_at": local.astimezone(zone(tz)).isoformat(),
        "counts": counts,
        "template_version": version,
    }


def job_audit(job: Job, local: datetime) -> dict[str, Any]:
    return audit(job.tz, local, job.counts or {"day": 0, "7d": 0, "30d": 0}, job.template_version)


class Outcomes:
    """Writes verdicts and send results to outbox rows this worker holds, in the caller's
    transaction."""

    def __init__(self, *, config: CampaignConfig, worker_id: str) -> None:
        self.config = config
        self.worker_id = worker_id

    def event(
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
        event = self.event(
            row,
            at,
            decision,
            rule,
            external_message_id=row.provider_message_id,
            **(audit or {}),
            **detail,
        )
        ledger.record_many(session, [event])

    # -- verdicts --------------------------------------------------------------------------
    def suppress(
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

    def not_now(
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
        """A verdict other than ``send``: suppressed, or rescheduled to ``decision.send_at``."""
        # The local time the decision is about: when it would have gone, or goes now.
        about = audit(window.tz, decision.send_at, counts, version)
        if decision.action == "suppress":
            self.suppress(session, row, str(decision.rule), at, stats, about)
            return
        row.status = OutboxStatus.pending
        row.send_at = decision.send_at
        row.claimed_by = None
        row.lease_until = None
        self._log(session, row, at, "rescheduled", str(decision.rule), about)
        stats.rescheduled += 1

    # -- send results ----------------------------------------------------------------------
    def record_sent(
        self, session: Session, sent: Mapping[int, Job], at: datetime, stats: DeliveryStats
    ) -> None:
        """Mark the rows of ``sent`` sent, with their provider's ids and ledger events, in bulk."""
        provider_ids = {i: job.result.provider_message_id for i, job in sent.items() if job.result}
        rows = outbox.mark_sent(session, provider_ids, self.worker_id, at)
        events = []
        for row in rows:
            job = sent[row.id]
            events.append(
                self.event(
                    row,
                    at,
                    "sent",
                    str(job.decision.rule),
                    external_message_id=provider_ids[row.id],
                    limited=job.decision.limited,
                    **job_audit(job, at),
                )
            )
        ledger.record_many(session, events)
        stats.sent += len(rows)
        stats.lost_lease += len(sent) - len(rows)

    def record(
        self,
        session: Session,
        row: OutboxMessage,
        result: SendResult,
        job: Job,
        at: datetime,
        stats: DeliveryStats,
    ) -> None:
        """Move ``row`` on by the result of its send (one row; bulk sends: :meth:`record_sent`)."""
        outcome = result.outcome
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
                str(job.decision.rule),
                job_audit(job, at),
                limited=job.decision.limited,
            )
            stats.sent += 1
        elif outcome == SendOutcome.unknown:
            row.status = OutboxStatus.unknown
            row.last_error = result.error
            self._log(session, row, at, "unknown", "provider_timeout", job_audit(job, at))
            stats.unknown += 1
        elif outcome == SendOutcome.blocked:
            self._blocked(session, row, result, job, at)
            stats.failed += 1
        elif outcome == SendOutcome.channel_error:
            self._channel_error(session, row, result, job, at)
            stats.halted += 1
        elif outcome == SendOutcome.recipient_rate_limited:
            self._wait_for_limit(session, row, result, job, at, "recipient_rate_limited")
            stats.recipient_limited += 1
        elif outcome == SendOutcome.rate_limited:
            self._wait_for_limit(session, row, result, job, at, "rate_limited")
            stats.rate_limited += 1
        elif outcome == SendOutcome.outside_window:
            _back_to_queue(row, at, refused=True)
            row.last_error = FORCE_TEMPLATE
            self._log(session, row, at, "rescheduled", "whatsapp_window", job_audit(job, at))
            stats.retried += 1
        elif row.attempts >= self.config.delivery.max_attempts:
            self._dead(session, row, result, job, at)
            stats.dead += 1
        else:
            self._retry_later(session, row, result, job, at)
            stats.retried += 1

    def _blocked(
        self, session: Session, row: OutboxMessage, result: SendResult, job: Job, at: datetime
    ) -> None:
        row.status = OutboxStatus.failed
        row.last_error = result.error
        self._log(session, row, at, "failed", "blocked_by_user", job_audit(job, at))
        if row.borrower_id is not None and row.officer_id is None:
            self._opt_out(session, row, at)

    def _channel_error(
        self, session: Session, row: OutboxMessage, result: SendResult, job: Job, at: datetime
    ) -> None:
        # Refused before delivery, and not the borrower's doing: the message waits, unsent, for
        # the channel to be resumed; nobody is opted out.
        _back_to_queue(row, at, refused=True)
        row.last_error = result.error
        self._log(session, row, at, "rescheduled", "channel_halted", job_audit(job, at))
        # Seen by an operator in ``kopa cases`` until ``kopa notify resume``.
        self._dead_letter(session, row, at, DeadLetterReason.channel_error, result)

    def _wait_for_limit(
        self,
        session: Session,
        row: OutboxMessage,
        result: SendResult,
        job: Job,
        at: datetime,
        rule: str,
    ) -> None:
        """A 429 of the channel, or of one recipient (``rule``): back after ``retry_after``."""
        wait = (result.retry_after or 1.0) + self.config.delivery.retry_after_slack_seconds
        _back_to_queue(row, at + timedelta(seconds=wait), refused=True)
        self._log(
            session, row, at, "rescheduled", rule, job_audit(job, row.send_at), retry_after=wait
        )

    def _dead(
        self, session: Session, row: OutboxMessage, result: SendResult, job: Job, at: datetime
    ) -> None:
        row.status = OutboxStatus.dead
        row.last_error = result.error
        self._log(session, row, at, "dead", "retries_exhausted", job_audit(job, at))
        self._dead_letter(session, row, at, DeadLetterReason.retries_exhausted, result)
        self._alert_officer(session, row, at)

    def _dead_letter(
        self,
        session: Session,
        row: OutboxMessage,
        at: datetime,
        reason: DeadLetterReason,
        result: SendResult,
    ) -> None:
        outbox.add_dead_letter(
            session, row, at=at, reason=reason, error=result.error, worker_id=self.worker_id
        )

    def _retry_later(
        self, session: Session, row: OutboxMessage, result: SendResult, job: Job, at: datetime
    ) -> None:
        # Full jitter: spread retries so that recovering providers are not stampeded.
        delivery = self.config.delivery
        ceiling = min(
            delivery.backoff_cap_seconds, delivery.backoff_base_seconds * 2 ** (row.attempts - 1)
        )
        _back_to_queue(row, at + timedelta(seconds=random.uniform(0, ceiling)), refused=False)
        row.last_error = result.error
        self._log(session, row, at, "rescheduled", "retryable_failure", job_audit(job, row.send_at))

    def _opt_out(self, session: Session, row: OutboxMessage, at: datetime) -> None:
        """A blocked chat is an opt-out from that channel (rules C-5, R-7)."""
        assert row.borrower_id is not None
        borrower_preferences.opt_out_borrower(
            session=session,
            borrower_id=row.borrower_id,
            channel=Channel(row.channel),
            now=at,
            source="provider_blocked",
        )
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
        if officer is None or officer.channel is None or officer.chat_id is None:
            return
        loan = session.get(Loan, row.loan_id) if row.loan_id is not None else None
        outbox_service.enqueue(
            session=session,
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
            args={"account": loan.account_reference if loan else "-", "attempts": row.attempts},
            send_at=at,
        )


def _back_to_queue(row: OutboxMessage, send_at: datetime, *, refused: bool) -> None:
    """Queue ``row`` again for ``send_at``; ``refused``: the provider refused it before delivery,
    so its attempt does not count against the borrower's tries."""
    if refused:
        row.attempts -= 1
    row.status = OutboxStatus.retry
    row.send_at = send_at
    row.claimed_by = None
