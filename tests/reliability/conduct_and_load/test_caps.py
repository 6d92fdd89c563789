"""K-2: the caps per loan hold under reminder storms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.outbox.models import OutboxMessage, OutboxStatus
from bot.fakes.common import Fault, FaultSpec
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound
from tests.reliability.conduct_and_load.pipeline import (
    AT,
    GatewayLoop,
    chat_of,
    outbox_row,
    rows_where,
)
from tests.reliability.conduct_and_load.send_windows import ZONES

CAPS = ((1, 1), (7, 3), (30, 10))  # (days, most attempts) per loan: 1/day, 3/7 days, 10/30 days


def _cap_breaches(days: Sequence[date], new: Sequence[date]) -> list[str]:
    """Windows of 1, 7 and 30 days holding one of ``new`` and more attempts than the cap."""
    breaches = []
    for d in new:
        for span, most in CAPS:
            for first in (d - timedelta(days=k) for k in range(span)):
                count = sum(1 for x in days if first <= x < first + timedelta(days=span))
                if count > most:
                    breaches.append(f"{count} attempts in the {span} days from {first}")
    return sorted(set(breaches))


@pytest.mark.postgres
def test_K2_caps_per_loan_hold_under_reminder_storms_counting_unknown_outcomes(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], gateway_loop: GatewayLoop
) -> None:
    """K-2 through the deliverer on PostgreSQL, the fake Bot API answering.

    Storms: two loans of one borrower, each with a random history of the last 30 days (sent,
    unknown outcome, failed, suppressed) and 5..40 campaign messages (reminders, incentives)
    due at random instants over 40 days, with the borrower's own requests answered in between
    (case updates). Half of the storms start with a send that times out after reaching the
    provider (an ``unknown`` outcome). Delivered in simulated time until nothing is left.

    Per loan, counting sent and unknown outcomes of the history and of the storm: <= 1 a local
    day, <= 3 in any 7 days, <= 10 in any 30. Replies to the borrower are exempt: never held
    back by a cap, and never counted (a scripted day checks that a reminder still goes after
    three replies). 8 storms (about 12 s)."""
    fake = fake_tg[0]
    session = bound.session

    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        tz=st.sampled_from(ZONES),
        start=st.datetimes(
            min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1), timezones=st.just(UTC)
        ),
        history=st.lists(
            st.tuples(
                st.integers(0, 1),
                st.integers(60, 30 * 86_400),
                st.sampled_from(["sent", "unknown", "failed", "suppressed"]),
            ),
            max_size=12,
        ),
        storm=st.lists(
            st.tuples(
                st.integers(0, 1),
                st.integers(0, 40 * 86_400),
                st.sampled_from(["reminder", "incentive"]),
            ),
            min_size=5,
            max_size=40,
        ),
        replies=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 40 * 86_400)), max_size=6),
        first_times_out=st.booleans(),
    )
    def storms(
        tz: str,
        start: datetime,
        history: list[tuple[int, int, str]],
        storm: list[tuple[int, int, str]],
        replies: list[tuple[int, int]],
        first_times_out: bool,
    ) -> None:
        zone = ZoneInfo(tz)
        savepoint = session.begin_nested()
        try:
            br = f.branch(session, country="ZZ", timezone=tz)
            person = f.borrower(session, br)
            loans = [f.loan(session, person, first_due=date(2029, 1, 1), count=1) for _ in range(2)]
            chat = chat_of(session, person.id)
            loan_ids, person_id = [loan.id for loan in loans], person.id
            n = 0
            for index, before, status in history:
                n += 1
                session.add(
                    outbox_row(
                        person,
                        loans[index],
                        chat,
                        f"k2:{chat}:{n}",
                        purpose="reminder",
                        send_at=start - timedelta(seconds=before),
                        status=OutboxStatus(status),
                    )
                )
            for index, after, purpose in storm:
                n += 1
                session.add(
                    outbox_row(
                        person,
                        loans[index],
                        chat,
                        f"k2:{chat}:{n}",
                        purpose=purpose,
                        send_at=start + timedelta(seconds=after),
                    )
                )
            for index, after in replies:
                n += 1
                session.add(
                    outbox_row(
                        person,
                        loans[index],
                        chat,
                        f"k2:{chat}:{n}",
                        purpose="case_update",
                        send_at=start + timedelta(seconds=after),
                    )
                )
            session.flush()
            history_ids = {
                r.id
                for r in rows_where(
                    session,
                    OutboxMessage.status != OutboxStatus.pending,
                    OutboxMessage.borrower_id == person_id,
                )
            }
            if first_times_out:
                fake.state.faults.append(
                    Fault(FaultSpec(kind="timeout", recipient=chat, times=1, delay=0.6))
                )

            gateway_loop.settle(bound.factory, session, start, until=start + timedelta(days=80))
            rows = rows_where(session, OutboxMessage.borrower_id == person_id)
            session.expunge_all()
        finally:
            fake.state.faults.clear()
            savepoint.rollback()

        for loan_id in loan_ids:
            attempts = [
                r
                for r in rows
                if r.loan_id == loan_id
                and r.purpose in {"reminder", "incentive"}
                and r.status in (OutboxStatus.sent, OutboxStatus.unknown)
            ]
            days = [(r.sent_at or r.send_at).astimezone(zone).date() for r in attempts]
            new = [
                (r.sent_at or r.send_at).astimezone(zone).date()
                for r in attempts
                if r.id not in history_ids
            ]
            assert _cap_breaches(days, new) == []
        for reply in (r for r in rows if r.purpose == "case_update"):
            assert reply.status in (OutboxStatus.sent, OutboxStatus.unknown), reply.last_error
        if first_times_out:
            went = [
                r for r in rows if r.id not in history_ids and r.status != OutboxStatus.suppressed
            ]
            first = min(went, key=lambda r: (r.sent_at or r.send_at, r.id), default=None)
            if first is not None and first.status != OutboxStatus.sent:
                assert first.status == OutboxStatus.unknown  # never resent
                assert len(fake.state.query("sendMessage", chat)) == sum(
                    1
                    for r in rows
                    if r.id not in history_ids
                    and r.status in (OutboxStatus.sent, OutboxStatus.unknown)
                )

    storms()

    # Replies to the borrower neither wait for the caps nor count against them.
    br = f.branch(session)  # Nairobi: Tuesday 1 December 2026, 09:30
    person = f.borrower(session, br)
    loan = f.loan(session, person, first_due=date(2029, 1, 1), count=1)
    chat = chat_of(session, person.id)
    tomorrow = AT + timedelta(days=1)
    script = [
        ("reminder", AT),
        ("case_update", AT + timedelta(hours=1)),  # the day's cap is spent: a reply still goes
        *[("case_update", tomorrow + timedelta(minutes=m)) for m in (0, 10, 20)],
        ("reminder", tomorrow + timedelta(hours=1)),  # three replies before it: it still goes
    ]
    for n, (purpose, when) in enumerate(script):
        session.add(outbox_row(person, loan, chat, f"k2:script:{n}", purpose=purpose, send_at=when))
    session.commit()

    gateway_loop.settle(bound.factory, session, AT, until=AT + timedelta(days=3))
    outcome = [(r.purpose, r.status) for r in rows_where(session, OutboxMessage.loan_id == loan.id)]
    assert outcome == [(purpose, OutboxStatus.sent) for purpose, _ in script]
