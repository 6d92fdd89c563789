"""What :mod:`api.kpis.service` answers: typed, JSON-ready figures with their parts.

Every money figure names its ISO 4217 currency and no ratio ever mixes two currencies: a
portfolio in KES and UGX gets one row per currency. Counts (promises, reminders, borrowers,
messages) are currency-free and come as one figure. Each ratio keeps its numerator and
denominator, so an officer can check it by hand; ``None`` when the denominator is zero.
Serialised with ``model_dump(mode="json")``, amounts and rates are decimal strings.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, ConfigDict, computed_field

from api.kpis.intervals import newcombe, wilson

RATE_PLACES = Decimal("0.0001")

# Days-past-due buckets of the roll rates, in order; "90+" is more than 90 days (as PAR90).
BUCKETS = ("0", "1-30", "31-60", "61-90", "90+")
REPAID = "repaid"  # a roll rate's destination: nothing outstanding at the later month-end


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """``numerator / denominator`` to 4 places (half-even), ``None`` when nothing is in the
    denominator."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATE_PLACES, ROUND_HALF_EVEN)


class _Figures(BaseModel):
    model_config = ConfigDict(frozen=True)


class PortfolioAtRisk(_Figures):
    """PAR in one currency at the end of the as-of day.

    ``parN = parN_principal / gross_principal`` where ``gross_principal`` is the unpaid
    principal of every loan on the books and ``parN_principal`` that of the loans with more
    than N days past due.
    """

    currency: str
    loans: int
    gross_principal: Decimal
    par1_principal: Decimal
    par30_principal: Decimal
    par90_principal: Decimal

    @computed_field  # type: ignore[prop-decorator]
    @property
    def par1(self) -> Decimal | None:
        return ratio(self.par1_principal, self.gross_principal)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def par30(self) -> Decimal | None:
        return ratio(self.par30_principal, self.gross_principal)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def par90(self) -> Decimal | None:
        return ratio(self.par90_principal, self.gross_principal)


class Collection(_Figures):
    """Collection in one currency over the period (fees, interest and principal together).

    ``on_time_rate = paid_on_time / due``;
    ``with_arrears_rate = (paid_by_as_of + arrears_collected) / (due + arrears_at_start)``.
    """

    currency: str
    due: Decimal  # installments falling due in the period
    paid_on_time: Decimal  # of ``due``, paid by each installment's due date
    paid_by_as_of: Decimal  # of ``due``, paid by the end of the as-of day (late included)
    arrears_at_start: Decimal  # owed at the period's start by installments due before it
    arrears_collected: Decimal  # of ``arrears_at_start``, paid during the period

    @computed_field  # type: ignore[prop-decorator]
    @property
    def on_time_rate(self) -> Decimal | None:
        return ratio(self.paid_on_time, self.due)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def with_arrears_rate(self) -> Decimal | None:
        return ratio(self.paid_by_as_of + self.arrears_collected, self.due + self.arrears_at_start)


class PromiseOutcomes(_Figures):
    """Promises whose window (promised date + ``grace_days``) ended in the period.

    ``kept_rate = kept / (kept + partially_kept + broken)``.
    """

    grace_days: int
    kept: int
    partially_kept: int
    broken: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kept_rate(self) -> Decimal | None:
        return ratio(self.kept, self.kept + self.partially_kept + self.broken)


