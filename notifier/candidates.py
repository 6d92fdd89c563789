"""Which campaign messages a loan may get on one local day, before the rules judge them.

A candidate exists when a loan's *nominal day* (in the borrower's local calendar) is today: an
installment step (due date + offset), a promise's day or the day after it was broken, the day
before a group meeting, the day after an on-time payment (thanks, streaks, early-repayment note,
next cycle). Its business key (loan, installment/promise/group, step, nominal day) makes it one
outbox row however often it is planned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from api.branches.models import BorrowerGroup
from api.loans import rules
from api.loans.models import Installment, InstallmentStatus, LoanStatus
from api.promises.models import PromiseStatus, PromiseToPay
from i18n import day, moment, money, normalize_locale, number
from notifier.config import Policy
from notifier.rules import Window, local_day, zone

# When two candidates of a loan fall on the same day, the first in this order wins the day's cap.
PRIORITY = {
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
    kind: str  # a key of PRIORITY
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

    def local_send_at(self) -> str:
        """``send_at`` in the borrower's offset, ISO 8601."""
        return self.send_at.astimezone(zone(self.tz)).isoformat()

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
            "send_at": self.local_send_at(),
        }


@dataclass(frozen=True)
class _LoanDay:
    """One loan (a row of the planner's loan query) on one local day under its branch's policy."""

    row: Any
    today: date
    policy: Policy
    window: Window

    def candidate(
        self, ref: str, step: str, purpose: str, key: str, args: dict[str, Any], **extra: Any
    ) -> Candidate:
        kind = step.split("_")[0] if step.startswith("streak") else step.rstrip("+-0123456789")
        return Candidate(
            business_key=f"notify:{self.row.id}:{ref}:{step}:{self.today.isoformat()}",
            kind=kind,
            loan_id=self.row.id,
            borrower_id=self.row.borrower_id,
            step=step,
            purpose=purpose,
            is_collection=extra.pop("is_collection", purpose == "reminder"),
            message_key=key,
            args=args,
            nominal_day=self.today,
            tz=self.window.tz,
            locale=normalize_locale(self.row.preferred_language),
            **extra,
        )


def find_candidates(
    row: Any,
    today: date,
    policy: Policy,
    window: Window,
    near: Sequence[Installment],
    history: Sequence[Installment],
    promises: Sequence[PromiseToPay],
    groups: dict[int, BorrowerGroup],
) -> list[Candidate]:
    """The candidates of loan ``row`` on ``today``: reminders while the loan is active, then
    incentives (``near``: its installments due or paid around today; ``history``: all of them
    when one was paid lately)."""
    loan = _LoanDay(row, today, policy, window)
    found: list[Candidate] = []
    if row.status == LoanStatus.active:
        found += _installment_reminders(loan, near)
        found += _promise_reminders(loan, promises)
        found += _group_meeting(loan, groups)
    found += _incentives(loan, near, history)
    return found


def installment_message(offset: int) -> str:
    if offset < 0:
        return "notify.reminder.upcoming"
    if offset == 0:
        return "notify.reminder.due_today"
    if offset <= 3:
        return "notify.reminder.overdue"
    return "notify.reminder.overdue_help"


def _installment_reminders(loan: _LoanDay, near: Sequence[Installment]) -> list[Candidate]:
    """An unpaid installment on one of the policy's steps (days from its due date)."""
    row, steps = loan.row, set(loan.policy.installment_steps)
    found = []
    for inst in near:
        if inst.status == InstallmentStatus.paid:
            continue
        offset = (loan.today - inst.due_date).days
        if offset not in steps:
            continue
        args = {
            "amount": money(rules.outstanding(inst), row.currency),
            "account": row.account_reference,
            "due_date": day(inst.due_date),
        }
        found.append(
            loan.candidate(
                f"i{inst.id}",
                f"installment{offset:+d}",
                "reminder",
                installment_message(offset),
                args,
                installment_id=inst.id,
            )
        )
    return found


