"""What a date expression means: calendar arithmetic and the rules that turn what a pattern
captured into a date, seen from the borrower's ``today``."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, timedelta

Captures = dict[str, int]
Resolver = Callable[[Captures, date], "date | None"]


# --- calendar arithmetic -------------------------------------------------------------------


def add_months(start: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last))


def _end_of_month(today: date, months_ahead: int = 0) -> date:
    first = add_months(today.replace(day=1), months_ahead)
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _weekday(today: date, weekday: int, *, include_today: bool) -> date:
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and not include_today:
        ahead = 7
    return today + timedelta(days=ahead)


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _day_in_month(today: date, day: int) -> date | None:
    """The next date with this day of month, this month if it is not past, else later."""
    for ahead in range(13):
        first = add_months(today.replace(day=1), ahead)
        found = _valid(first.year, first.month, day)
        if found is not None and found >= today:
            return found
    return None


def _day_and_month(today: date, day: int, month: int, year: int | None) -> date | None:
    if year is not None:
        return _valid(year, month, day)
    for candidate_year in range(today.year, today.year + 9):
        found = _valid(candidate_year, month, day)
        if found is not None and found >= today:
            return found
    return None


# --- resolvers -----------------------------------------------------------------------------


def days_from_today(n: int) -> Resolver:
    return lambda caps, today: today + timedelta(days=n)


def in_days(caps: Captures, today: date) -> date | None:
    return today + timedelta(days=caps["n"]) if caps["n"] <= 366 else None


def in_weeks(caps: Captures, today: date) -> date | None:
    return today + timedelta(weeks=caps.get("n", 1)) if caps.get("n", 1) <= 52 else None


def in_months(caps: Captures, today: date) -> date | None:
    return add_months(today, caps.get("n", 1)) if caps.get("n", 1) <= 24 else None


def next_weekday(caps: Captures, today: date) -> date:
    # A bare weekday is the next one after today: said on a Friday, "friday" is a week ahead.
    return _weekday(today, caps["wd"], include_today=False)


def weekday_next_week(caps: Captures, today: date) -> date:
    next_monday = today + timedelta(days=7 - today.weekday())
    return next_monday + timedelta(days=caps["wd"])


def last_weekday(caps: Captures, today: date) -> date:
    return today - timedelta(days=(today.weekday() - caps["wd"]) % 7 or 7)


def this_weekday(caps: Captures, today: date) -> date:
    return _weekday(today, caps["wd"], include_today=True)


def day_of_month(caps: Captures, today: date) -> date | None:
    if "mon" in caps:
        return _day_and_month(today, caps["day"], caps["mon"], caps.get("year"))
    return _day_in_month(today, caps["day"])


def day_next_month(caps: Captures, today: date) -> date | None:
    first = add_months(today.replace(day=1), 1)
    return _valid(first.year, first.month, caps["day"])


def end_of_this_month(caps: Captures, today: date) -> date:
    return _end_of_month(today)


def end_of_next_month(caps: Captures, today: date) -> date:
    return _end_of_month(today, 1)


def weekend(caps: Captures, today: date) -> date:
    return today if today.weekday() == 6 else _weekday(today, 5, include_today=True)


def numeric_date(caps: Captures, today: date) -> date | None:
    day, month, year = caps["day"], caps["mon"], caps.get("year")
    if year is not None and year < 100:
        year += 2000
    if month > 12 and day <= 12:  # 12/25: written month first
        day, month = month, day
    return _day_and_month(today, day, month, year)
