"""Decide, for one instant, which campaign messages each loan gets, and write them to the outbox.

A candidate exists when a loan's *nominal day* (in the borrower's local calendar) is today: an
installment step (due date + offset), a promise's day or the day after it was broken, the day
after an on-time payment (thanks, streaks, early-repayment note, next cycle), the day before a
group meeting. Each candidate is judged by :func:`notifier.rules.decide` and becomes one
outbox row under a unique business key (loan, installment/promise/group, step, nominal day), even
when suppressed, so planning again inserts nothing and writes nothing twice to the ledger.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import api.models  # noqa: F401 - every table, so that foreign keys resolve in a worker
from api.borrowers.models import Borrower, ChannelIdentity, Consent
from api.branches.models import BorrowerGroup, Branch
from api.ledger.models import ContactEvent
from api.loans import rules
from api.loans.models import Installment, InstallmentStatus, Loan, LoanStatus
from api.outbox.models import OutboxMessage, OutboxStatus
from api.promises.models import PromiseStatus, PromiseToPay
from i18n import day, moment, money, normalize_locale, number
from notifier.config import CampaignConfig, Policy, load_campaigns
from notifier.render import template_version
from notifier.rules import (
    CAMPAIGN_PURPOSES,
    Calendar,
    Caps,
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

# When two candidates of a loan fall on the same day, the first in this order wins the day's cap.
_PRIORITY = {
    "promise_due": 0,
    "promise_followup": 1,
    "installment": 2,
    "group_meeting": 3,
    "next_cycle": 4,
    "streak": 5,
    "thanks": 6,
    "early_repayment": 7,
}


@dataclass
class Candidate:
    business_key: str
    kind: str  # a key of _PRIORITY
    loan_id: int
    borrower_id: int
    step: str
    purpose: str
    is_collection: bool
    message_key: str
    args: dict[str, Any]
    nominal_day: date
    tz: str
    locale: str
    installment_id: int | None = None
    promise_id: int | None = None
    promise_step: bool = False
    channel: str = ""
    recipient: str = ""
    status: str = "planned"  # planned | suppressed
    reason: str = ""
    decision: str = ""  # send | reschedule | suppress
    send_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    limited: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The dry-run line of ``kopa notify plan --json``; ``send_at`` in the borrower's offset."""
        return {
            "loan_id": self.loan_id,
            "borrower_id": self.borrower_id,
            "step": self.step,
            "channel": self.channel or None,
            "locale": self.locale,
            "status": self.status,
            "reason": self.reason,
            "send_at": self.send_at.astimezone(Window(self.tz, _T0, _T0, _NOCAL).zone).isoformat(),
        }


_T0 = datetime(2000, 1, 1).time()
_NOCAL = Calendar("ZZ")


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


def _window(policy: Policy, branch: Any) -> Window:
    extra = {date.fromisoformat(d) for d in (branch.extra_holidays or [])}
    extra |= {date.fromisoformat(d) for d in policy.holidays}
    return Window(
        tz=branch.timezone,
        start=policy.quiet_hours.start,
        end=policy.quiet_hours.end,
        calendar=Calendar(
            country=branch.country,
            closed_weekdays=frozenset(policy.closed_weekdays),
            extra=frozenset(extra),
        ),
    )


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
        opted_out = bool(
            (consent is not None and not consent.opted_in and consent.opted_out_at is not None)
            or (identity is not None and identity.opted_in is False)
        )
        opted_in = bool(
            (consent is not None and consent.opted_in)
            or (identity is not None and identity.opted_in is True)
        )
        if identity is not None:
            options.append(
                ChannelChoice(channel, identity.external_user_id, True, opted_out, opted_in)
            )
        elif channel == "whatsapp" and (opted_in or opted_out):
            options.append(
                ChannelChoice(channel, phone_e164.lstrip("+"), False, opted_out, opted_in)
            )
    if not options:
        return None
    for option in options:
        if not option.opted_out and (option.channel != "whatsapp" or option.whatsapp_opted_in):
            return option
    return options[0]


