"""The send window over random instants, zones, DST changes and holiday calendars (K-1, F-13,
K-2): hypothesis strategies, and an oracle of the window that does not use
``notifier.rules``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from functools import cache
from zoneinfo import ZoneInfo

import holidays
from hypothesis import strategies as st

from notifier.config import Policy, load_campaigns
from notifier.rules import Calendar, Window


class Oracle:
    """The send window of one branch, computed independently of ``notifier.rules``: local
    hours from the policy, Sundays (the policy's closed weekdays), the country's public holidays
    from the ``holidays`` package and the branch's own closed days."""

    def __init__(self, policy: Policy, tz: str, country: str, extra: Sequence[str]) -> None:
        self.zone = ZoneInfo(tz)
        self.start, self.end = policy.quiet_hours.start, policy.quiet_hours.end
        self.closed_weekdays = set(policy.closed_weekdays)
        self.country = country
        self.extra = {date.fromisoformat(d) for d in [*extra, *policy.holidays]}

    def closed(self, day_: date) -> bool:
        if day_.weekday() in self.closed_weekdays or day_ in self.extra:
            return True
        try:
            return day_ in holidays.country_holidays(self.country, years=day_.year)
        except NotImplementedError:
            return False

    def allows(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        return not self.closed(local.date()) and self.start <= local.time() < self.end


# Zones with DST (some at midnight, some by 30 minutes, Morocco's Ramadan shift), odd offsets,
# both hemispheres, and the branches' own.
ZONES = (
    "Africa/Nairobi",
    "Africa/Dakar",
    "Africa/Casablanca",
    "America/Mexico_City",
    "America/New_York",
    "America/Havana",
    "America/Santiago",
    "America/St_Johns",
    "America/Sao_Paulo",
    "Europe/Paris",
    "Europe/London",
    "Asia/Manila",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Etc/GMT+11",
)
COUNTRIES = (
    "KE",
    "SN",
    "MA",
    "MX",
    "US",
    "CU",
    "CL",
    "CA",
    "BR",
    "FR",
    "GB",
    "PH",
    "IN",
    "NP",
    "AU",
    "NZ",
    "ZZ",
)
YEARS = (2025, 2028)


@cache
def transitions(tz: str) -> tuple[datetime, ...]:
    """The instants in YEARS at which ``tz`` changes its UTC offset (to the minute)."""
    zone = ZoneInfo(tz)
    found: list[datetime] = []
    at = datetime(YEARS[0], 1, 1, tzinfo=UTC)
    end = datetime(YEARS[1], 12, 31, tzinfo=UTC)
    step = timedelta(hours=6)
    while at < end:
        if at.astimezone(zone).utcoffset() != (at + step).astimezone(zone).utcoffset():
            lo, hi = at, at + step
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset():
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        at += step
    return tuple(found)


@st.composite
def instants_in(draw: st.DrawFn, tz: str) -> datetime:
    """A random instant, half of the time within a day of one of the zone's DST changes."""
    changes = transitions(tz)
    if changes and draw(st.booleans()):
        change = draw(st.sampled_from(changes))
        return change + timedelta(seconds=draw(st.integers(-86_400, 86_400)))
    return draw(
        st.datetimes(
            min_value=datetime(YEARS[0], 1, 1),
            max_value=datetime(YEARS[1], 12, 31),
            timezones=st.just(UTC),
        )
    )


@st.composite
def policies(draw: st.DrawFn, vary: bool = True) -> tuple[Policy, str, str]:
    """The configured policy of a random country, or (``vary``) half of the time a random window
    with random closed weekdays."""
    country = draw(st.sampled_from(COUNTRIES))
    tz = draw(st.sampled_from(ZONES))
    config = load_campaigns()
    policy = config.policy_for(country=country, branch_code="-")
    if vary and draw(st.booleans()):
        start = draw(st.integers(6, 10))
        policy = policy.model_copy(
            update={
                "quiet_hours": policy.quiet_hours.model_copy(
                    update={
                        "start": clock_time(start, draw(st.sampled_from([0, 30]))),
                        "end": clock_time(draw(st.integers(start + 2, 22))),
                    }
                ),
                "closed_weekdays": sorted(draw(st.frozensets(st.integers(0, 6), max_size=2))),
            }
        )
    return policy, tz, country


def window_of(policy: Policy, tz: str, country: str, extra: Sequence[str]) -> Window:
    return Window(
        tz=tz,
        start=policy.quiet_hours.start,
        end=policy.quiet_hours.end,
        calendar=Calendar(
            country=country,
            closed_weekdays=frozenset(policy.closed_weekdays),
            extra=frozenset(date.fromisoformat(d) for d in [*extra, *policy.holidays]),
        ),
    )


@st.composite
def skewed_cases(draw: st.DrawFn) -> tuple[Policy, str, str, list[str], datetime, int, str]:
    policy, tz, country = draw(policies())
    at = draw(instants_in(tz))
    local = at.astimezone(ZoneInfo(tz)).date()
    extra = sorted(
        {
            (local + timedelta(days=d)).isoformat()
            for d in draw(st.lists(st.integers(-1, 5), max_size=3))
        }
    )
    skew = draw(st.integers(-120, 120))
    purpose = draw(st.sampled_from(["reminder", "incentive"]))
    return policy, tz, country, extra, at, skew, purpose
