"""What the scorecard reads about a loan on a day, and what became of it: pure functions.

A :class:`LoanHistory` holds every dated fact of one loan that the features read, each day a
calendar day of the borrower's branch: the schedule, the payments' allocations, promises judged,
hardship cases, reminders sent and the borrower's messages. :func:`features_at` answers the
features at the end of a day, seeing only what had happened by then; :func:`outcome` answers
whether the loan then missed its next installment or rolled to a worse bucket. Where the loan
stood comes from :func:`api.loans.rules.position`, never from a second copy of those rules.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from api.kpis.book import Standing
from api.loans import rules

ZERO = rules.ZERO
# A payment this many days after the due day still counts as paying the installment (the
# promise grace of api.core.config.PromisePolicy is of the same order).
GRACE_DAYS = 3
ROLL_DAYS = 30
CONTACT_WINDOW_DAYS = 30
REPLY_DAYS = 3
# The lower ends of the KPI roll-rate buckets 1-30, 31-60, 61-90, 90+ (api.kpis.schemas.BUCKETS).
BUCKET_STARTS = (1, 31, 61, 91)

FEATURES = (
    "days_past_due",
    "late_installments",
    "partial_payments",
    "broken_promises",
    "unanswered_reminders",
    "hardship_cases",
    "loan_cycle",
)


class Paid(NamedTuple):
    """What one payment gave one installment, on the payment's day."""

    day: date
    principal: Decimal
    interest: Decimal
    fees: Decimal


@dataclass
class ScheduledInstallment:
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fees_due: Decimal
    paid: list[Paid] = field(default_factory=list)  # in day order

    @property
    def total_due(self) -> Decimal:
        return self.principal_due + self.interest_due + self.fees_due

    def at(self, day: date) -> Standing:
        """The installment at the end of ``day``: payments of later days not counted."""
        shown = self.paid[: bisect_right([p.day for p in self.paid], day)]
        return Standing(
            self.due_date,
            self.principal_due,
            self.interest_due,
            self.fees_due,
            sum((p.principal for p in shown), ZERO),
            sum((p.interest for p in shown), ZERO),
            sum((p.fees for p in shown), ZERO),
        )

    def paid_by(self, day: date) -> Decimal:
        return sum((p.principal + p.interest + p.fees for p in self.paid if p.day <= day), ZERO)


@dataclass
class LoanHistory:
    """One loan's dated facts, days in its branch's calendar, each list in day order."""

    loan_id: int
    disbursed_on: date
    cycle: int
    schedule: list[ScheduledInstallment]
    payment_days: list[date] = field(default_factory=list)
    # The days promises were judged broken or partially kept.
    broken_promise_days: list[date] = field(default_factory=list)
    hardship_case_days: list[date] = field(default_factory=list)
    reminder_days: list[date] = field(default_factory=list)
    inbound_days: list[date] = field(default_factory=list)

    def standing(self, day: date) -> list[Standing]:
        return [installment.at(day) for installment in self.schedule]

    def position(self, day: date) -> rules.LoanPosition:
        return rules.position(self.standing(day), day)

    def is_open(self, day: date) -> bool:
        """Disbursed by ``day`` and still owing something at its end."""
        return self.disbursed_on <= day and self.position(day).outstanding > ZERO


def _count_through(days: Sequence[date], day: date) -> int:
    return bisect_right(days, day)


def _late_installments(history: LoanHistory, day: date) -> int:
    """Installments due before ``day`` not fully paid by the end of their due day."""
    return sum(
        1
        for i in history.schedule
        if i.due_date < day and i.paid_by(min(i.due_date, day)) < i.total_due
    )


def _partial_payments(history: LoanHistory, day: date) -> int:
    """Installments that a payment by ``day`` reached but left owing."""
    count = 0
    for installment in history.schedule:
        paid = ZERO
        for part in installment.paid:
            if part.day > day:
                break
            paid += part.principal + part.interest + part.fees
            if paid < installment.total_due:
                count += 1
                break
    return count


def _unanswered_reminders(history: LoanHistory, day: date) -> int:
    """Reminders of the 30 days to ``day`` that neither a message nor a payment followed
    within 3 days (by the end of ``day``)."""
    since = day - timedelta(days=CONTACT_WINDOW_DAYS)
    responses = sorted(d for d in (*history.inbound_days, *history.payment_days) if d <= day)
    count = 0
    for sent in history.reminder_days:
        if not since < sent <= day:
            continue
        first = bisect_right(responses, sent - timedelta(days=1))
        answered = first < len(responses) and responses[first] <= sent + timedelta(REPLY_DAYS)
        count += not answered
    return count


def features_at(history: LoanHistory, day: date) -> dict[str, int]:
    """The scorecard's features of the loan at the end of ``day``.

    - ``days_past_due``: :func:`api.loans.rules.days_past_due` of the schedule then;
    - ``late_installments``: installments due before the day not fully paid by their due day;
    - ``partial_payments``: installments a payment reached but left owing;
    - ``broken_promises``: promises judged broken or partially kept by the day;
    - ``unanswered_reminders``: reminders of the last 30 days with no message or payment from
      the borrower within 3 days;
    - ``hardship_cases``: the borrower's hardship cases opened by the day;
    - ``loan_cycle``: the loan's cycle (1 for a first loan).
    """
    return {
        "days_past_due": history.position(day).days_past_due,
        "late_installments": _late_installments(history, day),
        "partial_payments": _partial_payments(history, day),
        "broken_promises": _count_through(history.broken_promise_days, day),
        "unanswered_reminders": _unanswered_reminders(history, day),
        "hardship_cases": _count_through(history.hardship_case_days, day),
        "loan_cycle": history.cycle,
    }


def bucket(days_past_due: int) -> int:
    """The roll-rate bucket as a rank: 0 current, 1 for 1-30 days late, ... 4 for 90+."""
    return bisect_right(BUCKET_STARTS, days_past_due)


def outcome(history: LoanHistory, day: date, *, observed_through: date) -> bool | None:
    """Whether the loan, open at the end of ``day``, went wrong: its next installment (the
    first due after ``day`` still owing then) was not fully paid by 3 days after its due day,
    or 30 days later it sat in a worse roll-rate bucket.

    None when ``observed_through`` (the last day the data covers) is too early to tell.
    """
    later = day + timedelta(days=ROLL_DAYS)
    nxt = next(
        (i for i in history.schedule if i.due_date > day and i.paid_by(day) < i.total_due),
        None,
    )
    deadline = nxt.due_date + timedelta(days=GRACE_DAYS) if nxt else later
    if max(later, deadline) > observed_through:
        return None
    if nxt is not None and nxt.paid_by(deadline) < nxt.total_due:
        return True
    worse = bucket(history.position(later).days_past_due)
    return worse > bucket(history.position(day).days_past_due)
