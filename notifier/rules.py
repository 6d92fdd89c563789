"""The conduct rules as pure functions over a small snapshot (rules C-1 .. C-11).

The planner builds a :class:`Snapshot` per candidate message, the delivery worker builds one
again just before each send, and both ask :func:`decide`. Nothing here touches the database or
the clock, so the property tests can try thousands of schedules, time zones and holidays cheaply.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

CAMPAIGN_PURPOSES = frozenset({"reminder", "incentive"})
# Row F-13: a worker's clock may be off the true time by up to this much (NTP keeps it much
# closer). The window is judged this far inside both of its edges, and a message moved to the
# next window goes this long after it opens, so a message judged on a skewed clock still leaves
# inside the borrower's window by the true clock: a send due at 08:00 local goes at 08:02.
CLOCK_SKEW_MARGIN = timedelta(minutes=2)


class Rule(enum.StrEnum):
    """The rule that decided, as written to the ledger."""

    opted_out = "opted_out"  # C-4, C-5
    whatsapp_no_opt_in = "whatsapp_no_opt_in"  # C-11
    installment_paid = "installment_paid"
    promise_settled = "promise_settled"  # the promise was kept or cancelled before its reminder
    hardship_case_open = "hardship_case_open"  # C-8
    promise_pending = "promise_pending"  # C-8
    quiet_hours = "quiet_hours"  # C-1
    holiday = "holiday"  # C-2
    cap_day = "cap_day"  # C-3
    cap_7d = "cap_7d"
    cap_30d = "cap_30d"
    limited_content = "limited_content"  # C-6
    campaign = "campaign"  # a plain send under the campaign policy
    service = "service"  # officer alerts and case updates: no caps
    holdout = "holdout"  # a non-essential reminder to a holdout borrower (notifier/holdout.py)


@cache
def country_holidays(country: str, year: int) -> frozenset[date]:
    """Public holidays of ``country`` in ``year`` from the maintained ``holidays`` calendar."""
    try:
        return frozenset(holidays.country_holidays(country, years=year).keys())
    except NotImplementedError:
        # The calendar does not know this country: only the branch's own closed days protect its
        # borrowers, so say so loudly (once per country and year, thanks to the cache).
        logging.getLogger(__name__).warning(
            "no public-holiday calendar for country %s; configure the branch's closed days", country
        )
        return frozenset()


@dataclass(frozen=True)
class Calendar:
    """Days on which no automated message goes out: public holidays, branch days, Sundays."""

    country: str
    closed_weekdays: frozenset[int] = frozenset({6})
    extra: frozenset[date] = frozenset()

    def is_closed(self, day: date) -> bool:
        return (
            day.weekday() in self.closed_weekdays
            or day in self.extra
            or day in country_holidays(self.country, day.year)
        )


@dataclass(frozen=True)
class Window:
    """The borrower's local send window (C-1) and closed days (C-2)."""

    tz: str
    start: time
    end: time
    calendar: Calendar
    # Judged this far inside ``start`` and ``end`` (CLOCK_SKEW_MARGIN).
    margin: timedelta = CLOCK_SKEW_MARGIN

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.tz)


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


_zone = zone


def local_day(at: datetime, tz: str) -> date:
    return at.astimezone(_zone(tz)).date()


def _seconds(clock: time) -> float:
    return clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6


def is_allowed(at: datetime, window: Window) -> bool:
    """Whether ``at`` is inside the window, its margin inside each edge, on an open day."""
    local = at.astimezone(window.zone)
    if window.calendar.is_closed(local.date()):
        return False
    margin = window.margin.total_seconds()
    now = _seconds(local.time())
    return _seconds(window.start) + margin <= now < _seconds(window.end) - margin


def window_closes(at: datetime, window: Window) -> datetime:
    """When the window open at ``at`` stops allowing sends: its local end less the margin."""
    day = at.astimezone(window.zone).date()
    return datetime.combine(day, window.end, tzinfo=window.zone) - window.margin


def next_allowed(at: datetime, window: Window) -> datetime:
    """The first instant at or after ``at`` inside the window on an open day: the window's
    start plus its margin (08:02 for 08:00), unless ``at`` is inside already.

    Raises:
        ValueError: no open day within two years (a policy that closes every day).
    """
    if is_allowed(at, window):
        return at
    zone = window.zone
    day = at.astimezone(zone).date()
    for _ in range(732):
        if not window.calendar.is_closed(day):
            # Wall-clock arithmetic: the margin after the local start.
            candidate = datetime.combine(day, window.start, tzinfo=zone) + window.margin
            # A window start inside a DST gap does not exist locally: step until it does.
            for _ in range(48):
                if candidate >= at and is_allowed(candidate, window):
                    return candidate
                candidate = (
                    candidate.astimezone(ZoneInfo("UTC")) + timedelta(minutes=30)
                ).astimezone(zone)
                if candidate.date() != day:
                    break
        day += timedelta(days=1)
    raise ValueError("no open day in the send window within two years")


