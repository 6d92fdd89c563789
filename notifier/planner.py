"""Decide, for one instant, which campaign messages each loan gets, and write them to the outbox.

Loans are planned a chunk at a time, each chunk's facts read in a handful of queries. A loan's
candidates for its local day (:mod:`notifier.candidates`) go to the borrower's channel
(:func:`choose_channel`), are each judged by :func:`notifier.rules.decide` and become one outbox
row under a unique business key (loan, installment/promise/group, step, nominal day), even when
suppressed, so planning again inserts nothing and writes nothing twice to the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import api.models  # noqa: F401 - every table, so that foreign keys resolve in a worker
from api.borrowers.models import Borrower, ChannelIdentity, Consent
from api.branches.models import BorrowerGroup, Branch
from api.core.config import HoldoutPolicy, get_settings
from api.ledger.models import ContactEvent
from api.loans.models import Installment, InstallmentStatus, Loan, LoanStatus
from api.outbox.models import OutboxMessage, OutboxStatus
from api.promises.models import PromiseStatus, PromiseToPay
from notifier.candidates import PRIORITY, Candidate, find_candidates
from notifier.config import CampaignConfig, Policy, load_campaigns
from notifier.holdout import withheld
from notifier.policy import BranchPolicies, opted_in, opted_out
from notifier.render import template_version
from notifier.rules import (
    CAMPAIGN_PURPOSES,
    Caps,
    Rule,
    Snapshot,
    Window,
    cap_counts,
    decide,
    local_day,
)

# Outbox states that count as an attempt against the caps (C-3), or will become one.
COUNTED_STATUSES = (
    OutboxStatus.pending,
    OutboxStatus.retry,
    OutboxStatus.claimed,
    OutboxStatus.ready,
    OutboxStatus.sending,
    OutboxStatus.sent,
    OutboxStatus.unknown,
)
NO_CHANNEL = "no_channel"


class HighRiskLoans(Protocol):
    """The loans in the officers' high-risk band on day ``at``, scores refreshed to it first
    (:func:`api.risk.service.high_risk_loans`, handed over by ``kopa``: the notifier never
    imports api.risk). Loan ids only: no score reaches a message, a rule or the ledger."""

    def __call__(self, *, session: Session, at: date) -> frozenset[int]: ...


@dataclass(frozen=True)
class ChannelChoice:
    channel: str
    recipient: str
    verified: bool
    opted_out: bool
    whatsapp_opted_in: bool


@dataclass
class PlanResult:
    candidates: list[Candidate]
    inserted: int = 0

    def counts(self) -> dict[tuple[str, str, str], int]:
        table: dict[tuple[str, str, str], int] = defaultdict(int)
        for c in self.candidates:
            table[(c.step, c.channel or "-", c.reason if c.status == "suppressed" else "")] += 1
        return dict(table)


def choose_channel(
    phone_e164: str, identities: Sequence[Any], consents: dict[str, Any]
) -> ChannelChoice | None:
    """The borrower's channel: a verified Telegram chat, else verified WhatsApp, else WhatsApp to
    the phone on file (not verified as theirs: limited content). An opted-out channel is skipped
    when another remains."""
    options: list[ChannelChoice] = []
    by_channel = {str(i.channel): i for i in identities if i.verified_at is not None}
    for channel in ("telegram", "whatsapp"):
        identity = by_channel.get(channel)
        consent = consents.get(channel)
        consent_in = consent.opted_in if consent is not None else None
        chat_in = identity.opted_in if identity is not None else None
        refused = opted_out(
            consent_in, consent.opted_out_at if consent is not None else None, chat_in
        )
        asked = opted_in(consent_in, chat_in)
        if identity is not None:
            options.append(ChannelChoice(channel, identity.external_user_id, True, refused, asked))
        elif channel == "whatsapp" and (asked or refused):
            options.append(ChannelChoice(channel, phone_e164.lstrip("+"), False, refused, asked))
    if not options:
        return None
    for option in options:
        if not option.opted_out and (option.channel != "whatsapp" or option.whatsapp_opted_in):
            return option
    return options[0]


def _chunks(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


_INSTALLMENT_COLUMNS = (
    Installment.id,
    Installment.loan_id,
    Installment.seq,
    Installment.due_date,
    Installment.status,
    Installment.paid_on,
    Installment.principal_due,
    Installment.interest_due,
    Installment.fees_due,
    Installment.principal_paid,
    Installment.interest_paid,
    Installment.fees_paid,
)


class Planner:
    """Plans one instant for every loan (or the given ones), chunk by chunk.

    With ``high_risk``, each plan first asks which loans are in the high-risk band on its (UTC)
    day, which refreshes the day's scores once, and those loans get the policy's earlier first
    reminder (:meth:`notifier.config.Policy.for_high_risk`), judged by the same rules as any
    (the holdout included).
    """

    def __init__(
        self,
        config: CampaignConfig | None = None,
        chunk_size: int = 2000,
        holdout: HoldoutPolicy | None = None,
        *,
        high_risk: HighRiskLoans | None = None,
    ) -> None:
        self.config = config or load_campaigns()
        self.holdout = holdout or get_settings().holdout
        self.chunk_size = chunk_size
        self._policies = BranchPolicies(self.config)
        self.high_risk = high_risk

    def plan(
        self,
        session: Session,
        at: datetime,
        *,
        write: bool,
        loan_ids: Sequence[int] | None = None,
    ) -> PlanResult:
        """Judge every candidate at ``at``; with ``write`` insert outbox rows and ledger events."""
        if at.tzinfo is None:
            raise ValueError("naive datetime")
        result = PlanResult(candidates=[])
        if loan_ids is None:
            loan_ids = list(
                session.scalars(
                    select(Loan.id)
                    .where(Loan.status.in_([LoanStatus.active, LoanStatus.closed]))
                    .order_by(Loan.id)
                )
            )
        risky = (
            self.high_risk(session=session, at=at.astimezone(UTC).date())
            if self.high_risk
            else frozenset()
        )
        for chunk in _chunks(loan_ids, self.chunk_size):
            candidates = self._plan_chunk(session, at, chunk, risky)
            if write and candidates:
                result.inserted += self._write(session, at, candidates)
            result.candidates.extend(candidates)
        return result

    def _plan_chunk(
        self, session: Session, at: datetime, loan_ids: Sequence[int], risky: frozenset[int]
    ) -> list[Candidate]:
        utc_day = at.astimezone(UTC).date()
        loans = session.execute(
            select(
                Loan.id,
                Loan.borrower_id,
                Loan.group_id,
                Loan.account_reference,
                Loan.currency,
                Loan.status,
                Loan.cycle,
                Loan.collection_paused,
                Borrower.phone_e164,
                Borrower.preferred_language,
                Borrower.branch_id,
            )
            .join(Borrower, Borrower.id == Loan.borrower_id)
            .where(Loan.id.in_(loan_ids))
        ).all()
        if not loans:
            return []
        branch_ids = {row.branch_id for row in loans}
        branches = {
            b.id: b
            for b in session.execute(select(Branch).where(Branch.id.in_(branch_ids))).scalars()
        }
        max_step = max(
            [30]
            + [max(self._policies.of(b)[0].installment_steps, default=0) for b in branches.values()]
        )
        min_step = min(
            [-3]
            + [
                min(self._policies.of(b)[0].for_high_risk().installment_steps, default=0)
                for b in branches.values()
            ]
        )
        lo = utc_day - timedelta(days=max_step + 2)
        hi = utc_day + timedelta(days=-min_step + 2)
        near = session.execute(
            select(*_INSTALLMENT_COLUMNS).where(
                Installment.loan_id.in_(loan_ids),
                or_(
                    and_(
                        Installment.status != InstallmentStatus.paid,
                        Installment.due_date.between(lo, hi),
                    ),
                    Installment.paid_on.between(
                        utc_day - timedelta(days=4), utc_day + timedelta(days=1)
                    ),
                ),
            )
        ).all()
        paid_recently = {i.loan_id for i in near if i.paid_on is not None}
        all_inst: dict[int, list[Any]] = defaultdict(list)
        if paid_recently:
            for inst in session.execute(
                select(*_INSTALLMENT_COLUMNS).where(Installment.loan_id.in_(paid_recently))
            ):
                all_inst[inst.loan_id].append(inst)
        near_by_loan: dict[int, list[Any]] = defaultdict(list)
        for inst in near:
            near_by_loan[inst.loan_id].append(inst)

        promises: dict[int, list[Any]] = defaultdict(list)
        for p in session.execute(
            select(
                PromiseToPay.id,
                PromiseToPay.loan_id,
                PromiseToPay.amount,
                PromiseToPay.amount_paid,
                PromiseToPay.currency,
                PromiseToPay.promised_date,
                PromiseToPay.status,
                PromiseToPay.evaluated_at,
            ).where(
                PromiseToPay.loan_id.in_(loan_ids),
                PromiseToPay.status.in_([PromiseStatus.pending, PromiseStatus.broken]),
                PromiseToPay.promised_date >= utc_day - timedelta(days=45),
            )
        ):
            promises[p.loan_id].append(p)

        borrower_ids = {row.borrower_id for row in loans}
        identities: dict[int, list[Any]] = defaultdict(list)
        for ident in session.execute(
            select(
                ChannelIdentity.borrower_id,
                ChannelIdentity.channel,
                ChannelIdentity.external_user_id,
                ChannelIdentity.verified_at,
                ChannelIdentity.opted_in,
            ).where(ChannelIdentity.borrower_id.in_(borrower_ids))
        ):
            identities[ident.borrower_id].append(ident)
        consents: dict[int, dict[str, Any]] = defaultdict(dict)
        for consent in session.execute(
            select(
                Consent.borrower_id, Consent.channel, Consent.opted_in, Consent.opted_out_at
            ).where(Consent.borrower_id.in_(borrower_ids))
        ):
            consents[consent.borrower_id][str(consent.channel)] = consent

        group_ids = {row.group_id for row in loans if row.group_id is not None}
        groups = (
            {
                g.id: g
                for g in session.execute(
                    select(BorrowerGroup).where(BorrowerGroup.id.in_(group_ids))
                ).scalars()
            }
            if group_ids
            else {}
        )
        attempts = self._attempts(session, loan_ids, at)

        out: list[Candidate] = []
        for row in loans:
            branch = branches[row.branch_id]
            policy, window = self._policies.of(branch)
            if row.id in risky:
                policy = policy.for_high_risk()
            today = local_day(at, window.tz)
            found = find_candidates(
                row,
                today,
                policy,
                window,
                near_by_loan.get(row.id, []),
                all_inst.get(row.id, []),
                promises.get(row.id, []),
                groups,
            )
            if not found:
                continue
            choice = choose_channel(
                row.phone_e164,
                identities.get(row.borrower_id, []),
                consents.get(row.borrower_id, {}),
            )
            pending_until = self._promise_hold(promises.get(row.id, []), policy, today)
            planned_days = dict(attempts.get(row.id, {}))
            found.sort(key=lambda c: PRIORITY[c.kind])
            for cand in found:
                self._judge(cand, at, policy, window, choice, row, pending_until, planned_days)
                out.append(cand)
        return out

    @staticmethod
    def _promise_hold(promises: Sequence[PromiseToPay], policy: Policy, today: date) -> date | None:
        pending = [p for p in promises if p.status == PromiseStatus.pending]
        if not pending:
            return None
        return max(p.promised_date for p in pending) + timedelta(days=policy.promise_grace_days)

    def _attempts(
        self, session: Session, loan_ids: Sequence[int], at: datetime
    ) -> dict[int, dict[str, date]]:
        """Per loan, business key -> local day of every counted campaign message near ``at``."""
        rows = session.execute(
            select(
                OutboxMessage.loan_id,
                OutboxMessage.business_key,
                func.coalesce(OutboxMessage.sent_at, OutboxMessage.send_at),
                Branch.timezone,
            )
            .join(Borrower, Borrower.id == OutboxMessage.borrower_id)
            .join(Branch, Branch.id == Borrower.branch_id)
            .where(
                OutboxMessage.loan_id.in_(loan_ids),
                OutboxMessage.purpose.in_(CAMPAIGN_PURPOSES),
                OutboxMessage.status.in_(COUNTED_STATUSES),
                OutboxMessage.send_at.between(at - timedelta(days=32), at + timedelta(days=32)),
            )
        ).all()
        found: dict[int, dict[str, date]] = defaultdict(dict)
        for loan_id, key, when, tz in rows:
            if loan_id is None:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            found[loan_id][key] = local_day(when, tz)
        return found

    def _judge(
        self,
        cand: Candidate,
        at: datetime,
        policy: Policy,
        window: Window,
        choice: ChannelChoice | None,
        row: Any,
        pending_until: date | None,
        planned_days: dict[str, date],
    ) -> None:
        """Decide one candidate; ``planned_days`` (business key -> local day) grows with it."""
        nominal_start = datetime.combine(cand.nominal_day, policy.send_time, tzinfo=window.zone)
        send_at = max(at, nominal_start)
        # A row planned before under the same key is judged again without counting itself.
        others = tuple(d for key, d in planned_days.items() if key != cand.business_key)
        withheld_by = str(Rule.holdout) if withheld(cand, self.holdout) else None
        if choice is None or withheld_by:
            cand.status, cand.reason, cand.decision, cand.send_at = (
                "suppressed",
                withheld_by or NO_CHANNEL,
                "suppress",
                send_at,
            )
            cand.counts = cap_counts(local_day(send_at, window.tz), others)
            return
        cand.channel, cand.recipient = choice.channel, choice.recipient
        decision = decide(
            Snapshot(
                at=send_at,
                purpose=cand.purpose,
                channel=choice.channel,
                window=window,
                caps=Caps(**policy.caps.model_dump()),
                is_collection=cand.is_collection,
                opted_out=choice.opted_out,
                whatsapp_opted_in=choice.whatsapp_opted_in,
                channel_verified=choice.verified,
                loan_paused=bool(row.collection_paused),
                promise_pending_until=pending_until,
                promise_step=cand.promise_step,
                attempts=others,
            )
        )
        cand.send_at = decision.send_at
        cand.decision = decision.action
        cand.reason = str(decision.rule)
        cand.limited = decision.limited
        day_ = local_day(decision.send_at, window.tz)
        cand.counts = cap_counts(day_, others)
        if decision.action == "suppress":
            cand.status = "suppressed"
        else:
            cand.status = "planned"
            planned_days[cand.business_key] = day_

    def _write(self, session: Session, at: datetime, candidates: Sequence[Candidate]) -> int:
        """Insert outbox rows (ON CONFLICT DO NOTHING) and a ledger event for each new one."""
        rows: list[dict[str, Any]] = [
            {
                "business_key": c.business_key,
                "purpose": c.purpose,
                "step": c.step,
                "is_collection": c.is_collection,
                "borrower_id": c.borrower_id,
                "loan_id": c.loan_id,
                "installment_id": c.installment_id,
                "promise_id": c.promise_id,
                "channel": c.channel or "none",
                "recipient": c.recipient,
                "locale": c.locale,
                "message_key": c.message_key,
                "args": c.args,
                "buttons": [],
                "status": OutboxStatus.pending
                if c.status == "planned"
                else OutboxStatus.suppressed,
                "send_at": c.send_at,
                "attempts": 0,
                "last_error": None if c.status == "planned" else c.reason,
            }
            for c in candidates
        ]
        dialect = session.get_bind().dialect.name
        upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        outbox = cast(Table, OutboxMessage.__table__)
        # Keys planned before are skipped up front: with RETURNING, an ON CONFLICT executemany
        # runs row by row on PostgreSQL, while without it the rows go in batches. A concurrent
        # planner (workers take an advisory lock; a CLI run might not) is still stopped by
        # ON CONFLICT, at worst writing a second ledger event for the same message.
        keys = [r["business_key"] for r in rows]
        existing = set(
            session.scalars(select(outbox.c.business_key).where(outbox.c.business_key.in_(keys)))
        )
        fresh = [r for r in rows if r["business_key"] not in existing]
        if fresh:
            stmt = upsert(outbox).on_conflict_do_nothing(index_elements=["business_key"])
            session.execute(stmt, fresh)
        new_keys = {r["business_key"] for r in fresh}
        if not new_keys:
            return 0
        version = self.config.version
        # Bulk insert: the ledger service adds one ORM object per event, too slow for a campaign
        # of 100 000 loans. The details carry no message text, as the service demands.
        events = [
            {
                "at": at,
                "borrower_id": c.borrower_id,
                "loan_id": c.loan_id,
                "channel": c.channel or None,
                "direction": "outbound",
                "kind": c.purpose,
                "decision": {"send": "planned", "reschedule": "rescheduled"}.get(
                    c.decision, "suppressed"
                ),
                "rule": c.reason,
                "message_key": c.message_key,
                "detail": {
                    "business_key": c.business_key,
                    "step": c.step,
                    "policy_version": version,
                    "local_send_at": c.local_send_at(),
                    "counts": c.counts,
                    "limited": c.limited,
                    "template_version": template_version(
                        c.message_key,
                        c.locale,
                        limited=c.limited,
                        campaign=c.purpose in CAMPAIGN_PURPOSES,
                    ),
                },
            }
            for c in candidates
            if c.business_key in new_keys
        ]
        for start in range(0, len(events), 1000):
            session.execute(
                cast(Table, ContactEvent.__table__).insert(), events[start : start + 1000]
            )
        return len(new_keys)