class RollRates(_Figures):
    """Loans on the books at ``from_date`` (a month-end), by days-past-due bucket then and at
    ``to_date`` (the next month-end): ``counts[a][b]`` loans went from bucket ``a`` to ``b``
    (``b`` may be ``repaid``); ``rates[a][b] = counts[a][b] / sum(counts[a].values())``.

    Cure: ``cure_rate = cured / past_due_at_start``, the loans past due at ``from_date`` that
    are current (or repaid) at ``to_date``.
    """

    from_date: date
    to_date: date
    counts: dict[str, dict[str, int]]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rates(self) -> dict[str, dict[str, Decimal | None]]:
        return {
            start: {end: ratio(n, sum(row.values())) for end, n in row.items()}
            for start, row in self.counts.items()
        }

    @computed_field  # type: ignore[prop-decorator]
    @property
    def past_due_at_start(self) -> int:
        return sum(sum(row.values()) for start, row in self.counts.items() if start != "0")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cured(self) -> int:
        return sum(
            n
            for start, row in self.counts.items()
            if start != "0"
            for end, n in row.items()
            if end in ("0", REPAID)
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cure_rate(self) -> Decimal | None:
        return ratio(self.cured, self.past_due_at_start)


class ReminderConversion(_Figures):
    """Reminders sent in the period whose ``window_days`` had passed by the end of the as-of
    day, and those followed by a payment on their loan within ``window_days``.

    ``rate = converted / reminders``.
    """

    window_days: int
    sent_through: date  # the last day a counted reminder could have been sent
    reminders: int
    converted: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> Decimal | None:
        return ratio(self.converted, self.reminders)


class BorrowerRate(_Figures):
    """Borrowers to whom something happened in the period over the borrowers reached: those
    sent at least one campaign message (reminder or incentive). ``rate = borrowers / reached``.
    """

    borrowers: int
    reached: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> Decimal | None:
        return ratio(self.borrowers, self.reached)


class DeliveryOutcomes(_Figures):
    """Per channel, the notifier's final decisions on messages in the period (``outcomes``:
    sent, failed, dead, unknown, suppressed) and the provider's receipts (``receipts``:
    delivered, read, failed; WhatsApp only)."""

    channel: str
    outcomes: dict[str, int]
    receipts: dict[str, int]


class ChannelContacts(_Figures):
    """Messages the notifier sent to borrowers on one channel, and how many reached them: read
    (a WhatsApp read receipt) or answered (anything the borrower sent) within the window. On
    the channel ``phone``, officers' calls: ``replied`` and ``reached`` are those answered.

    ``rate = reached / sent``; ``read`` and ``replied`` overlap, ``reached`` counts each
    message once.
    """

    channel: str
    sent: int
    read: int
    replied: int
    reached: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> Decimal | None:
        return ratio(self.reached, self.sent)


class RightPartyContact(_Figures):
    """The chat version of the right-party-contact rate: messages sent to borrowers in the
    period up to ``sent_through`` (so each had its whole ``window_hours``) that were read or
    replied to within ``window_hours`` ÷ those messages, per channel and in all.
    """

    window_hours: int
    sent_through: date
    channels: list[ChannelContacts]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.channels)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reached(self) -> int:
        return sum(c.reached for c in self.channels)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> Decimal | None:
        return ratio(self.reached, self.sent)


class OfficerSla(_Figures):
    """One officer's cases whose SLA deadline fell in the period (``officer_id`` None: cases
    nobody was assigned): ``breached`` were not taken (acknowledged, called or resolved) by
    their deadline, ``still_open`` of those were still not taken at the end of the as-of day.

    ``rate = breached / due``.
    """

    officer_id: int | None
    officer: str | None
    due: int
    breached: int
    still_open: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> Decimal | None:
        return ratio(self.breached, self.due)


class SlaBreaches(_Figures):
    """SLA breaches per assigned officer, officers by name (unassigned last), and in all:
    ``rate = breached / due``."""

    officers: list[OfficerSla]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def due(self) -> int:
        return sum(o.due for o in self.officers)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def breached(self) -> int:
        return sum(o.breached for o in self.officers)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> Decimal | None:
        return ratio(self.breached, self.due)


class ArmOutcome(_Figures):
    """One arm of the reminder holdout: installments due in the period and those paid in full
    by their due date. ``rate = on_time / installments``, with its 95 % Wilson score interval
    ``[low, high]``."""

    installments: int
    on_time: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate(self) -> Decimal | None:
        return ratio(self.on_time, self.installments)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def low(self) -> Decimal | None:
        return _bound(wilson(self.on_time, self.installments), 0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def high(self) -> Decimal | None:
        return _bound(wilson(self.on_time, self.installments), 1)


class HoldoutLift(_Figures):
    """The causal lift of reminders: the on-time payment rate of reminded borrowers minus that
    of the holdout (intention to treat: arms by the borrower's hash, whatever was sent), with
    the 95 % confidence interval of the difference by Newcombe's hybrid score method (Wilson
    intervals of each rate combined; :func:`api.kpis.intervals.newcombe`).

    ``share`` is the holdout share configured now; ``counted_from`` the first due date counted
    (the period's start, or the experiment's start when later).
    """

    share: float
    counted_from: date
    reminded: ArmOutcome
    holdout: ArmOutcome

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lift(self) -> Decimal | None:
        return _bound(self._interval(), 0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lift_low(self) -> Decimal | None:
        return _bound(self._interval(), 1)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lift_high(self) -> Decimal | None:
        return _bound(self._interval(), 2)

    def _interval(self) -> tuple[float, float, float] | None:
        r, h = self.reminded, self.holdout
        return newcombe(r.on_time, r.installments, h.on_time, h.installments)


def _bound(values: tuple[float, ...] | None, index: int) -> Decimal | None:
    if values is None:
        return None
    return Decimal(repr(values[index])).quantize(RATE_PLACES, ROUND_HALF_EVEN)


class KpiReport(_Figures):
    """Every KPI at ``as_of`` (a day of each branch's own calendar), for one branch or all."""

    as_of: date
    branch: str | None
    period_start: date  # the period: the as-of day's month up to and including the as-of day
    period_end: date
    portfolio_at_risk: list[PortfolioAtRisk]
    collection: list[Collection]
    promises: PromiseOutcomes
    roll_rates: RollRates
    reminder_conversion: ReminderConversion
    opt_out: BorrowerRate
    complaints: BorrowerRate
    delivery: list[DeliveryOutcomes]
    right_party_contact: RightPartyContact
    sla_breaches: SlaBreaches
    holdout_lift: HoldoutLift