def _chunks(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _streak_ending_at(installments: Sequence[Any], seq: int) -> int:
    streak = 0
    for inst in sorted(installments, key=lambda i: i.seq):
        if inst.seq > seq:
            break
        on_time = inst.paid_on is not None and inst.paid_on <= inst.due_date
        streak = streak + 1 if on_time else 0
    return streak


def _installment_message(offset: int) -> str:
    if offset < 0:
        return "notify.reminder.upcoming"
    if offset == 0:
        return "notify.reminder.due_today"
    if offset <= 3:
        return "notify.reminder.overdue"
    return "notify.reminder.overdue_help"


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
    """Plans one instant for every loan (or the given ones), chunk by chunk."""

    def __init__(self, config: CampaignConfig | None = None, chunk_size: int = 2000) -> None:
        self.config = config or load_campaigns()
        self.chunk_size = chunk_size
        self._policies: dict[int, tuple[Policy, Window]] = {}

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
        for chunk in _chunks(loan_ids, self.chunk_size):
            candidates = self._plan_chunk(session, at, chunk)
            if write and candidates:
                result.inserted += self._write(session, at, candidates)
            result.candidates.extend(candidates)
        return result

    def _policy(self, branch: Any) -> tuple[Policy, Window]:
        cached = self._policies.get(branch.id)
        if cached is None:
            policy = self.config.policy_for(country=branch.country, branch_code=branch.code)
            cached = (policy, _window(policy, branch))
            self._policies[branch.id] = cached
        return cached

    def _plan_chunk(
        self, session: Session, at: datetime, loan_ids: Sequence[int]
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
            [30] + [max(self._policy(b)[0].installment_steps, default=0) for b in branches.values()]
        )
        min_step = min(
            [-3] + [min(self._policy(b)[0].installment_steps, default=0) for b in branches.values()]
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
            policy, window = self._policy(branch)
            today = local_day(at, window.tz)
            found = self._candidates_for_loan(
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
            found.sort(key=lambda c: _PRIORITY[c.kind])
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

    def _candidates_for_loan(
        self,
        row: Any,
        today: date,
        policy: Policy,
        window: Window,
        near: Sequence[Installment],
        history: Sequence[Installment],
        promises: Sequence[PromiseToPay],
        groups: dict[int, BorrowerGroup],
    ) -> list[Candidate]:
        locale = normalize_locale(row.preferred_language)
        found: list[Candidate] = []

        def make(
            ref: str, step: str, purpose: str, key: str, args: dict[str, Any], **extra: Any
        ) -> Candidate:
            return Candidate(
                business_key=f"notify:{row.id}:{ref}:{step}:{today.isoformat()}",
                kind=step.split("_")[0]
                if step.startswith("streak")
                else step.rstrip("+-0123456789"),
                loan_id=row.id,
                borrower_id=row.borrower_id,
                step=step,
                purpose=purpose,
                is_collection=extra.pop("is_collection", purpose == "reminder"),
                message_key=key,
                args=args,
                nominal_day=today,
                tz=window.tz,
                locale=locale,
                **extra,
            )

        active = row.status == LoanStatus.active
        if active:
            steps = set(policy.installment_steps)
            for inst in near:
                if inst.status == InstallmentStatus.paid:
                    continue
                offset = (today - inst.due_date).days
                if offset not in steps:
                    continue
                found.append(
                    make(
                        f"i{inst.id}",
                        f"installment{offset:+d}",
                        "reminder",
                        _installment_message(offset),
                        {
                            "amount": money(rules.outstanding(inst), row.currency),
                            "account": row.account_reference,
                            "due_date": day(inst.due_date),
                        },
                        installment_id=inst.id,
                    )
                )
            for p in promises:
                if p.status == PromiseStatus.pending and p.promised_date == today:
                    found.append(
                        make(
                            f"p{p.id}",
                            "promise_due",
                            "reminder",
                            "notify.promise.today",
                            {
                                "amount": money(p.amount, p.currency),
                                "account": row.account_reference,
                            },
                            promise_id=p.id,
                            promise_step=True,
                        )
                    )
                if p.status == PromiseStatus.broken:
                    broken_on = (
                        local_day(p.evaluated_at, window.tz)
                        if p.evaluated_at is not None
                        else p.promised_date + timedelta(days=policy.promise_grace_days)
                    )
                    if broken_on + timedelta(days=1) == today:
                        found.append(
                            make(
                                f"p{p.id}",
                                "promise_followup",
                                "reminder",
                                "notify.promise.followup",
                                {
                                    "amount": money(p.amount - p.amount_paid, p.currency),
                                    "promised_date": day(p.promised_date),
                                },
                                promise_id=p.id,
                            )
                        )
            group = groups.get(row.group_id) if row.group_id is not None else None
            meeting_day = today + timedelta(days=policy.group_meeting_days_before)
            if group is not None and meeting_day.weekday() == group.meeting_weekday:
                meeting_at = datetime.combine(meeting_day, group.meeting_time, tzinfo=window.zone)
                found.append(
                    make(
                        f"g{group.id}",
                        "group_meeting",
                        "reminder",
                        "notify.group.meeting",
                        {
                            "group": group.name,
                            "meeting_at": moment(meeting_at, window.tz),
                            "place": group.meeting_place,
                        },
                        is_collection=False,
                    )
                )
        # Incentives: the day after an on-time payment (the payment is surely recorded by then).
        for inst in near:
            if inst.paid_on is None or inst.paid_on + timedelta(days=1) != today:
                continue
            if inst.paid_on > inst.due_date:
                continue
            ordered = sorted(history, key=lambda i: i.seq)
            if not active and ordered and inst.seq == ordered[-1].seq:
                found.append(
                    make(
                        "l",
                        "next_cycle",
                        "incentive",
                        "notify.incentive.next_cycle",
                        {"account": row.account_reference, "cycle": number(row.cycle + 1)},
                    )
                )
                continue
            if not active:
                continue
            streak = _streak_ending_at(ordered, inst.seq)
            if streak in policy.incentives.streaks:
                found.append(
                    make(
                        f"i{inst.id}",
                        f"streak_{streak}",
                        "incentive",
                        "notify.incentive.streak",
                        {"count": streak, "account": row.account_reference},
                    )
                )
            else:
                found.append(
                    make(
                        f"i{inst.id}",
                        "thanks",
                        "incentive",
                        "notify.incentive.thanks",
                        {"account": row.account_reference},
                    )
                )
            threshold = math.ceil(len(ordered) * policy.incentives.early_repayment_after_share)
            on_time = sum(1 for i in ordered if i.paid_on is not None and i.paid_on <= i.due_date)
            if on_time == threshold and streak == inst.seq:
                found.append(
                    make(
                        "l",
                        "early_repayment",
                        "incentive",
                        "notify.incentive.early_repayment",
                        {"account": row.account_reference},
                    )
                )
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
        if choice is None:
            cand.status, cand.reason, cand.decision, cand.send_at = (
                "suppressed",
                NO_CHANNEL,
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
                    "local_send_at": c.send_at.astimezone(
                        Window(c.tz, _T0, _T0, _NOCAL).zone
                    ).isoformat(),
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
