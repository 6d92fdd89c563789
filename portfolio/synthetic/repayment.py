"""The repayment history of one loan: payments and promises to pay, drawn by its profile."""

from __future__ import annotations

import random
from datetime import date, timedelta

from portfolio.history import Installment, Payment
from portfolio.synthetic.draws import randint

# (amount, promised date, status, amount paid, created on, evaluated on)
Promise = tuple[int, date, str, int, date, date | None]


def draw_history(  # noqa: C901 - one draw per branch: the order of rng calls fixes the seeded data
    rng: random.Random,
    today: date,
    profile: str,
    schedule: list[Installment],
    due_now: int,
    disbursed: date,
) -> tuple[list[Payment], list[Promise]]:
    """Payments and promises (amount, date, status, paid, created, evaluated) of a loan."""
    yesterday = today - timedelta(days=1)
    payments: list[Payment] = []
    promises: list[Promise] = []

    def on_time(i: int) -> date:
        return max(
            disbursed + timedelta(days=1),
            schedule[i].due_date - timedelta(days=randint(rng, 0, 2)),
        )

    def late(i: int, most: int) -> date:
        return min(schedule[i].due_date + timedelta(days=randint(rng, 1, most)), yesterday)

    if profile in {"on_time", "closed"}:
        paid = len(schedule) if profile == "closed" else due_now
        for i in range(paid):
            day = late(i, 4) if rng.random() < 0.08 else on_time(i)
            payments.append(Payment(min(day, yesterday), schedule[i].total))
    elif profile == "late":
        missed = randint(rng, 1, min(3, due_now - 1))
        for i in range(due_now - missed):
            day = late(i, 6) if rng.random() < 0.3 else on_time(i)
            payments.append(Payment(day, schedule[i].total))
        first = due_now - missed
        partial = rng.random() < 0.4
        if partial:
            part = schedule[first].total * randint(rng, 30, 70) // 100
            paid_on = late(first, 3)
            payments.append(Payment(paid_on, part))
            promised = paid_on
            evaluated = promised + timedelta(days=3)
            if evaluated <= today:
                promises.append(
                    (
                        schedule[first].total,
                        promised,
                        "partially_kept",
                        part,
                        promised - timedelta(days=2),
                        evaluated,
                    )
                )
            else:
                promises.append(
                    (
                        schedule[first].total,
                        promised,
                        "pending",
                        part,
                        promised - timedelta(days=2),
                        None,
                    )
                )
        elif rng.random() < 0.5:
            promised = today + timedelta(days=randint(rng, 1, 10))
            arrears = sum(inst.total for inst in schedule[first:due_now])
            promises.append(
                (
                    arrears,
                    promised,
                    "pending",
                    0,
                    today - timedelta(days=randint(rng, 0, 3)),
                    None,
                )
            )
        else:
            promised = min(schedule[first].due_date + timedelta(days=randint(rng, 1, 3)), yesterday)
            evaluated = promised + timedelta(days=3)
            status = "broken" if evaluated <= today else "pending"
            promises.append(
                (
                    schedule[first].total,
                    promised,
                    status,
                    0,
                    schedule[first].due_date,
                    evaluated if status == "broken" else None,
                )
            )
    elif profile == "cured":
        gap = randint(rng, 0, due_now - 3)
        for i in range(due_now):
            if i in (gap, gap + 1):
                continue
            payments.append(Payment(on_time(i), schedule[i].total))
        catch_up = late(gap + 1, 5)
        amount = schedule[gap].total + schedule[gap + 1].total
        payments.append(Payment(catch_up, amount))
        promises.append(
            (
                amount,
                catch_up + timedelta(days=randint(rng, 0, 2)),
                "kept",
                amount,
                schedule[gap].due_date + timedelta(days=2),
                catch_up,
            )
        )
    elif profile == "defaulted":
        first_missed = 0
        for i, inst in enumerate(schedule):
            if (today - inst.due_date).days <= 90:
                break
            first_missed = i
        paid = randint(rng, 0, first_missed) if first_missed else 0
        for i in range(paid):
            payments.append(Payment(on_time(i), schedule[i].total))
        for k in range(randint(rng, 1, 2)):
            promised = schedule[paid].due_date + timedelta(days=5 + 14 * k)
            promises.append(
                (
                    schedule[paid].total,
                    promised,
                    "broken",
                    0,
                    promised - timedelta(days=3),
                    promised + timedelta(days=3),
                )
            )
    payments.sort(key=lambda p: p.day)
    return payments, promises
