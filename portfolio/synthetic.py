"""A realistic synthetic portfolio, reproducible from a seed and a reference day.

Everything is drawn from one ``random.Random(seed)`` in a fixed order, and every date is relative
to ``today``: the same seed and day give the same rows, ids included, in an empty database.
Rows go to the database through :class:`portfolio.bulk.BulkWriter` in chunks of borrowers,
so 100000 borrowers (a few million rows) take seconds, not hours.
"""

from __future__ import annotations

import json
import random
import time as clock
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from api.core.db import build_engine
from api.core.migrate import upgrade
from api.core.security import hash_secret_factor
from api.loans import rules
from api.models import Base
from portfolio.bulk import BulkWriter, Row, RowFormat, Shape
from portfolio.history import (
    ALLOCATION,
    INSTALLMENT,
    Installment,
    Payment,
    add_months,
    allocate,
    allocation_row,
    due_dates,
    installment_row,
    split_schedule,
)
from portfolio.markets import (
    BRANCHES,
    HARDSHIP_CATEGORIES,
    HARDSHIP_WORDS,
    NAMES,
    RELIEFS,
    BranchSpec,
)

EXTERNAL_PREFIX = "SYN-"
GROUP_SHARE = 0.4
GROUP_SIZE = 20
BORROWERS_PER_OFFICER = 400
# An empty database and a large portfolio: index after loading (see BulkWriter.defer_indexes).
DEFER_INDEXES_FROM = 10_000


class AlreadySeeded(RuntimeError):
    """The database already holds a synthetic portfolio."""


PROFILES = (("on_time", 55), ("late", 14), ("cured", 10), ("defaulted", 5), ("closed", 16))

_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, alphabet: str, width: int) -> str:
    base = len(alphabet)
    out = []
    for _ in range(width):
        value, digit = divmod(value, base)
        out.append(alphabet[digit])
    return "".join(reversed(out))


def _scramble(index: int, modulus: int, multiplier: int, shift: int = 12345) -> int:
    """A bijection of ``range(modulus)`` that makes sequential numbers look random.

    ``multiplier`` must be coprime with ``modulus``; ``shift`` (drawn from the seed) makes
    another seed give other numbers.
    """
    return (index * multiplier + shift) % modulus


_TOTALS: dict[tuple[tuple[Any, int], ...], int] = {}