@dataclass(frozen=True)
class Caps:
    per_day: int = 1
    per_7_days: int = 3
    per_30_days: int = 10


def _count_between(days: Sequence[date], first: date, last: date) -> int:
    return sum(1 for d in days if first <= d <= last)


def cap_counts(day: date, attempts: Iterable[date]) -> dict[str, int]:
    """The attempts in the cap windows of a message on local ``day``, for the ledger (C-10):
    on that day, and within 6 and 29 days of it (every rolling 7- and 30-day window that holds
    ``day`` lies within those)."""
    days = list(attempts)
    return {
        "day": sum(1 for d in days if d == day),
        "7d": sum(1 for d in days if abs((d - day).days) < 7),
        "30d": sum(1 for d in days if abs((d - day).days) < 30),
    }


def cap_violation(day: date, attempts: Iterable[date], caps: Caps) -> Rule | None:
    """Which cap one more message on ``day`` would break, checking every rolling window."""
    days = list(attempts)
    if not days:
        return None
    if _count_between(days, day, day) >= caps.per_day:
        return Rule.cap_day
    for span, limit, rule in (
        (7, caps.per_7_days, Rule.cap_7d),
        (30, caps.per_30_days, Rule.cap_30d),
    ):
        for offset in range(span):
            first = day - timedelta(days=offset)
            if _count_between(days, first, first + timedelta(days=span - 1)) >= limit:
                return rule
    return None


@dataclass(frozen=True)
class Snapshot:
    """What the rules need to know about one message at one instant."""

    at: datetime
    purpose: str  # reminder | incentive | officer_alert | case_update
    channel: str
    window: Window
    caps: Caps = Caps()
    is_collection: bool = False
    to_borrower: bool = True
    opted_out: bool = False
    whatsapp_opted_in: bool = False
    channel_verified: bool = True
    loan_paused: bool = False
    # Last local day on which a pending promise holds collection reminders back (date + grace).
    promise_pending_until: date | None = None
    # This message is the promise's own reminder, which the promise does not hold back.
    promise_step: bool = False
    installment_paid: bool = False
    promise_settled: bool = False
    # Local days of this loan's other attempts (sent, in flight, unknown outcome, or planned).
    attempts: tuple[date, ...] = field(default=())


@dataclass(frozen=True)
class Decision:
    action: Literal["send", "suppress", "reschedule"]
    rule: Rule
    send_at: datetime
    limited: bool = False


def decide(snapshot: Snapshot) -> Decision:
    """Apply every rule, in order; the first that says no decides."""
    s = snapshot
    if s.to_borrower and s.opted_out:
        return Decision("suppress", Rule.opted_out, s.at)
    if s.to_borrower and s.channel == "whatsapp" and not s.whatsapp_opted_in:
        return Decision("suppress", Rule.whatsapp_no_opt_in, s.at)
    if s.purpose not in CAMPAIGN_PURPOSES:
        return Decision("send", Rule.service, s.at)
    if s.installment_paid:
        return Decision("suppress", Rule.installment_paid, s.at)
    if s.promise_settled:
        return Decision("suppress", Rule.promise_settled, s.at)
    if s.is_collection and s.loan_paused:
        return Decision("suppress", Rule.hardship_case_open, s.at)
    if (
        s.is_collection
        and not s.promise_step
        and s.promise_pending_until is not None
        and local_day(s.at, s.window.tz) <= s.promise_pending_until
    ):
        return Decision("suppress", Rule.promise_pending, s.at)
    send_at = s.at
    moved: Rule | None = None
    if not is_allowed(send_at, s.window):
        closed = s.window.calendar.is_closed(local_day(send_at, s.window.tz))
        moved = Rule.holiday if closed else Rule.quiet_hours
        send_at = next_allowed(send_at, s.window)
    cap = cap_violation(local_day(send_at, s.window.tz), s.attempts, s.caps)
    if cap is not None:
        return Decision("suppress", cap, send_at)
    limited = not s.channel_verified
    if moved is not None:
        return Decision("reschedule", moved, send_at, limited)
    return Decision("send", Rule.limited_content if limited else Rule.campaign, send_at, limited)
