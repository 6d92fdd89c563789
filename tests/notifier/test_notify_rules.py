"""Property tests of the conduct rules over random schedules, time zones, holidays and instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.rules import (
    CLOCK_SKEW_MARGIN,
    Calendar,
    Caps,
    Rule,
    Snapshot,
    Window,
    decide,
    is_allowed,
    local_day,
    next_allowed,
    window_closes,
)

ZONES = [
    "Africa/Nairobi",
    "Africa/Dakar",
    "America/Mexico_City",
    "America/New_York",  # DST
    "Europe/Paris",  # DST
    "Asia/Manila",
    "Asia/Kolkata",
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -03:30 with DST
]
COUNTRIES = ["KE", "SN", "MX", "US", "FR", "PH", "IN", "NZ", "CA", "ZZ"]

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start_hour = draw(st.integers(min_value=6, max_value=10))
    end_hour = draw(st.integers(min_value=start_hour + 2, max_value=22))
    extra = draw(
        st.frozensets(
            st.dates(min_value=date(2025, 1, 1), max_value=date(2029, 1, 31)), max_size=40
        )
    )
    closed = draw(st.frozensets(st.integers(min_value=0, max_value=6), max_size=2))
    return Window(
        tz=draw(st.sampled_from(ZONES)),
        start=time(start_hour, draw(st.sampled_from([0, 30]))),
        end=time(end_hour, 0),
        calendar=Calendar(
            country=draw(st.sampled_from(COUNTRIES)), closed_weekdays=closed, extra=extra
        ),
    )


@settings(max_examples=600, deadline=None)
@given(at=instants, window=windows(), purpose=st.sampled_from(["reminder", "incentive"]))
def test_no_campaign_send_outside_the_local_window_or_on_a_closed_day(
    at: datetime, window: Window, purpose: str
) -> None:
    decision = decide(Snapshot(at=at, purpose=purpose, channel="telegram", window=window))
    assert decision.action in {"send", "reschedule"}  # late messages are moved, never dropped
    assert is_allowed(decision.send_at, window)
    assert not window.calendar.is_closed(local_day(decision.send_at, window.tz))
    local = decision.send_at.astimezone(window.zone)
    assert window.start <= local.time() < window.end
    assert decision.send_at >= at
    if decision.action == "send":
        assert decision.send_at == at


@settings(max_examples=300, deadline=None)
@given(
    start=instants,
    window=windows(),
    gaps=st.lists(st.integers(min_value=0, max_value=60 * 60 * 72), min_size=1, max_size=80),
    caps=st.builds(
        Caps,
        per_day=st.integers(min_value=1, max_value=2),
        per_7_days=st.integers(min_value=1, max_value=4),
        per_30_days=st.integers(min_value=1, max_value=12),
    ),
)
def test_a_storm_of_reminders_never_exceeds_any_cap(
    start: datetime, window: Window, gaps: list[int], caps: Caps
) -> None:
    """Feed one loan's candidate messages in order; what the rules let through obeys every cap."""
    attempts: list[date] = []
    at = start
    for gap in gaps:
        at += timedelta(seconds=gap)
        decision = decide(
            Snapshot(
                at=at,
                purpose="reminder",
                channel="telegram",
                window=window,
                caps=caps,
                is_collection=True,
                attempts=tuple(attempts),
            )
        )
        if decision.action != "suppress":
            attempts.append(local_day(decision.send_at, window.tz))
    for day in set(attempts):
        assert attempts.count(day) <= caps.per_day
        for span, limit in ((7, caps.per_7_days), (30, caps.per_30_days)):
            in_window = [d for d in attempts if day <= d < day + timedelta(days=span)]
            assert len(in_window) <= limit


@settings(max_examples=400, deadline=None)
@given(
    at=instants,
    window=windows(),
    paused=st.booleans(),
    promise_offset=st.one_of(st.none(), st.integers(min_value=-10, max_value=10)),
    channel=st.sampled_from(["telegram", "whatsapp"]),
)
def test_no_collection_reminder_while_a_promise_or_hardship_case_is_active(
    at: datetime, window: Window, paused: bool, promise_offset: int | None, channel: str
) -> None:
    today = local_day(at, window.tz)
    until = None if promise_offset is None else today + timedelta(days=promise_offset)
    decision = decide(
        Snapshot(
            at=at,
            purpose="reminder",
            channel=channel,
            window=window,
            is_collection=True,
            whatsapp_opted_in=True,
            loan_paused=paused,
            promise_pending_until=until,
        )
    )
    if paused:
        assert (decision.action, decision.rule) == ("suppress", Rule.hardship_case_open)
    elif until is not None and today <= until:
        assert (decision.action, decision.rule) == ("suppress", Rule.promise_pending)
    else:
        assert decision.action in {"send", "reschedule"}


