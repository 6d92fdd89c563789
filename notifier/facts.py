"""The facts the rules need at send time, read for a whole chunk of outbox rows at once.

Every message is judged again just before it goes (rules C-1 .. C-11): its borrower's consent and
chat identity, the loan's pause, installment and promises, the loan's recent attempts (caps), and
on WhatsApp the last inbound message (the 24-hour window). Read row by row this costs five round
trips per message; here it costs five per chunk, whatever its size.

On PostgreSQL the chunk's loans are locked (in id order, so workers cannot deadlock) until the
chunk's verdicts are committed: two workers cannot both pass the caps of one loan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, ChannelIdentity, Consent
from api.branches.models import Branch
from api.core.db import in_ids
from api.ledger.models import ContactEvent
from api.loans.models import Installment, InstallmentStatus, Loan
from api.outbox.models import OutboxMessage, OutboxStatus
from api.promises.models import PromiseStatus, PromiseToPay
from notifier.config import Policy
from notifier.policy import BranchPolicies, opted_in, opted_out
from notifier.rules import CAMPAIGN_PURPOSES, Calendar, Caps, Snapshot, Window, local_day

# Outbox states that are, or are about to be, an attempt on the borrower (caps, rule C-3).
ATTEMPTED = (OutboxStatus.ready, OutboxStatus.sending, OutboxStatus.sent, OutboxStatus.unknown)
# The caps look back 30 days; a little more covers any time zone.
_LOOKBACK = timedelta(days=32)
_NO_DAYS_OFF = Calendar("ZZ", closed_weekdays=frozenset())


@dataclass(frozen=True)
class ChannelFacts:
    branch_id: int
    consent_in: bool | None
    opted_out_at: datetime | None
    identity_in: bool | None
    identity_borrower: int | None
    verified_at: datetime | None


@dataclass(frozen=True)
class LoanFacts:
    paused: bool
    # The latest promised date among the loan's pending promises.
    pending_until: date | None


class SendTimeFacts:
    """Facts of one chunk of rows, loaded in bulk; :meth:`snapshot` judges one row at a time."""

    def __init__(
        self,
        session: Session,
        rows: Sequence[OutboxMessage],
        *,
        policies: BranchPolicies,
        lock_loans: bool,
    ) -> None:
        self._session = session
        self._policies = policies
        self._chunk = {row.id for row in rows}
        self._channels = self._channel_facts(rows)
        campaign = [r for r in rows if r.purpose in CAMPAIGN_PURPOSES and r.loan_id is not None]
        loan_ids = sorted({r.loan_id for r in campaign if r.loan_id is not None})
        if loan_ids and lock_loans:
            session.execute(
                select(Loan.id)
                .where(in_ids(Loan.id, loan_ids, self._session))
                .order_by(Loan.id)
                .with_for_update()
            ).all()
        self._loans = self._loan_facts(loan_ids)
        self._installments = self._statuses(
            Installment, {r.installment_id for r in campaign if r.installment_id is not None}
        )
        self._promises = self._statuses(
            PromiseToPay, {r.promise_id for r in campaign if r.promise_id is not None}
        )
        self._attempts = self._attempt_times(loan_ids, min((r.send_at for r in rows), default=None))
        self._last_inbound = self._whatsapp_inbound(
            {r.borrower_id for r in rows if r.channel == "whatsapp" and r.borrower_id is not None}
        )

    # -- bulk reads ------------------------------------------------------------------------
    def _channel_facts(self, rows: Sequence[OutboxMessage]) -> dict[int, ChannelFacts]:
        """Branch, consent and chat identity of each row's borrower on the row's channel."""
        ids = [r.id for r in rows if r.borrower_id is not None]
        if not ids:
            return {}
        # The outbox keeps the channel as text, consent and identity as the enum's name: the
        # same strings, compared in SQL.
        query = (
            select(
                OutboxMessage.id,
                Borrower.branch_id,
                Consent.opted_in,
                Consent.opted_out_at,
                ChannelIdentity.opted_in,
                ChannelIdentity.borrower_id,
                ChannelIdentity.verified_at,
            )
            .select_from(OutboxMessage)
            .join(Borrower, Borrower.id == OutboxMessage.borrower_id)
            .outerjoin(
                Consent,
                and_(Consent.borrower_id == Borrower.id, Consent.channel == OutboxMessage.channel),
            )
            .outerjoin(
                ChannelIdentity,
                and_(
                    ChannelIdentity.channel == OutboxMessage.channel,
                    ChannelIdentity.external_user_id == OutboxMessage.recipient,
                ),
            )
            .where(in_ids(OutboxMessage.id, ids, self._session))
        )
        return {int(row[0]): ChannelFacts(*row[1:]) for row in self._session.execute(query)}

    def _loan_facts(self, loan_ids: list[int]) -> dict[int, LoanFacts]:
        if not loan_ids:
            return {}
        pending = (
            select(
                PromiseToPay.loan_id.label("loan_id"),
                func.max(PromiseToPay.promised_date).label("until"),
            )
            .where(
                in_ids(PromiseToPay.loan_id, loan_ids, self._session),
                PromiseToPay.status == PromiseStatus.pending,
            )
            .group_by(PromiseToPay.loan_id)
            .subquery()
        )
        facts: dict[int, LoanFacts] = {}
        query = (
            select(Loan.id, Loan.collection_paused, pending.c.until)
            .outerjoin(pending, pending.c.loan_id == Loan.id)
            .where(in_ids(Loan.id, loan_ids, self._session))
        )
        for loan_id, paused, until in self._session.execute(query):
            if isinstance(until, str):  # SQLite hands MAX() of a date back as text
                until = date.fromisoformat(until)
            facts[int(loan_id)] = LoanFacts(bool(paused), until)
        return facts

    def _statuses(self, model: Any, ids: set[int]) -> dict[int, Any]:
        if not ids:
            return {}
        query = select(model.id, model.status).where(in_ids(model.id, sorted(ids), self._session))
        return {int(i): status for i, status in self._session.execute(query)}

    def _attempt_times(
        self, loan_ids: list[int], earliest: datetime | None
    ) -> dict[int, list[tuple[int, datetime, datetime]]]:
        """Per loan: (outbox id, planned send time, time it went or will go)."""
        attempts: dict[int, list[tuple[int, datetime, datetime]]] = defaultdict(list)
        if not loan_ids or earliest is None:
            return attempts
        query = select(
            OutboxMessage.loan_id, OutboxMessage.id, OutboxMessage.sent_at, OutboxMessage.send_at
        ).where(
            in_ids(OutboxMessage.loan_id, loan_ids, self._session),
            OutboxMessage.purpose.in_(CAMPAIGN_PURPOSES),
            OutboxMessage.status.in_(ATTEMPTED),
            OutboxMessage.send_at >= earliest - _LOOKBACK,
        )
        for loan_id, outbox_id, sent_at, send_at in self._session.execute(query):
            # The chunk's own rows count once their verdict says so (record_attempt).
            if loan_id is not None and outbox_id not in self._chunk:
                attempts[loan_id].append((outbox_id, send_at, sent_at or send_at))
        return attempts

    def _whatsapp_inbound(self, borrower_ids: set[int]) -> dict[int, datetime]:
        if not borrower_ids:
            return {}
        query = (
            select(ContactEvent.borrower_id, func.max(ContactEvent.at))
            .where(
                in_ids(ContactEvent.borrower_id, sorted(borrower_ids), self._session),
                ContactEvent.channel == "whatsapp",
                ContactEvent.direction == "inbound",
            )
            .group_by(ContactEvent.borrower_id)
        )
        return {b: at for b, at in self._session.execute(query) if b is not None and at is not None}

    # -- per row ---------------------------------------------------------------------------
    def policy(self, branch_id: int) -> tuple[Policy, Window]:
        cached = self._policies.known(branch_id)
        if cached is None:
            branch = self._session.get(Branch, branch_id)
            assert branch is not None
            cached = self._policies.of(branch)
        return cached

    def record_attempt(self, row: OutboxMessage, at: datetime) -> None:
        """A row of this chunk that will go: later rows of its loan count it against the caps."""
        if row.loan_id is not None and row.purpose in CAMPAIGN_PURPOSES:
            self._attempts[row.loan_id].append((row.id, row.send_at, at))

    def last_whatsapp_inbound(self, borrower_id: int | None) -> datetime | None:
        return self._last_inbound.get(borrower_id) if borrower_id is not None else None

    def snapshot(self, row: OutboxMessage, at: datetime) -> tuple[Snapshot, Window]:
        """What the rules need to judge ``row`` at ``at``."""
        facts = self._channels.get(row.id) if row.borrower_id is not None else None
        to_borrower = row.officer_id is None and facts is not None
        if facts is not None:
            policy, window = self.policy(facts.branch_id)
        else:
            policy = Policy()
            window = Window("UTC", policy.quiet_hours.start, policy.quiet_hours.end, _NO_DAYS_OFF)
        refused = asked = False
        verified = True
        if to_borrower and facts is not None:
            refused = opted_out(facts.consent_in, facts.opted_out_at, facts.identity_in)
            asked = opted_in(facts.consent_in, facts.identity_in)
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
            opted_out=refused,
            whatsapp_opted_in=asked,
            channel_verified=verified,
        )
        if row.purpose in CAMPAIGN_PURPOSES and row.loan_id is not None:
            snapshot = self._with_loan(snapshot, row, policy, window)
        return snapshot, window

    def _with_loan(
        self, snapshot: Snapshot, row: OutboxMessage, policy: Policy, window: Window
    ) -> Snapshot:
        assert row.loan_id is not None
        loan = self._loans.get(row.loan_id, LoanFacts(False, None))
        promise_step = row.step == "promise_due"
        paid = (
            row.installment_id is not None
            and row.purpose == "reminder"
            and self._installments.get(row.installment_id) == InstallmentStatus.paid
        )
        settled = (
            row.promise_id is not None
            and promise_step
            and self._promises.get(row.promise_id) != PromiseStatus.pending
        )
        hold = (
            loan.pending_until + timedelta(days=policy.promise_grace_days)
            if loan.pending_until
            else None
        )
        since = snapshot.at - _LOOKBACK
        attempts = tuple(
            local_day(went, window.tz)
            for outbox_id, planned, went in self._attempts.get(row.loan_id, ())
            if outbox_id != row.id and planned >= since
        )
        return replace(
            snapshot,
            loan_paused=loan.paused,
            installment_paid=paid,
            promise_settled=settled,
            promise_step=promise_step,
            promise_pending_until=hold,
            attempts=attempts,
        )