def _randint(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint`` without its argument checks: it runs millions of times per seed."""
    return low + int(rng.random() * (high - low + 1))


def _below(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


def money(units: int) -> str:
    return f"{units}.00"


@dataclass
class SeedReport:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


@dataclass
class _Branch:
    spec: BranchSpec
    id: int
    offset: timedelta  # local time minus UTC
    officers: list[tuple[int, str, str]] = field(default_factory=list)  # (id, channel, chat id)
    groups: list[tuple[int, int, int]] = field(default_factory=list)  # (id, weekday, officer id)
    phones: int = 0
    offset_minutes: int = 0
    methods: tuple[tuple[tuple[str, str], int], ...] = ()

    def __post_init__(self) -> None:
        self.offset_minutes = int(self.offset.total_seconds()) // 60
        self.methods = tuple(((m, prefix), weight) for m, prefix, weight in self.spec.methods)


# Parents before children, so foreign keys hold after every chunk.
TABLE_ORDER = (
    "branch",
    "branch_officer",
    "branch_group",
    "borrower",
    "borrower_consent",
    "loan",
    "loan_installment",
    "payment",
    "payment_allocation",
    "promise_to_pay",
    "case",
)
# Columns come from the models' tables; the seed writes every one, created_at included. The
# money state of schedules is written as the importer writes it (portfolio.history).
SHAPES = {name: Shape(Base.metadata.tables[name]) for name in TABLE_ORDER} | {
    INSTALLMENT.table: INSTALLMENT,
    ALLOCATION.table: ALLOCATION,
}


class PortfolioGenerator:
    """Draws the portfolio; :meth:`chunks` yields rows per table for a slice of borrowers."""

    def __init__(
        self,
        *,
        writer: RowFormat,
        borrowers: int,
        seed: int,
        today: date,
        pepper: str,
        keep_factors: bool = False,
    ) -> None:
        self.w = writer
        # The knowledge factors in clear, by borrower id: only for writing a synthetic export.
        self.factors: dict[int, tuple[str, str]] | None = {} if keep_factors else None
        self.total = borrowers
        self.rng = random.Random(seed)
        self.shift = _below(self.rng, 10**6)
        self.today = today
        self.pepper = pepper
        self.ids = {table: writer.next_id(table) for table in TABLE_ORDER}
        self.counters = {"borrower": 0, "loan": 0, "payment": 0, "case": 0, "officer": 0}
        self.branches: list[_Branch] = []
        self.rows: dict[str, list[Row]] = {t: [] for t in TABLE_ORDER}

    # ids and small helpers -------------------------------------------------------------
    def _id(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def _local(self, branch: _Branch, day: date, hour: int, minute: int) -> str:
        """A local wall-clock time at the branch, in the database's UTC storage format.

        Written by hand because it runs for every payment: the branch zones keep a fixed
        whole-minute offset (none of them observes daylight saving time).
        """
        minutes = hour * 60 + minute - branch.offset_minutes
        shift, minutes = divmod(minutes, 1440)
        if shift:
            day += timedelta(days=shift)
        return (
            f"{day.isoformat()} {minutes // 60:02d}:{minutes % 60:02d}:00.000000{self.w.ts_suffix}"
        )

    def _pick(self, weighted: tuple[tuple[Any, int], ...]) -> Any:
        total = _TOTALS.get(weighted)
        if total is None:
            total = _TOTALS[weighted] = sum(w for _, w in weighted)
        mark = self.rng.random() * total
        for value, weight in weighted:
            mark -= weight
            if mark < 0:
                return value
        return weighted[-1][0]

    def _name(self, people: str) -> str:
        first, last = NAMES[people]
        return f"{self.rng.choice(first)} {self.rng.choice(last)}"

    def _phone(self, branch: _Branch) -> str:
        spec = branch.spec
        k = branch.phones
        branch.phones += 1
        prefix = spec.phone_prefixes[k % len(spec.phone_prefixes)]
        modulus = 10**spec.phone_digits
        number = _scramble(k // len(spec.phone_prefixes), modulus, 7_654_321, self.shift)
        return f"{prefix}{number:0{spec.phone_digits}d}"

    # branches, staff, groups -------------------------------------------------------------
    def setup(self) -> None:
        """Branches with their officers, manager and groups, sized for the borrower count."""
        weights = sum(spec.share for spec in BRANCHES)
        opened = self.w.ts(datetime.combine(add_months(self.today, -60), time(6), UTC))
        noon = datetime.combine(self.today, time(12), UTC)
        self.per_branch = [self.total * spec.share // weights for spec in BRANCHES]
        self.per_branch[0] += self.total - sum(self.per_branch)
        for spec, count in zip(BRANCHES, self.per_branch, strict=True):
            offset = ZoneInfo(spec.timezone).utcoffset(noon) or timedelta(0)
            branch = _Branch(spec=spec, id=self._id("branch"), offset=offset)
            self.rows["branch"].append(
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
            language = spec.languages[0][0]
            staff = [("manager", 0)] + [
                ("officer", i) for i in range(1, max(2, -(-count // BORROWERS_PER_OFFICER)) + 1)
            ]
            staff_names: set[str] = set()
            for role, _ in staff:
                officer_id = self._id("branch_officer")
                # Imports know staff by branch and name, so names are unique within a branch.
                name = self._name(spec.people)
                while name in staff_names:
                    name = self._name(spec.people)
                staff_names.add(name)
                self.counters["officer"] += 1
                n = self.counters["officer"]
                # Most staff use Telegram; some prefer WhatsApp (chat id = their number).
                if role == "officer" and n % 5 == 0:
                    channel, chat_id = "whatsapp", self._phone(branch).lstrip("+")
                else:
                    channel, chat_id = "telegram", str(7_000_000_000 + n)
                self.rows["branch_officer"].append(
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
            groups = max(1, round(count * GROUP_SHARE / GROUP_SIZE)) if count else 0
            for g in range(groups):
                group_id = self._id("branch_group")
                weekday = _below(self.rng, 5)
                meeting = time(self.rng.choice((8, 9, 10, 14, 15)), self.rng.choice((0, 30)))
                officer = branch.officers[g % len(branch.officers)][0]
                self.rows["branch_group"].append(
                    SHAPES["branch_group"].row(
                        id=group_id,
                        branch_id=branch.id,
                        name=f"{spec.code} G{g + 1:04d}",
                        meeting_weekday=weekday,
                        meeting_time=self.w.clock(meeting),
                        meeting_place=self.rng.choice(spec.places),
                    )
                )
                branch.groups.append((group_id, weekday, officer))
            self.branches.append(branch)

    # borrowers -----------------------------------------------------------------------------
    def chunks(self, size: int) -> Iterator[tuple[int, dict[str, list[Row]]]]:
        """Yield ``(borrowers in chunk, rows per table)``; the first chunk carries branches."""
        self.setup()
        done = 0
        for branch, count in zip(self.branches, self.per_branch, strict=True):
            for _ in range(count):
                self._borrower(branch)
                done += 1
                if done % size == 0:
                    yield size, self._flush()
        if done % size or not done:
            yield done % size, self._flush()

    def _flush(self) -> dict[str, list[Row]]:
        rows, self.rows = self.rows, {t: [] for t in TABLE_ORDER}
        return rows

    def _borrower(self, branch: _Branch) -> None:
        rng, spec, today = self.rng, branch.spec, self.today
        self.counters["borrower"] += 1
        n = self.counters["borrower"]
        borrower_id = self._id("borrower")
        language = self._pick(spec.languages)
        dob = today - timedelta(days=_randint(rng, 20 * 365, 65 * 365))
        last4 = f"{_below(rng, 10000):04d}"
        if self.factors is not None:
            self.factors[borrower_id] = (dob.isoformat(), last4)
        group = rng.choice(branch.groups) if branch.groups and rng.random() < GROUP_SHARE else None
        officer = group[2] if group else branch.officers[n % len(branch.officers)][0]
        cycle = 1 + int(rng.random() ** 2 * 6)
        profile = self._pick(PROFILES)
        loans = self._loan_plan(group, profile, cycle)
        first_disbursed = loans[0][1]
        joined = self._local(branch, first_disbursed - timedelta(days=_randint(rng, 3, 20)), 10, 0)
        self.rows["borrower"].append(
            SHAPES["borrower"].row(
                id=borrower_id,
                external_id=f"{EXTERNAL_PREFIX}B{n:07d}",
                branch_id=branch.id,
                officer_id=officer,
                group_id=group[0] if group else None,
                full_name=self._name(spec.people),
                phone_e164=self._phone(branch),
                preferred_language=language,
                dob_hash=hash_secret_factor(self.pepper, dob.isoformat()),
                national_id_last4_hash=hash_secret_factor(self.pepper, last4),
                created_at=joined,
            )
        )
        channels = self._consents(branch, borrower_id, first_disbursed)
        for loan_profile, disbursed, loan_cycle, monthly, installments in loans:
            self._loan(
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
            )

    def _consents(self, branch: _Branch, borrower_id: int, since: date) -> list[str]:
        """Consent rows; answers the channels the borrower accepts messages on."""
        r = self.rng.random()
        at = self._local(branch, since, 11, 0)
        out = self._local(branch, since + timedelta(days=_randint(self.rng, 10, 60)), 17, 0)
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
            self.rows["borrower_consent"].append(
                SHAPES["borrower_consent"].row(
                    id=self._id("borrower_consent"),
                    borrower_id=borrower_id,
                    channel=channel,
                    opted_in=opted_in,
                    opted_in_at=at,
                    opted_out_at=None if opted_in else out,
                    source="seed",
                )
            )
        return [channel for channel, opted_in in decisions if opted_in]

    def _loan_plan(
        self, group: tuple[int, int, int] | None, profile: str, cycle: int
    ) -> list[tuple[str, date, int, bool, int]]:
        """(profile, disbursed on, cycle, monthly, installments) for each loan, oldest first."""
        rng, today = self.rng, self.today
        monthly = group is None and rng.random() < 0.5
        count = _randint(rng, 6, 12) if monthly else (16 if group else 12)
        period = 30 if monthly else 7
        if profile == "closed":
            back = count * period + _randint(rng, 1, 300)
        elif profile == "defaulted":
            back = (_randint(rng, 1, count // 2) + 1) * period + _randint(rng, 91, 300)
        else:
            low = 0 if profile == "on_time" else (3 if profile == "cured" else 2)
            back = _randint(rng, min(low, count - 1), count - 1) * period + _randint(
                rng, 1, period - 1
            )
        disbursed = self._weekday(today - timedelta(days=back))
        plan = [(profile, disbursed, cycle, monthly, count)]
        if cycle > 1 and profile != "closed" and rng.random() < 0.3:
            previous = 16 if group else 12
            start = self._weekday(disbursed - timedelta(days=previous * 7 + _randint(rng, 7, 60)))
            plan.insert(0, ("closed", start, cycle - 1, False, previous))
        return plan

    @staticmethod
    def _weekday(day: date) -> date:
        return day - timedelta(days=day.weekday() - 4) if day.weekday() >= 5 else day

    def _loan(
        self,
        branch: _Branch,
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
    ) -> None:
        rng, spec, today = self.rng, branch.spec, self.today
        self.counters["loan"] += 1
        n = self.counters["loan"]
        loan_id = self._id("loan")
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
        dues = due_dates(
            disbursed, monthly=monthly, count=count, weekday=group[1] if group else None
        )
        schedule = split_schedule(
            dues, principal=principal, interest=interest, fee_each=fee_each, upfront_fee=upfront
        )
        due_now = sum(1 for d in dues if d < today)
        if profile in {"late", "cured"} and due_now < (3 if profile == "cured" else 2):
            profile = "on_time"
        payments, promises = self._history(profile, schedule, due_now, disbursed)
        allocate(schedule, payments)

        status = {"closed": "closed", "defaulted": "defaulted"}.get(profile, "active")
        if status == "active" and rules.repaid([i.state for i in schedule]):
            status = "closed"
        paused = profile in {"late", "defaulted"} and status != "closed" and rng.random() < 0.05
        self.rows["loan"].append(
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
                created_at=self._local(branch, disbursed, 9, 0),
            )
        )
        installment_ids = []
        for seq, inst in enumerate(schedule, start=1):
            installment_id = self._id("loan_installment")
            installment_ids.append(installment_id)
            self.rows["loan_installment"].append(
                installment_row(
                    installment_id,
                    loan_id=loan_id,
                    seq=seq,
                    due_date=inst.due_date,
                    owed=inst.state,
                )
            )
        for payment in payments:
            self._payment(branch, loan_id, payment, installment_ids)
        channel = channels[0] if channels else "telegram"
        for amount, promised, status_, paid, created, evaluated in promises:
            self.rows["promise_to_pay"].append(
                SHAPES["promise_to_pay"].row(
                    id=self._id("promise_to_pay"),
                    loan_id=loan_id,
                    borrower_id=borrower_id,
                    amount=money(amount),
                    currency=spec.currency,
                    promised_date=promised.isoformat(),
                    channel=channel,
                    status=status_,
                    amount_paid=money(paid),
                    created_at=self._local(branch, created, _randint(rng, 8, 18), _below(rng, 60)),
                    evaluated_at=self._local(branch, evaluated, 6, 0) if evaluated else None,
                )
            )
        if paused:
            self._hardship_case(branch, borrower_id, loan_id, officer_id, language, channel)

    def _history(  # noqa: C901 - one draw per branch: the order of rng calls fixes the seeded data
        self, profile: str, schedule: list[Installment], due_now: int, disbursed: date
    ) -> tuple[list[Payment], list[tuple[int, date, str, int, date, date | None]]]:
        """Payments and promises (amount, date, status, paid, created, evaluated) of a loan."""
        rng, today = self.rng, self.today
        yesterday = today - timedelta(days=1)
        payments: list[Payment] = []
        promises: list[tuple[int, date, str, int, date, date | None]] = []

        def on_time(i: int) -> date:
            return max(
                disbursed + timedelta(days=1),
                schedule[i].due_date - timedelta(days=_randint(rng, 0, 2)),
            )

        def late(i: int, most: int) -> date:
            return min(schedule[i].due_date + timedelta(days=_randint(rng, 1, most)), yesterday)

        if profile in {"on_time", "closed"}:
            paid = len(schedule) if profile == "closed" else due_now
            for i in range(paid):
                day = late(i, 4) if rng.random() < 0.08 else on_time(i)
                payments.append(Payment(min(day, yesterday), schedule[i].total))
        elif profile == "late":
            missed = _randint(rng, 1, min(3, due_now - 1))
            for i in range(due_now - missed):
                day = late(i, 6) if rng.random() < 0.3 else on_time(i)
                payments.append(Payment(day, schedule[i].total))
            first = due_now - missed
            partial = rng.random() < 0.4
            if partial:
                part = schedule[first].total * _randint(rng, 30, 70) // 100
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
                promised = today + timedelta(days=_randint(rng, 1, 10))
                arrears = sum(inst.total for inst in schedule[first:due_now])
                promises.append(
                    (
                        arrears,
                        promised,
                        "pending",
                        0,
                        today - timedelta(days=_randint(rng, 0, 3)),
                        None,
                    )
                )
            else:
                promised = min(
                    schedule[first].due_date + timedelta(days=_randint(rng, 1, 3)), yesterday
                )
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
            gap = _randint(rng, 0, due_now - 3)
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
                    catch_up + timedelta(days=_randint(rng, 0, 2)),
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
            paid = _randint(rng, 0, first_missed) if first_missed else 0
            for i in range(paid):
                payments.append(Payment(on_time(i), schedule[i].total))
            for k in range(_randint(rng, 1, 2)):
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

    def _payment(
        self, branch: _Branch, loan_id: int, payment: Payment, installments: list[int]
    ) -> None:
        rng, spec = self.rng, branch.spec
        self.counters["payment"] += 1
        payment_id = self._id("payment")
        method, prefix = self._pick(branch.methods)
        reference = (
            f"{prefix}{_scramble(self.counters['payment'], 16**10, 1_000_003, self.shift):010X}"
        )
        received = self._local(branch, payment.day, _randint(rng, 7, 18), _below(rng, 60))
        self.rows["payment"].append(
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
            self.rows["payment_allocation"].append(
                allocation_row(
                    self._id("payment_allocation"),
                    payment_id=payment_id,
                    installment_id=installments[split.installment],
                    split=split,
                )
            )

    def _hardship_case(
        self,
        branch: _Branch,
        borrower_id: int,
        loan_id: int,
        officer_id: int,
        language: str,
        channel: str,
    ) -> None:
        rng = self.rng
        self.counters["case"] += 1
        reference = "H-" + _encode(
            _scramble(self.counters["case"], 32**6, 40_503, self.shift), _B32, 6
        )
        opened = (
            datetime.combine(
                self.today - timedelta(days=_randint(rng, 0, 3)), time(_randint(rng, 8, 17)), UTC
            )
            - branch.offset
        )
        self.rows["case"].append(
            SHAPES["case"].row(
                id=self._id("case"),
                reference=reference,
                kind="hardship",
                borrower_id=borrower_id,
                loan_id=loan_id,
                category=rng.choice(HARDSHIP_CATEGORIES),
                borrower_words=rng.choice(HARDSHIP_WORDS[language]),
                requested_relief=rng.choice(RELIEFS),
                channel=channel,
                status="open",
                assigned_officer_id=officer_id,
                sla_due_at=self.w.ts(opened + timedelta(hours=48)),
                created_at=self.w.ts(opened),
            )
        )


def seed_portfolio(
    database_url: str,
    *,
    borrowers: int,
    seed: int,
    today: date,
    pepper: str,
    chunk: int = 2000,
    progress: Callable[[int], None] | None = None,
    migrate: bool = True,
    defer_indexes: bool | None = None,
) -> SeedReport:
    """Migrate ``database_url`` and write a synthetic portfolio of ``borrowers`` in one transaction.

    ``defer_indexes`` (default: for large portfolios) builds plain indexes after the load when
    the database holds no borrower yet.

    Raises:
        AlreadySeeded: the database already holds synthetic borrowers.
    """
    started = clock.perf_counter()
    if migrate:
        upgrade(database_url)
    engine = build_engine(database_url)
    report = SeedReport(counts=dict.fromkeys(TABLE_ORDER, 0))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA cache_size=-262144")
            elif conn.execute(
                text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar():
                # Skips per-row foreign-key triggers for this transaction only. Rows come
                # parents first from one generator, and the tests check every link.
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            existing = conn.execute(
                text("SELECT 1 FROM borrower WHERE external_id LIKE :p LIMIT 1"),
                {"p": f"{EXTERNAL_PREFIX}%"},
            ).first()
            if existing:
                raise AlreadySeeded("this database already holds a synthetic portfolio")
            writer = BulkWriter(conn)
            if (
                borrowers >= DEFER_INDEXES_FROM
                and not conn.execute(text("SELECT 1 FROM borrower LIMIT 1")).first()
            ):
                writer.defer_indexes(TABLE_ORDER)
            generator = PortfolioGenerator(
                writer=writer, borrowers=borrowers, seed=seed, today=today, pepper=pepper
            )

            def write(done: int, rows: dict[str, list[Row]]) -> None:
                for table in TABLE_ORDER:
                    report.counts[table] += writer.write(SHAPES[table], rows[table])
                if progress:
                    progress(done)

            # The driver writes one chunk while Python draws the next: both drivers release
            # the GIL while the database works, so the two overlap on a second core.
            pending: deque[Future[None]] = deque()
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-writer") as pool:
                for done, rows in generator.chunks(chunk):
                    pending.append(pool.submit(write, done, rows))
                    while len(pending) > 2:
                        pending.popleft().result()
                while pending:
                    pending.popleft().result()
            writer.finish()
    finally:
        engine.dispose()
    report.seconds = clock.perf_counter() - started
    return report