def _promise_reminders(loan: _LoanDay, promises: Sequence[PromiseToPay]) -> list[Candidate]:
    """A pending promise on its day; a broken one the day after it broke."""
    found = []
    for p in promises:
        if p.status == PromiseStatus.pending and p.promised_date == loan.today:
            args = {"amount": money(p.amount, p.currency), "account": loan.row.account_reference}
            found.append(
                loan.candidate(
                    f"p{p.id}",
                    "promise_due",
                    "reminder",
                    "notify.promise.today",
                    args,
                    promise_id=p.id,
                    promise_step=True,
                )
            )
        if (
            p.status == PromiseStatus.broken
            and _broken_on(loan, p) + timedelta(days=1) == loan.today
        ):
            args = {
                "amount": money(p.amount - p.amount_paid, p.currency),
                "promised_date": day(p.promised_date),
            }
            found.append(
                loan.candidate(
                    f"p{p.id}",
                    "promise_followup",
                    "reminder",
                    "notify.promise.followup",
                    args,
                    promise_id=p.id,
                )
            )
    return found


def _broken_on(loan: _LoanDay, promise: PromiseToPay) -> date:
    """The local day a promise was judged broken (its grace days after its date, if unknown)."""
    if promise.evaluated_at is not None:
        return local_day(promise.evaluated_at, loan.window.tz)
    return promise.promised_date + timedelta(days=loan.policy.promise_grace_days)


def _group_meeting(loan: _LoanDay, groups: dict[int, BorrowerGroup]) -> list[Candidate]:
    """The loan's group meets the policy's number of days from today."""
    row = loan.row
    group = groups.get(row.group_id) if row.group_id is not None else None
    meeting_day = loan.today + timedelta(days=loan.policy.group_meeting_days_before)
    if group is None or meeting_day.weekday() != group.meeting_weekday:
        return []
    meeting_at = datetime.combine(meeting_day, group.meeting_time, tzinfo=loan.window.zone)
    args = {
        "group": group.name,
        "meeting_at": moment(meeting_at, loan.window.tz),
        "place": group.meeting_place,
    }
    return [
        loan.candidate(
            f"g{group.id}",
            "group_meeting",
            "reminder",
            "notify.group.meeting",
            args,
            is_collection=False,
        )
    ]


def _incentives(
    loan: _LoanDay, near: Sequence[Installment], history: Sequence[Installment]
) -> list[Candidate]:
    """The day after an on-time payment (the payment is surely recorded by then)."""
    found: list[Candidate] = []
    for inst in near:
        if inst.paid_on is None or inst.paid_on + timedelta(days=1) != loan.today:
            continue
        if inst.paid_on > inst.due_date:
            continue
        found += _incentives_for(loan, inst, sorted(history, key=lambda i: i.seq))
    return found


def _incentives_for(
    loan: _LoanDay, inst: Installment, ordered: Sequence[Installment]
) -> list[Candidate]:
    """For one installment paid on time: the next cycle's offer when it closed the loan, else
    thanks or a streak, and the early-repayment note at its share of on-time payments."""
    row, policy = loan.row, loan.policy
    active = row.status == LoanStatus.active
    if not active and ordered and inst.seq == ordered[-1].seq:
        args = {"account": row.account_reference, "cycle": number(row.cycle + 1)}
        return [loan.candidate("l", "next_cycle", "incentive", "notify.incentive.next_cycle", args)]
    if not active:
        return []
    found = []
    streak = _streak_ending_at(ordered, inst.seq)
    if streak in policy.incentives.streaks:
        args = {"count": streak, "account": row.account_reference}
        key, step = "notify.incentive.streak", f"streak_{streak}"
    else:
        args = {"account": row.account_reference}
        key, step = "notify.incentive.thanks", "thanks"
    found.append(loan.candidate(f"i{inst.id}", step, "incentive", key, args))
    threshold = math.ceil(len(ordered) * policy.incentives.early_repayment_after_share)
    on_time = sum(1 for i in ordered if i.paid_on is not None and i.paid_on <= i.due_date)
    if on_time == threshold and streak == inst.seq:
        found.append(
            loan.candidate(
                "l",
                "early_repayment",
                "incentive",
                "notify.incentive.early_repayment",
                {"account": row.account_reference},
            )
        )
    return found


def _streak_ending_at(installments: Sequence[Any], seq: int) -> int:
    streak = 0
    for inst in sorted(installments, key=lambda i: i.seq):
        if inst.seq > seq:
            break
        on_time = inst.paid_on is not None and inst.paid_on <= inst.due_date
        streak = streak + 1 if on_time else 0
    return streak
