"""The causal lift of reminders: on-time payment in the reminded arm against the holdout.

Borrowers are split by :func:`api.borrowers.holdout.in_holdout` (a stable hash of their id);
the notifier withholds the non-essential reminders from the holdout (``notifier/holdout.py``).
The comparison is by intention to treat: every installment of a borrower in an arm counts for
that arm, whether or not a reminder actually went (a reminded-arm borrower may have opted out,
a holdout borrower still gets promise reminders and the hardship offer).

The outcome: installments on the books (written-off loans are off them) due in the period, from
the experiment's start when that is later (``HoldoutPolicy.started_on``), paid in full by the
end of their due date in the branch's zone. The unit is the installment while the randomised
unit is the borrower: with several installments a month (weekly loans) the interval is somewhat
narrower than it should be.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from api.borrowers.holdout import in_holdout
from api.core.config import HoldoutPolicy
from api.kpis.book import Book, Periods, allocations, midnight
from api.kpis.schemas import ArmOutcome, HoldoutLift
from api.loans import rules

InHoldout = Callable[[int], bool]


def holdout_lift(
    session: Session,
    books: Sequence[Book],
    periods: Periods,
    policy: HoldoutPolicy,
    arm: InHoldout | None = None,
) -> HoldoutLift:
    """On-time payment of the installments due in the period, per arm (module docstring);
    ``arm`` tells a borrower id in the holdout (default: the policy's hash)."""
    arm = arm or (lambda borrower_id: in_holdout(borrower_id, policy))
    first = max(periods.period_start, policy.started_on or periods.period_start)
    counted: dict[bool, list[int]] = {True: [0, 0], False: [0, 0]}  # holdout? -> [n, on time]
    for book in books:
        due: dict[int, tuple[date, Decimal, bool]] = {}
        for loan in book.loans:
            held = arm(loan.borrower_id)
            for installment_id, standing in zip(
                loan.installment_ids, loan.at["as_of"], strict=True
            ):
                owed = rules.total_due(standing)
                if first <= standing.due_date <= periods.as_of and owed > 0:
                    due[installment_id] = (standing.due_date, owed, held)
        paid: dict[int, Decimal] = dict.fromkeys(due, Decimal(0))
        for installment_id, received_at, amount in allocations(session, due):
            due_date, _owed, _held = due[installment_id]
            if received_at < midnight(due_date + timedelta(days=1), book.branch.timezone):
                paid[installment_id] += amount
        for installment_id, (_due_date, owed, held) in due.items():
            counted[held][0] += 1
            counted[held][1] += paid[installment_id] >= owed
    return HoldoutLift(
        share=policy.share,
        counted_from=first,
        reminded=ArmOutcome(installments=counted[False][0], on_time=counted[False][1]),
        holdout=ArmOutcome(installments=counted[True][0], on_time=counted[True][1]),
    )
