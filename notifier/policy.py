"""What the planner and the deliverer both decide about a borrower before the rules judge a
message: the branch's policy and contact window, and whether a channel is opted out or in.

The planner decides it when it plans a message, the deliverer again from fresh facts just before
the message goes (:mod:`notifier.facts`); both ask here, so the two verdicts cannot disagree.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from notifier.config import CampaignConfig, Policy
from notifier.rules import Calendar, Window


def contact_window(policy: Policy, branch: Any) -> Window:
    """The branch's local send window (C-1) and closed days (C-2): the country's public holidays,
    the policy's closed weekdays and holidays, and the branch's own closed days."""
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


class BranchPolicies:
    """The campaign policy and contact window of each branch, worked out once per branch."""

    def __init__(self, config: CampaignConfig) -> None:
        self.config = config
        self._by_branch: dict[int, tuple[Policy, Window]] = {}

    def known(self, branch_id: int) -> tuple[Policy, Window] | None:
        """The branch's policy and window if worked out already."""
        return self._by_branch.get(branch_id)

    def of(self, branch: Any) -> tuple[Policy, Window]:
        """The policy and window of ``branch`` (a ``Branch`` or a row with its columns)."""
        cached = self._by_branch.get(branch.id)
        if cached is None:
            policy = self.config.policy_for(country=branch.country, branch_code=branch.code)
            cached = (policy, contact_window(policy, branch))
            self._by_branch[branch.id] = cached
        return cached


def opted_out(
    consent_opted_in: bool | None, consent_opted_out_at: datetime | None, chat_opted_in: bool | None
) -> bool:
    """Whether messages on a channel are refused (C-4, C-5): the borrower's consent for it was
    withdrawn, or the chat itself said stop. ``None``: no consent row, no chat."""
    return bool(
        (consent_opted_in is False and consent_opted_out_at is not None) or chat_opted_in is False
    )


def opted_in(consent_opted_in: bool | None, chat_opted_in: bool | None) -> bool:
    """Whether the borrower or the chat asked for messages on a channel (WhatsApp, C-11)."""
    return bool(consent_opted_in or chat_opted_in)
