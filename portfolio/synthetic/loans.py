"""A borrower's loans: when each was disbursed, its schedule, payments, promises and cases."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from api.loans import rules
from portfolio.history import (
    Payment,
    allocate,
    allocation_row,
    due_dates,
    installment_row,
    split_schedule,
)
from portfolio.markets import HARDSHIP_CATEGORIES, HARDSHIP_WORDS, RELIEFS
from portfolio.synthetic.draws import B32, below, encode, money, randint, scramble
from portfolio.synthetic.repayment import Trait, draw_history
from portfolio.synthetic.state import Branch, DrawState
from portfolio.synthetic.tables import EXTERNAL_PREFIX, SHAPES

# How officers closed the hardship cases of shocks long past.
OUTCOMES = ("plan_agreed", "payment_holiday", "restructure_requested", "no_action")

# (profile, disbursed on, cycle, monthly, installments)
LoanPlan = tuple[str, date, int, bool, int]


def draw_loan_plan(
    rng: random.Random, today: date, group: tuple[int, int, int] | None, profile: str, cycle: int
) -> list[LoanPlan]:
    """(profile, disbursed on, cycle, monthly, installments) for each loan, oldest first."""
    monthly = group is None and rng.random() < 0.5
    count = randint(rng, 6, 12) if monthly else (16 if group else 12)
    period = 30 if monthly else 7
    if profile == "closed":
        back = count * period + randint(rng, 1, 300)
    elif profile == "defaulted":
        back = (randint(rng, 1, count // 2) + 1) * period + randint(rng, 91, 300)
    else:
        low = 0 if profile == "on_time" else (3 if profile == "cured" else 2)
        back = randint(rng, min(low, count - 1), count - 1) * period + randint(rng, 1, period - 1)
    disbursed = _weekday(today - timedelta(days=back))
    plan = [(profile, disbursed, cycle, monthly, count)]
    # Earlier cycles, back to back: most repeat borrowers' history is in the book.
    previous = 16 if group else 12
    for earlier in range(cycle - 1, max(0, cycle - 3), -1):
        if profile == "closed" or rng.random() >= 0.6:
            break
        disbursed = _weekday(disbursed - timedelta(days=previous * 7 + randint(rng, 7, 60)))
        plan.insert(0, ("closed", disbursed, earlier, False, previous))
    return plan


def _weekday(day: date) -> date:
    return day - timedelta(days=day.weekday() - 4) if day.weekday() >= 5 else day


def draw_loan(
    state: DrawState,
    branch: Branch,
    borrower_id: int,
    group: tuple[int, int, int] | None,
    officer_id: int,
    profile: str,
    disbursed: date,
    cycle: int,
    monthly: bool,
    count: int,
    language: str,
    channels: list[str],
    trait: Trait,
) -> None:
    rng, spec, today = state.rng, branch.spec, state.today
    state.counters["loan"] += 1
    n = state.counters["loan"]
    loan_id = state.next_id("loan")
    lo, hi, step = spec.principal
    if group:
        lo, hi = lo, max(lo, hi // 3)
    principal = rng.randrange(lo, hi + 1, step) * (1 + (cycle - 1) // 3)
    rate = rng.choice((24, 30, 36, 42))
    years_num, years_den = (count, 12) if monthly else (count * 7, 365)
    interest = principal * rate * years_num // (100 * years_den)
    unit = step // 100 or 1  # interest and fees rounded to the currency's usual coins
    interest -= interest % unit
    if group:
        fee_each, upfront = max(unit, (principal // 500) // unit * unit), 0
        product = "group_weekly"
    else:
        fee_each, upfront = 0, (principal // 100) // unit * unit
        product = "individual_monthly" if monthly else "individual_weekly"
    dues = due_dates(disbursed, monthly=monthly, count=count, weekday=group[1] if group else None)
    schedule = split_schedule(
        dues, principal=principal, interest=interest, fee_each=fee_each, upfront_fee=upfront
    )
    due_now = sum(1 for d in dues if d < today)
    history = draw_history(
        rng,
        today,
        profile,
        schedule,
        due_now,
        trait.for_cycle(cycle),
        contactable=bool(channels),
        monthly=monthly,
    )
    payments = history.payments
    allocate(schedule, payments)

    status = {"closed": "closed", "defaulted": "defaulted"}.get(profile, "active")
    if status == "active" and rules.repaid([i.state for i in schedule]):
        status = "closed"
    paused = history.in_arrears and status != "closed" and rng.random() < 0.08
    state.rows["loan"].append(
        SHAPES["loan"].row(
            id=loan_id,
            external_id=f"{EXTERNAL_PREFIX}L{n:07d}",
            account_reference=f"{spec.code.replace('-', '')}{n:08d}",
            borrower_id=borrower_id,
            group_id=group[0] if group else None,
            product=product,
            principal=money(principal),
            currency=spec.currency,
            annual_interest_rate=f"{rate}.00",
            frequency="monthly" if monthly else "weekly",
            disbursed_on=disbursed.isoformat(),
            status=status,
            cycle=cycle,
            collection_paused=paused,
            created_at=state.local(branch, disbursed, 9, 0),
        )
    )
    installment_ids = []
    for seq, inst in enumerate(schedule, start=1):
        installment_id = state.next_id("loan_installment")
        installment_ids.append(installment_id)
        state.rows["loan_installment"].append(
            installment_row(
                installment_id,
                loan_id=loan_id,
                seq=seq,
                due_date=inst.due_date,
                owed=inst.state,
            )
        )
    for payment in payments:
        _payment(state, branch, loan_id, payment, installment_ids)
    channel = channels[0] if channels else "telegram"
    for amount, promised, status_, paid, created, evaluated in history.promises:
        state.rows["promise_to_pay"].append(
            SHAPES["promise_to_pay"].row(
                id=state.next_id("promise_to_pay"),
                loan_id=loan_id,
                borrower_id=borrower_id,
                amount=money(amount),
                currency=spec.currency,
                promised_date=promised.isoformat(),
                channel=channel,
                status=status_,
                amount_paid=money(paid),
                created_at=state.local(branch, created, randint(rng, 8, 18), below(rng, 60)),
                evaluated_at=state.local(branch, evaluated, 6, 0) if evaluated else None,
            )
        )
    contact = _Contact(state, branch, borrower_id, loan_id, channel)
    for opened, resolved in history.hardship:
        contact.hardship_case(officer_id, language, opened, resolved)
    if paused:
        opened_now = today - timedelta(days=randint(rng, 0, 3))
        contact.hardship_case(officer_id, language, opened_now, None)
    contact.ledger(history.reminders, history.replies)


def _payment(
    state: DrawState, branch: Branch, loan_id: int, payment: Payment, installments: list[int]
) -> None:
    rng, spec = state.rng, branch.spec
    state.counters["payment"] += 1
    payment_id = state.next_id("payment")
    method, prefix = state.pick(branch.methods)
    reference = (
        f"{prefix}{scramble(state.counters['payment'], 16**10, 1_000_003, state.shift):010X}"
    )
    received = state.local(branch, payment.day, randint(rng, 7, 18), below(rng, 60))
    state.rows["payment"].append(
        SHAPES["payment"].row(
            id=payment_id,
            loan_id=loan_id,
            amount=money(payment.amount),
            currency=spec.currency,
            method=method,
            external_reference=reference,
            received_at=received,
            source="seed",
            created_at=received,
        )
    )
    for split in payment.allocations:
        state.rows["payment_allocation"].append(
            allocation_row(
                state.next_id("payment_allocation"),
                payment_id=payment_id,
                installment_id=installments[split.installment],
                split=split,
            )
        )


@dataclass(frozen=True)
class _Contact:
    """Rows about talking with the borrower of one loan: hardship cases and the ledger."""

    state: DrawState
    branch: Branch
    borrower_id: int
    loan_id: int
    channel: str

    def hardship_case(
        self, officer_id: int, language: str, opened_on: date, resolved_on: date | None
    ) -> None:
        state, rng = self.state, self.state.rng
        state.counters["case"] += 1
        reference = "H-" + encode(
            scramble(state.counters["case"], 32**6, 40_503, state.shift), B32, 6
        )
        opened = datetime.combine(opened_on, time(randint(rng, 8, 17)), UTC) - self.branch.offset
        resolved = (
            datetime.combine(resolved_on, time(randint(rng, 8, 17)), UTC) - self.branch.offset
            if resolved_on
            else None
        )
        state.rows["case"].append(
            SHAPES["case"].row(
                id=state.next_id("case"),
                reference=reference,
                kind="hardship",
                borrower_id=self.borrower_id,
                loan_id=self.loan_id,
                category=rng.choice(HARDSHIP_CATEGORIES),
                borrower_words=rng.choice(HARDSHIP_WORDS[language]),
                requested_relief=rng.choice(RELIEFS),
                channel=self.channel,
                status="resolved" if resolved else "open",
                outcome=rng.choice(OUTCOMES) if resolved else None,
                assigned_officer_id=officer_id,
                sla_due_at=state.w.ts(opened + timedelta(hours=48)),
                created_at=state.w.ts(opened),
                resolved_at=state.w.ts(resolved) if resolved else None,
            )
        )

    def ledger(self, reminders: list[date], replies: list[date]) -> None:
        """The overdue reminders sent (09:00 local) and the borrower's chat replies."""
        state, rng = self.state, self.state.rng
        events = [(day, 9, 0, "outbound") for day in reminders]
        events += [(day, randint(rng, 9, 20), below(rng, 60), "inbound") for day in replies]
        for day, hour, minute, direction in sorted(events):
            outbound = direction == "outbound"
            state.rows["contact_event"].append(
                SHAPES["contact_event"].row(
                    id=state.next_id("contact_event"),
                    at=state.local(self.branch, day, hour, minute),
                    borrower_id=self.borrower_id,
                    loan_id=self.loan_id,
                    channel=self.channel,
                    direction=direction,
                    kind="reminder" if outbound else "chat",
                    decision="sent" if outbound else "received",
                    rule=None,
                    message_key="notify.reminder.overdue" if outbound else None,
                    detail="{}",
                )
            )
