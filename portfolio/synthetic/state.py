"""What every draw of the synthetic portfolio shares: one generator, the next ids, the rows."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from portfolio.bulk import Row, RowFormat
from portfolio.markets import NAMES, BranchSpec
from portfolio.synthetic.draws import below, pick, scramble
from portfolio.synthetic.tables import TABLE_ORDER


@dataclass
class Branch:
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


class DrawState:
    """The seed's ``random.Random``, the ids each table takes next and the rows drawn so far.

    Everything is drawn from :attr:`rng` in a fixed order: the same seed and day give the same
    rows, ids included, in an empty database.
    """

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
        self.shift = below(self.rng, 10**6)
        self.today = today
        self.pepper = pepper
        self.ids = {table: writer.next_id(table) for table in TABLE_ORDER}
        self.counters = {"borrower": 0, "loan": 0, "payment": 0, "case": 0, "officer": 0}
        self.rows: dict[str, list[Row]] = {t: [] for t in TABLE_ORDER}

    def next_id(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def local(self, branch: Branch, day: date, hour: int, minute: int) -> str:
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

    def pick(self, weighted: tuple[tuple[Any, int], ...]) -> Any:
        return pick(self.rng, weighted)

    def name(self, people: str) -> str:
        first, last = NAMES[people]
        return f"{self.rng.choice(first)} {self.rng.choice(last)}"

    def phone(self, branch: Branch) -> str:
        spec = branch.spec
        k = branch.phones
        branch.phones += 1
        prefix = spec.phone_prefixes[k % len(spec.phone_prefixes)]
        modulus = 10**spec.phone_digits
        number = scramble(k // len(spec.phone_prefixes), modulus, 7_654_321, self.shift)
        return f"{prefix}{number:0{spec.phone_digits}d}"

    def flush(self) -> dict[str, list[Row]]:
        """The rows drawn since the last flush, by table."""
        rows, self.rows = self.rows, {t: [] for t in TABLE_ORDER}
        return rows
