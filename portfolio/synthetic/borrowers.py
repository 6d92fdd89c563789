"""Borrowers: who they are, which channels they accept messages on, and their loans."""

from __future__ import annotations

from datetime import date, timedelta

from api.core.security import hash_secret_factor
from portfolio.synthetic.branches import GROUP_SHARE
from portfolio.synthetic.draws import below, randint
from portfolio.synthetic.loans import draw_loan, draw_loan_plan
from portfolio.synthetic.repayment import Trait
from portfolio.synthetic.state import Branch, DrawState
from portfolio.synthetic.tables import EXTERNAL_PREFIX, SHAPES

# The profile fixes how far back the current loan was disbursed and how it ends (still active,
# repaid and closed, or defaulted for good); how each installment went is drawn from the
# borrower's discipline (portfolio.synthetic.repayment), whatever the profile's name.
PROFILES = (("on_time", 55), ("late", 14), ("cured", 10), ("defaulted", 5), ("closed", 16))


def draw_borrower(state: DrawState, branch: Branch) -> None:
    """One borrower with their consents and loans."""
    rng, spec, today = state.rng, branch.spec, state.today
    state.counters["borrower"] += 1
    n = state.counters["borrower"]
    borrower_id = state.next_id("borrower")
    language = state.pick(spec.languages)
    dob = today - timedelta(days=randint(rng, 20 * 365, 65 * 365))
    last4 = f"{below(rng, 10000):04d}"
    if state.factors is not None:
        state.factors[borrower_id] = (dob.isoformat(), last4)
    group = rng.choice(branch.groups) if branch.groups and rng.random() < GROUP_SHARE else None
    officer = group[2] if group else branch.officers[n % len(branch.officers)][0]
    cycle = 1 + int(rng.random() ** 2 * 6)
    trait = Trait(rng.gauss(0.0, 1.0))
    profile = state.pick(PROFILES)
    loans = draw_loan_plan(rng, today, group, profile, cycle)
    first_disbursed = loans[0][1]
    joined = state.local(branch, first_disbursed - timedelta(days=randint(rng, 3, 20)), 10, 0)
    state.rows["borrower"].append(
        SHAPES["borrower"].row(
            id=borrower_id,
            external_id=f"{EXTERNAL_PREFIX}B{n:07d}",
            branch_id=branch.id,
            officer_id=officer,
            group_id=group[0] if group else None,
            full_name=state.name(spec.people),
            phone_e164=state.phone(branch),
            preferred_language=language,
            dob_hash=hash_secret_factor(state.pepper, dob.isoformat()),
            national_id_last4_hash=hash_secret_factor(state.pepper, last4),
            created_at=joined,
        )
    )
    channels = _consents(state, branch, borrower_id, first_disbursed)
    for loan_profile, disbursed, loan_cycle, monthly, installments in loans:
        draw_loan(
            state,
            branch,
            borrower_id,
            group,
            officer,
            loan_profile,
            disbursed,
            loan_cycle,
            monthly,
            installments,
            language,
            channels,
            trait,
        )


def _consents(state: DrawState, branch: Branch, borrower_id: int, since: date) -> list[str]:
    """Consent rows; answers the channels the borrower accepts messages on."""
    r = state.rng.random()
    at = state.local(branch, since, 11, 0)
    out = state.local(branch, since + timedelta(days=randint(state.rng, 10, 60)), 17, 0)
    decisions: list[tuple[str, bool]]
    if r < 0.5:
        decisions = [("telegram", True), ("whatsapp", True)]
    elif r < 0.7:
        decisions = [("whatsapp", True)]
    elif r < 0.85:
        decisions = [("telegram", True)]
    elif r < 0.93:
        decisions = [("whatsapp", True), ("telegram", False)]
    else:
        decisions = [("telegram", False), ("whatsapp", False)]
    for channel, opted_in in decisions:
        state.rows["borrower_consent"].append(
            SHAPES["borrower_consent"].row(
                id=state.next_id("borrower_consent"),
                borrower_id=borrower_id,
                channel=channel,
                opted_in=opted_in,
                opted_in_at=at,
                opted_out_at=None if opted_in else out,
                source="seed",
            )
        )
    return [channel for channel, opted_in in decisions if opted_in]
