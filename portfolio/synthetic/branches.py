"""Branches with their manager, officers and groups, sized for the number of borrowers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portfolio.history import add_months
from portfolio.markets import BRANCHES, BranchSpec
from portfolio.synthetic.draws import below
from portfolio.synthetic.state import Branch, DrawState
from portfolio.synthetic.tables import SHAPES

GROUP_SHARE = 0.4
GROUP_SIZE = 20
BORROWERS_PER_OFFICER = 400


def draw_branches(state: DrawState) -> tuple[list[Branch], list[int]]:
    """Every branch of :data:`BRANCHES` with its staff and groups; answer the branches and how
    many borrowers each gets."""
    weights = sum(spec.share for spec in BRANCHES)
    opened = state.w.ts(datetime.combine(add_months(state.today, -60), time(6), UTC))
    noon = datetime.combine(state.today, time(12), UTC)
    per_branch = [state.total * spec.share // weights for spec in BRANCHES]
    per_branch[0] += state.total - sum(per_branch)
    branches = []
    for spec, count in zip(BRANCHES, per_branch, strict=True):
        offset = ZoneInfo(spec.timezone).utcoffset(noon) or timedelta(0)
        branch = Branch(spec=spec, id=state.next_id("branch"), offset=offset)
        state.rows["branch"].append(
            SHAPES["branch"].row(
                id=branch.id,
                code=spec.code,
                name=spec.name,
                country=spec.country,
                timezone=spec.timezone,
                currency=spec.currency,
                payment_instructions=json.dumps(spec.payment_instructions, ensure_ascii=False),
                extra_holidays="[]",
                created_at=opened,
            )
        )
        _staff(state, branch, count)
        _groups(state, branch, count)
        branches.append(branch)
    return branches, per_branch


def _staff(state: DrawState, branch: Branch, count: int) -> None:
    """A manager and one officer per :data:`BORROWERS_PER_OFFICER` borrowers (two at least)."""
    spec: BranchSpec = branch.spec
    language = spec.languages[0][0]
    staff = [("manager", 0)] + [
        ("officer", i) for i in range(1, max(2, -(-count // BORROWERS_PER_OFFICER)) + 1)
    ]
    staff_names: set[str] = set()
    for role, _ in staff:
        officer_id = state.next_id("branch_officer")
        # Imports know staff by branch and name, so names are unique within a branch.
        name = state.name(spec.people)
        while name in staff_names:
            name = state.name(spec.people)
        staff_names.add(name)
        state.counters["officer"] += 1
        n = state.counters["officer"]
        # Most staff use Telegram; some prefer WhatsApp (chat id = their number).
        if role == "officer" and n % 5 == 0:
            channel, chat_id = "whatsapp", state.phone(branch).lstrip("+")
        else:
            channel, chat_id = "telegram", str(7_000_000_000 + n)
        state.rows["branch_officer"].append(
            SHAPES["branch_officer"].row(
                id=officer_id,
                branch_id=branch.id,
                name=name,
                role=role,
                channel=channel,
                chat_id=chat_id,
                locale=language,
            )
        )
        if role == "officer":
            branch.officers.append((officer_id, channel, chat_id))


def _groups(state: DrawState, branch: Branch, count: int) -> None:
    """Groups of about :data:`GROUP_SIZE` for the :data:`GROUP_SHARE` of borrowers in one."""
    rng, spec = state.rng, branch.spec
    groups = max(1, round(count * GROUP_SHARE / GROUP_SIZE)) if count else 0
    for g in range(groups):
        group_id = state.next_id("branch_group")
        weekday = below(rng, 5)
        meeting = time(rng.choice((8, 9, 10, 14, 15)), rng.choice((0, 30)))
        officer = branch.officers[g % len(branch.officers)][0]
        state.rows["branch_group"].append(
            SHAPES["branch_group"].row(
                id=group_id,
                branch_id=branch.id,
                name=f"{spec.code} G{g + 1:04d}",
                meeting_weekday=weekday,
                meeting_time=state.w.clock(meeting),
                meeting_place=rng.choice(spec.places),
            )
        )
        branch.groups.append((group_id, weekday, officer))
