"""The repayment history of one loan, drawn installment by installment from the borrower's
discipline: payments, promises to pay, reminders and replies, and hardship.

This is the structure planted for :mod:`bench.risk` to recover (made up, not measured):

- every borrower has a latent repayment discipline, :attr:`Trait.risk`, a normal draw on the
  log-odds scale of missing an installment; each later loan cycle lowers it by
  :data:`CYCLE_EFFECT` (borrowers who kept their loans got another one);
- a loan may suffer a shock (illness, business loss), likelier for risky borrowers: for a few
  installments the odds of missing rise by ``exp(SHOCK_EFFECT)``, and a shock may bring a
  hardship case;
- each installment due is paid on time, paid late (in full), partly paid or missed, with odds
  from the trait, the shock and any arrears already owed (a borrower behind tends to stay
  behind, and catches up more often the better their discipline);
- an installment still unpaid at the end of its due day brings a reminder the next day, which
  risky borrowers and shocked ones more often leave unanswered; a miss often brings a promise,
  which they more often break.

So days past due, late installments, partial payments, broken promises, unanswered reminders,
hardship and the loan cycle all carry information about what happens next; no feature is the
trait itself.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from portfolio.history import Installment, Payment
from portfolio.synthetic.draws import randint

# (amount, promised date, status, amount paid, created on, evaluated on)
Promise = tuple[int, date, str, int, date, date | None]

# Log-odds of missing an installment for an average first-cycle borrower: about 5 %.
BASE = -3.0
CYCLE_EFFECT = 0.25
SHOCK_EFFECT = 2.2
ARREARS_EFFECT = 1.0
# Of the installments not missed, the share paid late grows with the odds of missing.
LATE_PER_MISS = 1.2
PARTIAL_SHARE = 0.35
PROMISE_SHARE = 0.6


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True)
class Trait:
    """A borrower's repayment discipline: log-odds added to every installment's miss."""

    risk: float

    def for_cycle(self, cycle: int) -> float:
        return self.risk - CYCLE_EFFECT * (cycle - 1)


@dataclass
class History:
    """What one loan's borrower did: payments and promises, the days reminders went out and
    replies came in, and hardship cases (opened, resolved) the loan's shock brought."""

    payments: list[Payment] = field(default_factory=list)
    promises: list[Promise] = field(default_factory=list)
    reminders: list[date] = field(default_factory=list)
    replies: list[date] = field(default_factory=list)
    hardship: list[tuple[date, date]] = field(default_factory=list)
    in_arrears: bool = False


@dataclass
class _Draw:
    rng: random.Random
    today: date
    schedule: list[Installment]
    risk: float
    contactable: bool
    out: History = field(default_factory=History)
    arrears: int = 0

    @property
    def yesterday(self) -> date:
        return self.today - timedelta(days=1)

    def pay(self, day: date, amount: int) -> None:
        if amount > 0:
            self.out.payments.append(Payment(min(day, self.yesterday), amount))

    def late(self, i: int, most: int) -> date:
        return min(
            self.schedule[i].due_date + timedelta(days=randint(self.rng, 1, most)), self.yesterday
        )

    def remind(self, i: int, shocked: bool) -> None:
        """The reminder the day after an installment was left unpaid, and maybe a reply."""
        sent = self.schedule[i].due_date + timedelta(days=1)
        if not self.contactable or sent >= self.today:
            return
        self.out.reminders.append(sent)
        if self.rng.random() < sigmoid(0.8 - 1.2 * self.risk - 1.0 * shocked):
            reply = sent + timedelta(days=randint(self.rng, 0, 2))
            if reply < self.today:
                self.out.replies.append(reply)

    def promise(self, i: int, shocked: bool) -> None:
        """A promise for the arrears after a miss: kept (paid on its day), broken or pending."""
        rng, due = self.rng, self.schedule[i].due_date
        created = due + timedelta(days=randint(rng, 1, 2))
        promised = due + timedelta(days=randint(rng, 3, 7))
        if created >= self.today:
            return
        amount = self.arrears
        evaluated = promised + timedelta(days=3)
        if promised >= self.today or evaluated > self.today:
            self.out.promises.append((amount, promised, "pending", 0, created, None))
        elif rng.random() < sigmoid(1.2 - 0.9 * self.risk - 1.5 * shocked):
            self.pay(promised, amount)
            self.arrears = 0
            self.out.promises.append((amount, promised, "kept", amount, created, promised))
        else:
            self.out.promises.append((amount, promised, "broken", 0, created, evaluated))


