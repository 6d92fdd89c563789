"""K-1 and F-13: no message leaves outside the borrower's local send window."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage, OutboxStatus
from notifier.config import Policy
from notifier.planner import Planner
from notifier.rules import Snapshot, decide
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound
from tests.reliability.conduct_and_load.pipeline import GatewayLoop, rows_where
from tests.reliability.conduct_and_load.send_windows import (
    Oracle,
    instants_in,
    policies,
    skewed_cases,
    window_of,
)


@settings(max_examples=10_000, deadline=None, derandomize=True)
@given(case=skewed_cases())
def test_F13_no_send_outside_the_borrower_local_window_across_dst_zones_and_clock_skew(
    case: tuple[Policy, str, str, list[str], datetime, int, str],
) -> None:
    """F-13, 10 000 random instants (half within a day of a DST change of their zone) in 20 zones
    and 17 holiday calendars, each judged by the rules the planner and the deliverer use
    (``notifier.rules.decide``) on a worker whose clock is off by up to +/-2 minutes.

    A "send" leaves at the true instant; a "reschedule" leaves when the worker's clock reads the
    new time. Either must fall inside the borrower's local window on an open day by the true
    clock, checked by an oracle that reads the zone and the ``holidays`` calendar itself. The
    first assertion holds the rules to it on an exact clock, the second on a skewed one."""
    policy, tz, country, extra, true_at, skew, purpose = case
    oracle = Oracle(policy, tz, country, extra)
    window = window_of(policy, tz, country, extra)

    exact = decide(Snapshot(at=true_at, purpose=purpose, channel="telegram", window=window))
    assert exact.action in {"send", "reschedule"}, "a late message was dropped"
    assert oracle.allows(exact.send_at), (
        f"exact clock: leaves at {exact.send_at.astimezone(oracle.zone)}"
    )

    worker_clock = true_at + timedelta(seconds=skew)
    judged = decide(Snapshot(at=worker_clock, purpose=purpose, channel="telegram", window=window))
    leaves = true_at if judged.action == "send" else judged.send_at - timedelta(seconds=skew)
    assert oracle.allows(leaves), (
        f"clock skew {skew:+d} s: {judged.action} leaves at {leaves.astimezone(oracle.zone)} "
        f"local (window {policy.quiet_hours.start}-{policy.quiet_hours.end})"
    )


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
@pytest.mark.postgres
def test_K1_planned_and_delivered_campaigns_never_leave_outside_the_window_or_on_a_holiday(
    bound: Bound, gateway_loop: GatewayLoop, data: st.DataObject
) -> None:
    """K-1 through the whole pipeline on PostgreSQL: random schedules (loans with installments
    due -35..+5 days around a random planning instant, half of them within a day of a DST
    change), random zones and holiday calendars (the country's public holidays and up to three
    branch closed days), planned by the planner and delivered by the deliverer through the real
    Telegram gateway to the fake Bot API, in simulated time until nothing is left to send.

    0 sends outside the local window or on a closed day (an independent oracle), and no late
    message dropped: every message judged outside the window was rescheduled and later sent,
    or gave way to a cap. 20 examples (about 10 s)."""
    policy, tz, country = data.draw(policies(vary=False))
    at = data.draw(instants_in(tz))
    local_today = at.astimezone(ZoneInfo(tz)).date()
    extra = sorted(
        {
            (local_today + timedelta(days=d)).isoformat()
            for d in data.draw(st.lists(st.integers(-2, 6), max_size=3))
        }
    )
    offsets = data.draw(st.lists(st.integers(-35, 5), min_size=1, max_size=4))
    oracle = Oracle(policy, tz, country, extra)

    session = bound.session
    savepoint = session.begin_nested()
    try:
        br = f.branch(session, country=country, timezone=tz, extra_holidays=extra)
        people = [f.borrower(session, br) for _ in offsets]
        loans = [
            f.loan(
                session, person, first_due=local_today - timedelta(days=o), count=2, every_days=7
            )
            for person, o in zip(people, offsets, strict=True)
        ]
        Planner().plan(session, at, write=True, loan_ids=[item.id for item in loans])
        session.flush()

        gateway_loop.settle(bound.factory, session, at, until=at + timedelta(days=60))
        rows = rows_where(session, OutboxMessage.loan_id.in_([item.id for item in loans]))
        events = session.scalars(
            select(ContactEvent).where(ContactEvent.loan_id.in_([item.id for item in loans]))
        ).all()
    finally:
        savepoint.rollback()

    for row in rows:
        if row.status == OutboxStatus.sent:
            assert row.sent_at is not None
            assert oracle.allows(row.sent_at), (
                f"{row.step} sent at {row.sent_at.astimezone(oracle.zone)} local ({country})"
            )
        else:
            assert row.status == OutboxStatus.suppressed, f"{row.step} left {row.status}"
            assert row.last_error not in {"quiet_hours", "holiday"}, "a late message was dropped"
    sent_events = [e for e in events if e.decision == "sent"]
    assert all(oracle.allows(e.at) for e in sent_events)
    assert len(sent_events) == sum(1 for r in rows if r.status == OutboxStatus.sent)