@settings(max_examples=300, deadline=None)
@given(
    at=instants,
    window=windows(),
    purpose=st.sampled_from(["reminder", "incentive", "case_update"]),
    channel=st.sampled_from(["telegram", "whatsapp"]),
)
def test_an_opted_out_channel_gets_nothing_and_whatsapp_needs_opt_in(
    at: datetime, window: Window, purpose: str, channel: str
) -> None:
    opted_out = decide(
        Snapshot(at=at, purpose=purpose, channel=channel, window=window, opted_out=True)
    )
    assert (opted_out.action, opted_out.rule) == ("suppress", Rule.opted_out)
    no_opt_in = decide(Snapshot(at=at, purpose=purpose, channel="whatsapp", window=window))
    assert (no_opt_in.action, no_opt_in.rule) == ("suppress", Rule.whatsapp_no_opt_in)


def test_unverified_channel_gets_limited_content() -> None:
    window = Window("Africa/Nairobi", time(8), time(19), Calendar("KE"))
    at = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # Wednesday 10:00 in Nairobi
    decision = decide(
        Snapshot(
            at=at, purpose="reminder", channel="telegram", window=window, channel_verified=False
        )
    )
    assert (decision.action, decision.limited) == ("send", True)


def test_a_message_due_on_a_kenyan_public_holiday_moves_to_the_next_open_morning() -> None:
    window = Window("Africa/Nairobi", time(8), time(19), Calendar("KE"))
    # 12 December (Jamhuri Day) 2026 is a Saturday; 13 December is a Sunday.
    at = datetime(2026, 12, 12, 6, 0, tzinfo=UTC)
    decision = decide(Snapshot(at=at, purpose="reminder", channel="telegram", window=window))
    assert (decision.action, decision.rule) == ("reschedule", Rule.holiday)
    # Monday 08:02 EAT: the window's start and its clock-skew margin.
    assert decision.send_at == datetime(2026, 12, 14, 5, 2, tzinfo=UTC)


def test_the_window_is_judged_two_minutes_inside_its_edges_for_clock_skew() -> None:
    """Row F-13: a worker's clock may be 2 minutes off, so 08:00-19:00 allows 08:02-18:58 by
    the worker's clock; a message due at exactly 08:00 goes at 08:02."""
    window = Window("Africa/Nairobi", time(8), time(19), Calendar("ZZ"))
    assert window.margin == CLOCK_SKEW_MARGIN == timedelta(minutes=2)

    def local(hour: int, minute: int, second: int = 0) -> datetime:
        return datetime(2026, 12, 1, hour, minute, second, tzinfo=window.zone)  # a Tuesday

    assert not is_allowed(local(8, 0), window)
    assert not is_allowed(local(8, 1, 59), window)
    assert is_allowed(local(8, 2), window)
    assert is_allowed(local(18, 57, 59), window)
    assert not is_allowed(local(18, 58), window)
    assert next_allowed(local(8, 0), window) == local(8, 2)
    assert next_allowed(local(18, 58), window) == local(8, 2) + timedelta(days=1)
    assert window_closes(local(12, 0), window) == local(18, 58)
    decision = decide(
        Snapshot(at=local(8, 0), purpose="reminder", channel="telegram", window=window)
    )
    assert (decision.action, decision.rule, decision.send_at) == (
        "reschedule",
        Rule.quiet_hours,
        local(8, 2),
    )
    # Service messages (officer alerts, case updates) are not held by the window.
    service = decide(
        Snapshot(at=local(8, 0), purpose="case_update", channel="telegram", window=window)
    )
    assert (service.action, service.send_at) == ("send", local(8, 0))
    # Judged on a clock 2 minutes fast or slow, a send still leaves inside 08:00-19:00.
    exact = Window("Africa/Nairobi", time(8), time(19), Calendar("ZZ"), margin=timedelta(0))
    for skew in (-120, 120):
        for clock in (local(8, 2), local(18, 57, 59)):
            assert is_allowed(clock - timedelta(seconds=skew), exact)
