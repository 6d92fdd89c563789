"""The planner on a real database (SQLite and PostgreSQL): who gets which message when."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.borrowers.models import Channel, Consent
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage, OutboxStatus
from api.promises.models import PromiseStatus, PromiseToPay
from notifier.candidates import Candidate
from notifier.planner import Planner
from tests.notifier import notify_factory as f

# Tuesday 1 December 2026, 09:30 in Nairobi (UTC+3).
AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
TODAY = date(2026, 12, 1)


def _for(result: list[Candidate], loan_id: int) -> list[Candidate]:
    return [c for c in result if c.loan_id == loan_id]


def test_installment_steps_are_planned_in_the_borrowers_language_and_local_time(
    session: Session,
) -> None:
    br = f.branch(session)
    person = f.borrower(session, br, locale="sw")
    upcoming = f.loan(session, person, first_due=TODAY + timedelta(days=3))
    overdue = f.loan(session, f.borrower(session, br), first_due=TODAY - timedelta(days=7))
    quiet = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=5))

    result = Planner().plan(session, AT, write=True, loan_ids=[upcoming.id, overdue.id, quiet.id])

    [first] = _for(result.candidates, upcoming.id)
    assert (first.step, first.status, first.channel, first.locale) == (
        "installment-3",
        "planned",
        "telegram",
        "sw",
    )
    assert first.message_key == "notify.reminder.upcoming"
    assert first.as_json()["send_at"] == "2026-12-01T09:30:00+03:00"
    [late] = _for(result.candidates, overdue.id)
    assert (late.step, late.message_key) == ("installment+7", "notify.reminder.overdue_help")
    assert _for(result.candidates, quiet.id) == []
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.loan_id == upcoming.id))
    assert row is not None and row.status == OutboxStatus.pending
    assert row.args["amount"] == {"$money": ["1000.00", "KES"]}


def test_planning_twice_plans_nothing_new(session: Session) -> None:
    br = f.branch(session)
    loans = [
        f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=d)).id
        for d in (-1, 0, 1, 3)
    ]
    planner = Planner()
    first = planner.plan(session, AT, write=True, loan_ids=loans)
    rows = session.scalar(select(func.count()).select_from(OutboxMessage))
    events = session.scalar(select(func.count()).select_from(ContactEvent))
    again = planner.plan(session, AT + timedelta(hours=2), write=True, loan_ids=loans)

    assert first.inserted == 4
    assert again.inserted == 0
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == rows
    assert session.scalar(select(func.count()).select_from(ContactEvent)) == events


def test_late_planning_moves_the_message_to_the_next_open_morning(session: Session) -> None:
    # 11 December 2026, 20:00 in Nairobi; the 12th is Jamhuri Day and the 13th a Sunday.
    at = datetime(2026, 12, 11, 17, 0, tzinfo=UTC)
    br = f.branch(session)
    item = f.loan(session, f.borrower(session, br), first_due=date(2026, 12, 14))

    [cand] = Planner().plan(session, at, write=True, loan_ids=[item.id]).candidates

    assert (cand.step, cand.status, cand.reason) == ("installment-3", "planned", "quiet_hours")
    # 08:02: the window's start and its 2-minute clock-skew margin (row F-13).
    assert cand.as_json()["send_at"] == "2026-12-14T08:02:00+03:00"
    event = session.scalar(select(ContactEvent).where(ContactEvent.loan_id == item.id))
    assert event is not None
    assert (event.decision, event.rule) == ("rescheduled", "quiet_hours")


def test_hardship_and_pending_promise_hold_collection_reminders_back(session: Session) -> None:
    br = f.branch(session)
    paused = f.loan(session, f.borrower(session, br), first_due=TODAY)
    paused.collection_paused = True
    promised_person = f.borrower(session, br)
    promised = f.loan(session, promised_person, first_due=TODAY - timedelta(days=1))
    session.add(
        PromiseToPay(
            loan_id=promised.id,
            borrower_id=promised_person.id,
            amount=promised.principal,
            currency="KES",
            promised_date=TODAY,
            channel="telegram",
            status=PromiseStatus.pending,
        )
    )
    session.flush()

    result = Planner().plan(session, AT, write=True, loan_ids=[paused.id, promised.id])

    [held] = _for(result.candidates, paused.id)
    assert (held.status, held.reason) == ("suppressed", "hardship_case_open")
    by_step = {c.step: c for c in _for(result.candidates, promised.id)}
    assert (by_step["promise_due"].status, by_step["promise_due"].message_key) == (
        "planned",
        "notify.promise.today",
    )
    assert (by_step["installment+1"].status, by_step["installment+1"].reason) == (
        "suppressed",
        "promise_pending",
    )


def test_group_members_each_get_a_meeting_reminder_without_anyone_elses_debt(
    session: Session,
) -> None:
    br = f.branch(session)
    umoja = f.group(session, br, weekday=TODAY.weekday() + 1)  # meets tomorrow
    members = [f.borrower(session, br, group=umoja) for _ in range(3)]
    loans = [
        f.loan(session, m, first_due=TODAY + timedelta(days=20), amount=str(500 * (i + 1)))
        for i, m in enumerate(members)
    ]

    result = Planner().plan(session, AT, write=True, loan_ids=[item.id for item in loans])

    assert sorted(c.borrower_id for c in result.candidates) == sorted(m.id for m in members)
    for cand in result.candidates:
        assert (cand.step, cand.status) == ("group_meeting", "planned")
        assert set(cand.args) == {"group", "meeting_at", "place"}
        assert cand.recipient not in {
            c.recipient for c in result.candidates if c.borrower_id != cand.borrower_id
        }


def test_channel_choice_opt_in_and_limited_content(session: Session) -> None:
    br = f.branch(session)
    unverified = f.borrower(session, br, telegram=False, whatsapp_opt_in=True)
    silent = f.borrower(session, br, telegram=False)
    opted_out = f.borrower(session, br)
    session.add(
        Consent(
            borrower_id=opted_out.id,
            channel=Channel.telegram,
            opted_in=False,
            opted_out_at=AT - timedelta(days=1),
        )
    )
    session.flush()
    loans = {
        who: f.loan(session, person, first_due=TODAY).id
        for who, person in (("unverified", unverified), ("silent", silent), ("out", opted_out))
    }

    result = Planner().plan(session, AT, write=True, loan_ids=list(loans.values()))

    [wa] = _for(result.candidates, loans["unverified"])
    assert (wa.channel, wa.status, wa.limited, wa.reason) == (
        "whatsapp",
        "planned",
        True,
        "limited_content",
    )
    assert wa.recipient == unverified.phone_e164.lstrip("+")
    [none] = _for(result.candidates, loans["silent"])
    assert (none.status, none.reason) == ("suppressed", "no_channel")
    [out] = _for(result.candidates, loans["out"])
    assert (out.status, out.reason) == ("suppressed", "opted_out")


def test_on_time_streak_and_completion_are_recognised(session: Session) -> None:
    br = f.branch(session)
    # Three installments paid on time, the third one yesterday (a day before it was due).
    streak = f.loan(session, f.borrower(session, br), first_due=TODAY - timedelta(days=60), paid=3)
    done = f.loan(
        session, f.borrower(session, br), first_due=TODAY - timedelta(days=60), count=3, paid=3
    )
    done.status = "closed"  # type: ignore[assignment]
    late = f.loan(
        session,
        f.borrower(session, br),
        first_due=TODAY - timedelta(days=63),
        paid=3,
        paid_late=True,
    )
    session.flush()

    result = Planner().plan(session, AT, write=False, loan_ids=[streak.id, done.id, late.id])

    steps = {c.step: c for c in _for(result.candidates, streak.id)}
    assert steps["streak_3"].status == "planned"
    assert steps["streak_3"].args["count"] == 3
    # The early-repayment note (3 of 6 on time) loses the day's single slot to the streak.
    assert (steps["early_repayment"].status, steps["early_repayment"].reason) == (
        "suppressed",
        "cap_day",
    )
    [cycle] = _for(result.candidates, done.id)
    assert (cycle.step, cycle.status) == ("next_cycle", "planned")
    assert [c.step for c in _for(result.candidates, late.id)] == []
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0  # dry run


ZONES = ["Africa/Nairobi", "America/New_York", "Europe/Paris", "Asia/Manila", "Pacific/Chatham"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    zone=st.sampled_from(ZONES),
    country=st.sampled_from(["KE", "US", "FR", "PH", "NZ"]),
    at=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    offsets=st.lists(st.integers(min_value=-35, max_value=5), min_size=1, max_size=6),
    closed=st.lists(st.integers(min_value=-2, max_value=3), max_size=3),
)
def test_planned_campaigns_fall_inside_the_local_window_and_never_on_a_closed_day(
    session: Session,
    zone: str,
    country: str,
    at: datetime,
    offsets: list[int],
    closed: list[int],
) -> None:
    from zoneinfo import ZoneInfo

    from notifier.rules import Calendar, Window, is_allowed

    today = at.astimezone(ZoneInfo(zone)).date()
    extra = sorted({(today + timedelta(days=d)).isoformat() for d in closed})
    savepoint = session.begin_nested()
    try:
        br = f.branch(session, country=country, timezone=zone, extra_holidays=extra)
        person = f.borrower(session, br)
        loans = [
            f.loan(session, person, first_due=today + timedelta(days=-o), count=2).id
            for o in offsets
        ]
        result = Planner().plan(session, at, write=True, loan_ids=loans)
    finally:
        savepoint.rollback()
    window = Window(
        zone,
        time(8),
        time(19),
        Calendar(country, frozenset({6}), frozenset(date.fromisoformat(d) for d in extra)),
    )
    planned = [c for c in result.candidates if c.status == "planned"]
    for cand in planned:
        assert is_allowed(cand.send_at, window), cand.as_json()
        assert cand.send_at >= at
    # Caps per loan: each loan has two installments, whose steps may both fall today.
    per_loan: dict[int, list[date]] = {}
    for cand in planned:
        per_loan.setdefault(cand.loan_id, []).append(cand.send_at.astimezone(ZoneInfo(zone)).date())
    for days in per_loan.values():
        assert all(days.count(d) <= 1 for d in days)
