"""Which messages the reminder holdout withholds (the causal lift of reminders, ``api.kpis``).

A borrower in the holdout (:func:`api.borrowers.holdout.in_holdout`: a stable hash of their id
under the ``KOPA_HOLDOUT__SHARE`` / ``KOPA_HOLDOUT__SALT`` settings) gets no *non-essential*
reminders. Non-essential here means only the installment reminders that nudge: before the due
date, on it, and the first days after it (``notify.reminder.upcoming``, ``.due_today``,
``.overdue``), whatever steps the branch's policy uses. Everything else still goes, because
withholding it would hurt the borrower or break a promise made to them, and because the
experiment measures the nudge alone:

- the overdue reminder that offers hardship help (``notify.reminder.overdue_help``);
- the reminders of a promise the borrower made (``promise_due``, ``promise_followup``): they
  answer what the borrower asked for;
- group-meeting notices, thanks, streaks and other incentives (not reminders to pay);
- case updates, officers' alerts and anything else outside the planner: service messages,
  never campaign messages, so they never reach this check (nor would legal notices).

The planner suppresses a withheld message with the rule ``holdout``, which the outbox row and
its ledger event record like any other rule. The verdict is taken when a message is planned: a
row planned before the share was raised keeps its own.
"""

from __future__ import annotations

from api.borrowers.holdout import in_holdout
from api.core.config import HoldoutPolicy
from notifier.candidates import Candidate

# Installment reminders that are never withheld: they carry the offer of hardship help.
HELP_MESSAGES = frozenset({"notify.reminder.overdue_help"})


def non_essential(candidate: Candidate) -> bool:
    """An installment reminder that only nudges (see the module docstring)."""
    return candidate.kind == "installment" and candidate.message_key not in HELP_MESSAGES


def withheld(candidate: Candidate, policy: HoldoutPolicy) -> bool:
    """Whether the holdout withholds ``candidate`` from its borrower."""
    return non_essential(candidate) and in_holdout(candidate.borrower_id, policy)