def draw_history(
    rng: random.Random,
    today: date,
    profile: str,
    schedule: list[Installment],
    due_now: int,
    risk: float,
    *,
    contactable: bool,
    monthly: bool,
) -> History:
    """The loan's history to ``today`` (``due_now`` installments due before it).

    ``risk`` is the borrower's trait for this loan's cycle; a ``closed`` loan ends repaid, a
    ``defaulted`` one stops paying for good at an installment more than 90 days before today.
    """
    d = _Draw(rng, today, schedule, risk, contactable)
    stop = None
    if profile == "defaulted":
        stop = 0
        for i, inst in enumerate(schedule):
            if (today - inst.due_date).days <= 90:
                break
            stop = i
        stop = randint(rng, 0, stop) if stop else 0
    shock_start, shock_end = -1, -1
    if due_now and rng.random() < sigmoid(-2.0 + 0.8 * risk):
        shock_start = randint(rng, 0, due_now - 1)
        shock_end = shock_start + (randint(rng, 1, 3) if monthly else randint(rng, 2, 5))
        _hardship(d, schedule[shock_start].due_date)
    for i in range(due_now):
        inst = schedule[i]
        shocked = shock_start <= i < shock_end
        if stop is not None and i >= stop:
            d.arrears += inst.total
            d.remind(i, shocked)
            continue
        miss = sigmoid(BASE + risk + SHOCK_EFFECT * shocked + ARREARS_EFFECT * (d.arrears > 0))
        r = rng.random()
        catch_up = d.arrears if rng.random() < sigmoid(0.5 - 0.8 * risk) else 0
        if r < miss:
            part = inst.total * randint(rng, 30, 70) // 100 if rng.random() < PARTIAL_SHARE else 0
            d.pay(d.late(i, 3), part)
            d.arrears += inst.total - part
            d.remind(i, shocked)
            if rng.random() < PROMISE_SHARE:
                d.promise(i, shocked)
        elif r < miss * (1 + LATE_PER_MISS):
            d.pay(d.late(i, 6), inst.total + catch_up)
            d.arrears -= catch_up
            d.remind(i, shocked)
        else:
            on_time = inst.due_date - timedelta(days=randint(rng, 0, 2))
            d.pay(on_time, inst.total + catch_up)
            d.arrears -= catch_up
    if stop is not None:
        for k in range(randint(rng, 1, 2)):
            promised = schedule[stop].due_date + timedelta(days=5 + 14 * k)
            created, evaluated = promised - timedelta(days=3), promised + timedelta(days=3)
            if evaluated < today:
                d.out.promises.append(
                    (schedule[stop].total, promised, "broken", 0, created, evaluated)
                )
    elif profile == "closed" and d.arrears:
        d.pay(schedule[-1].due_date + timedelta(days=randint(rng, 1, 20)), d.arrears)
        d.arrears = 0
    d.out.in_arrears = d.arrears > 0
    d.out.payments.sort(key=lambda p: p.day)
    return d.out


def _hardship(d: _Draw, start: date) -> None:
    """A shock brings a hardship case now and then: opened after it struck, resolved weeks later
    (only cases already resolved by today: an open one would hold the borrower's only slot)."""
    rng = d.rng
    if rng.random() >= 0.4:
        return
    opened = start + timedelta(days=randint(rng, 1, 7))
    resolved = opened + timedelta(days=randint(rng, 5, 30))
    if resolved < d.today:
        d.out.hardship.append((opened, resolved))
