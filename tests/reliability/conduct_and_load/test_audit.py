"""K-6: every decision of the planner and the deliverer is in the contact ledger."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select

from api.ledger.models import ContactEvent
from bot.channels.telegram import TelegramGateway
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from notifier.planner import Planner
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound
from tests.reliability.conduct_and_load.pipeline import (
    AT,
    TODAY,
    chat_of,
    fast_deliverer,
    nairobi_at,
    outbox_row,
    rows_where,
    settle_delivery,
)

AUDITED = {"planned", "sent", "suppressed", "rescheduled"}


async def test_K6_every_send_suppress_and_reschedule_is_audited_with_rule_local_time_counts_and_template_version(  # noqa: E501
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """K-6 on PostgreSQL: a Nairobi campaign whose messages meet every kind of decision, at
    planning and again at send time: planned and sent; planned after hours and rescheduled;
    suppressed by a cap while planning; opted out, paused by hardship and capped after planning
    (suppressed by the deliverer); come due after hours (rescheduled by the deliverer).

    100 % of the decisions are in the contact ledger, each with the rule that decided
    (``rule``), the borrower's local time of the send (``detail.local_send_at``, in the branch's
    UTC offset), the counts in the cap windows (``detail.counts``: ``day``, ``7d``, ``30d``) and
    the version of the message template used (``detail.template_version``)."""
    from api.borrowers.models import Channel, Consent

    session = bound.session
    br = f.branch(session)
    plain = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=3))
    evening = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=1))
    # Three installments paid on time, the last yesterday: a streak note and an early-repayment
    # note fall on the same day, and the day's cap suppresses the second.
    streak = f.loan(session, f.borrower(session, br), first_due=TODAY - timedelta(days=60), paid=3)
    leaving = f.borrower(session, br)
    opted_out = f.loan(session, leaving, first_due=TODAY + timedelta(days=3))
    paused = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=3))
    late = f.loan(session, f.borrower(session, br), first_due=TODAY + timedelta(days=3))
    session.commit()

    planner = Planner()
    # Monday 30 November, 20:00 in Nairobi: after hours, moved to Tuesday 08:00.
    planner.plan(
        session, nairobi_at(TODAY - timedelta(days=1), 20), write=True, loan_ids=[evening.id]
    )
    planner.plan(session, AT, write=True, loan_ids=[plain.id, streak.id, opted_out.id, paused.id])
    # After planning: the borrower opts out, a hardship case pauses collection, and one more
    # campaign message of the first loan comes due the same day (over the day's cap).
    session.add(
        Consent(borrower_id=leaving.id, channel=Channel.telegram, opted_in=False, opted_out_at=AT)
    )
    paused.collection_paused = True
    chat = chat_of(session, plain.borrower_id)
    session.add(
        outbox_row(
            session.get_one(type(leaving), plain.borrower_id),
            plain,
            chat,
            "k6:extra",
            purpose="incentive",
            send_at=AT + timedelta(minutes=5),
        )
    )
    session.commit()
    deliverer = fast_deliverer(bound.factory, {"telegram": telegram})
    try:
        await settle_delivery(deliverer, session, AT, until=AT + timedelta(hours=1))
        # Planned for 09:30 but the worker only gets to it at 19:30: moved to Wednesday 08:00.
        planner.plan(session, AT, write=True, loan_ids=[late.id])
        session.commit()
        await settle_delivery(
            deliverer, session, nairobi_at(TODAY, 19, 30), until=nairobi_at(TODAY, 19, 31)
        )
    finally:
        deliverer.close()

    rows = rows_where(session)
    events = [
        e
        for e in session.scalars(select(ContactEvent).order_by(ContactEvent.id))
        if e.direction == "outbound" and e.kind in {"reminder", "incentive"}
    ]
    decisions = Counter((e.decision, e.rule) for e in events if e.decision in AUDITED)
    # Every kind of decision happened (the test covers what it claims).
    for expected in [
        ("planned", "campaign"),
        ("sent", "campaign"),
        ("rescheduled", "quiet_hours"),
        ("suppressed", "cap_day"),
        ("suppressed", "opted_out"),
        ("suppressed", "hardship_case_open"),
    ]:
        assert decisions[expected] >= 1, f"no {expected} decision: {decisions}"
    assert any(
        e.decision == "rescheduled" and e.detail.get("outbox_id") is not None for e in events
    ), "the deliverer rescheduled nothing"
    # 100 % of the decisions are logged: every outbox row has its events.
    for row in rows:
        mine = [
            e
            for e in events
            if e.detail.get("outbox_id") == row.id
            or e.detail.get("business_key") == row.business_key
        ]
        assert mine, f"no ledger event for {row.business_key} ({row.status})"

    missing: Counter[str] = Counter()
    for e in events:
        if e.decision not in AUDITED:
            continue
        who = (
            f"{e.decision}/{e.rule} by the {'deliverer' if 'outbox_id' in e.detail else 'planner'}"
        )
        if not e.rule:
            missing[f"{who}: rule"] += 1
        local = e.detail.get("local_send_at")
        if not local or datetime.fromisoformat(local).utcoffset() != timedelta(hours=3):
            missing[f"{who}: local_send_at"] += 1
        counts = e.detail.get("counts")
        if not isinstance(counts, dict) or not {"day", "7d", "30d"} <= counts.keys():
            missing[f"{who}: counts"] += 1
        if e.detail.get("template_version") is None:
            missing[f"{who}: template_version"] += 1
    assert not missing, "ledger events without:\n" + "\n".join(
        f"{n} x {what}" for what, n in sorted(missing.items())
    )
