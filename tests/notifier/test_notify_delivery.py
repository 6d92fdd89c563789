"""Delivery through the real gateways to the fake providers, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from api.borrowers.models import Channel, Consent
from api.branches.models import Officer, StaffRole
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage, OutboxStatus
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.fakes.common import Fault, FaultSpec
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp
from i18n import day, money, render
from notifier.config import load_campaigns
from notifier.delivery import Deliverer, deliver_due
from notifier.planner import Planner
from notifier.ratelimit import Limits, LocalRateLimiter
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound
from tests.notifier.delivery_setup import AT, TODAY, outbox_rows, plan_reminders

FAST = {"telegram": Limits(1000, 1000), "whatsapp": Limits(1000, 1000)}


def _sent_to(fake: FakeTelegram, chat: str) -> list[dict[str, object]]:
    return [e for e in fake.state.query("sendMessage", chat) if e["outcome"] == "ok"]


async def test_a_campaign_is_delivered_once_with_the_opt_out_line_in_the_borrowers_language(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    br = f.branch(bound.session)
    people = [f.borrower(bound.session, br, locale=lang) for lang in ("en", "fr", "es", "sw")]
    for person in people:
        f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()

    stats = await deliver_due(
        session_factory=bound.factory,
        gateways={"telegram": telegram},
        now=AT,
        worker_id="w1",
        limiter=LocalRateLimiter(FAST),
    )
    again = await deliver_due(
        session_factory=bound.factory, gateways={"telegram": telegram}, now=AT, worker_id="w1"
    )

    assert (stats.claimed, stats.sent, again.claimed) == (4, 4, 0)
    fake = fake_tg[0]
    for row, person in zip(outbox_rows(bound), people, strict=True):
        [entry] = _sent_to(fake, row.recipient)
        text = str(entry["payload"]["text"])  # type: ignore[index]
        assert text.endswith(render("common.opt_out_line", person.preferred_language))
        expected = render(
            "notify.reminder.upcoming",
            person.preferred_language,
            amount=money("1000.00", "KES"),
            account=row.args["account"],
            due_date=day(TODAY + timedelta(days=3)),
        )
        assert text.startswith(expected)
        assert (row.status, row.provider_message_id) == (
            OutboxStatus.sent,
            str(entry["message_id"]),
        )
    sent_events = bound.session.scalars(
        select(ContactEvent).where(ContactEvent.decision == "sent")
    ).all()
    assert {e.rule for e in sent_events} == {"campaign"}


async def test_a_blocked_chat_becomes_an_opt_out_and_is_never_retried(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    fake, _ = fake_tg
    br = f.branch(bound.session)
    person = f.borrower(bound.session, br)
    first = f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    second = f.loan(bound.session, person, first_due=TODAY + timedelta(days=4))
    Planner().plan(bound.session, AT, write=True, loan_ids=[first.id])
    bound.session.commit()
    chat = outbox_rows(bound)[0].recipient
    fake.state.faults.append(Fault(FaultSpec(kind="blocked", recipient=chat)))

    blocked = await deliver_due(
        session_factory=bound.factory, gateways={"telegram": telegram}, now=AT, worker_id="w"
    )
    # The next day's reminder of the other loan is suppressed without reaching the provider.
    tomorrow = AT + timedelta(days=1)
    Planner().plan(bound.session, tomorrow, write=True, loan_ids=[second.id])
    bound.session.commit()
    later = await deliver_due(
        session_factory=bound.factory, gateways={"telegram": telegram}, now=tomorrow, worker_id="w"
    )

    assert (blocked.failed, later.sent) == (1, 0)
    assert len(fake.state.query("sendMessage", chat)) == 1
    statuses = [(r.loan_id, r.status, r.last_error) for r in outbox_rows(bound)]
    assert statuses[0][1] == OutboxStatus.failed
    assert statuses[1][1] == OutboxStatus.suppressed and statuses[1][2] == "opted_out"
    consent = bound.session.scalar(
        select(Consent).where(Consent.borrower_id == person.id, Consent.channel == Channel.telegram)
    )
    assert consent is not None and consent.opted_out_at is not None and not consent.opted_in


async def test_an_unknown_outcome_is_never_resent_and_counts_against_the_caps(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    fake, _ = fake_tg
    br = f.branch(bound.session)
    person = f.borrower(bound.session, br)
    item = f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()
    chat = outbox_rows(bound)[0].recipient
    fake.state.faults.append(Fault(FaultSpec(kind="timeout", recipient=chat, times=1, delay=1.6)))

    first = await deliver_due(
        session_factory=bound.factory, gateways={"telegram": telegram}, now=AT, worker_id="w"
    )
    later = [
        await deliver_due(
            session_factory=bound.factory,
            gateways={"telegram": telegram},
            now=AT + timedelta(minutes=m),
            worker_id="w",
        )
        for m in (1, 60)
    ]
    # Two days later the -1 step is due; under a policy of one message a week, the unknown
    # attempt fills the week.
    config = load_campaigns().model_copy(deep=True)
    config.defaults.caps.per_7_days = 1
    replan = Planner(config).plan(
        bound.session, AT + timedelta(days=2), write=False, loan_ids=[item.id]
    )

    assert first.unknown == 1
    assert sum(s.claimed for s in later) == 0
    assert len(fake.state.query("sendMessage", chat)) == 1
    [row] = outbox_rows(bound)
    assert row.status == OutboxStatus.unknown
    [step] = replan.candidates
    assert (step.step, step.status, step.reason) == ("installment-1", "suppressed", "cap_7d")


async def test_an_opt_out_committed_mid_campaign_stops_every_later_send(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    br = f.branch(bound.session)
    person = f.borrower(bound.session, br)
    for days in (3, 4, 5, 6, 7):
        f.loan(bound.session, person, first_due=TODAY + timedelta(days=days))
    # -3 for the first loan, -1 steps are not due: plan a day where every loan has a step.
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()
    planned = [r for r in outbox_rows(bound) if r.status == OutboxStatus.pending]

    first = await deliver_due(
        session_factory=bound.factory,
        gateways={"telegram": telegram},
        now=AT,
        worker_id="w",
        limit=1,
    )
    bound.session.add(
        Consent(
            borrower_id=person.id,
            channel=Channel.telegram,
            opted_in=False,
            opted_out_at=AT + timedelta(seconds=1),
            source="chat",
        )
    )
    bound.session.commit()
    rest = await deliver_due(
        session_factory=bound.factory,
        gateways={"telegram": telegram},
        now=AT + timedelta(seconds=2),
        worker_id="w",
    )

    assert len(planned) >= 1 and first.sent == 1
    assert rest.sent == 0
    assert len(_sent_to(fake_tg[0], planned[0].recipient)) == 1
    assert all(
        r.status == OutboxStatus.suppressed and r.last_error == "opted_out"
        for r in outbox_rows(bound)
        if r.status not in (OutboxStatus.sent,)
        and r.id != planned[0].id
        and r.last_error not in ("cap_day", "cap_7d")
    )


async def test_server_errors_back_off_then_go_dead_and_alert_the_officer(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    fake, _ = fake_tg
    br = f.branch(bound.session)
    officer = Officer(
        branch_id=br.id,
        name="Officer Wanjiru",
        role=StaffRole.officer,
        channel="telegram",
        chat_id="555000111",
        locale="sw",
    )
    bound.session.add(officer)
    bound.session.flush()
    person = f.borrower(bound.session, br)
    person.officer_id = officer.id
    f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()
    chat = outbox_rows(bound)[0].recipient
    fake.state.faults.append(Fault(FaultSpec(kind="server_error", recipient=chat)))

    when = AT
    retry_gaps: list[float] = []
    for _ in range(5):
        stats = await deliver_due(
            session_factory=bound.factory, gateways={"telegram": telegram}, now=when, worker_id="w"
        )
        [row, *_] = outbox_rows(bound)
        if row.status == OutboxStatus.retry:
            retry_gaps.append((row.send_at - when).total_seconds())
            when = row.send_at
    alert = await deliver_due(
        session_factory=bound.factory, gateways={"telegram": telegram}, now=when, worker_id="w"
    )

    rows = outbox_rows(bound)
    assert (rows[0].status, rows[0].attempts) == (OutboxStatus.dead, 5)
    assert len(fake.state.query("sendMessage", chat)) == 5
    assert len(retry_gaps) == 4
    ceilings = [5, 10, 20, 40]
    assert all(0 <= gap <= ceiling for gap, ceiling in zip(retry_gaps, ceilings, strict=True))
    assert stats.dead == 1 and alert.sent == 1
    [text] = fake.sent_texts("555000111")
    account = rows[0].args["account"]
    assert text == render("notify.officer.dead_letter", "sw", account=account, attempts=5)


async def test_a_429_pauses_the_channel_for_retry_after(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    fake, _ = fake_tg
    plan_reminders(bound, 3)
    fake.state.faults.append(
        Fault(FaultSpec(**{"kind": "rate_limit", "times": 1, "retry_after": 12}))
    )
    # Slots 50 ms apart: the 429 is back before the next booked slot comes, and every send
    # still booked is held back (requests already in flight could not be).
    limiter = LocalRateLimiter({"telegram": Limits(20, 20)})
    deliverer = Deliverer(
        session_factory=bound.factory,
        gateways={"telegram": telegram},
        worker_id="w",
        limiter=limiter,
    )

    stats = await deliverer.run_once(now=AT)

    # One 429; the pause (12 s + slack) is longer than a third of the lease, so instead of
    # holding their claims the other rows go back to the queue until it has passed.
    assert (stats.rate_limited, stats.sent, stats.deferred) == (1, 0, 2)
    assert len(fake.state.query("sendMessage", None)) == 1
    assert await limiter.try_acquire("telegram", "anyone") > 11.5
    for row in outbox_rows(bound):
        assert row.status in (OutboxStatus.retry, OutboxStatus.pending)
        assert row.send_at >= AT + timedelta(seconds=11.5)


async def test_warming_up_claims_nothing_and_the_campaign_still_goes_once(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    fake, _ = fake_tg
    plan_reminders(bound, 3)
    deliverer = Deliverer(
        session_factory=bound.factory, gateways={"telegram": telegram}, worker_id="w"
    )

    await deliverer.warm_up(connections=3)
    assert {row.status for row in outbox_rows(bound)} == {OutboxStatus.pending}
    stats = await deliverer.run_once(now=AT)

    assert (stats.claimed, stats.sent) == (3, 3)
    assert len(fake.state.query("sendMessage", None)) == 3


async def test_whatsapp_outside_the_window_sends_the_approved_template(
    bound: Bound, fake_wa: tuple[FakeWhatsApp, ServerThread], whatsapp: WhatsAppGateway
) -> None:
    fake, _ = fake_wa
    br = f.branch(bound.session)
    cold = f.borrower(
        bound.session, br, telegram=False, whatsapp=True, whatsapp_opt_in=True, locale="sw"
    )
    warm = f.borrower(bound.session, br, telegram=False, whatsapp=True, whatsapp_opt_in=True)
    for person in (cold, warm):
        f.loan(bound.session, person, first_due=TODAY + timedelta(days=3))
    bound.session.add(
        ContactEvent(
            at=AT - timedelta(hours=2),
            borrower_id=warm.id,
            channel="whatsapp",
            direction="inbound",
            kind="chat",
            decision="received",
            detail={},
        )
    )
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()

    stats = await deliver_due(
        session_factory=bound.factory, gateways={"whatsapp": whatsapp}, now=AT, worker_id="w"
    )

    assert stats.sent == 2
    payloads = {e["recipient"]: e["payload"] for e in fake.state.sent if e["outcome"] == "ok"}
    template = payloads[cold.phone_e164.lstrip("+")]
    assert template["type"] == "template"
    assert template["template"]["name"] == "kopa_reminder_upcoming_v1"
    assert template["template"]["language"]["code"] == "sw"
    assert payloads[warm.phone_e164.lstrip("+")]["type"] == "text"


async def test_officer_alerts_and_case_updates_go_out_with_buttons_and_respect_opt_out(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    from api.outbox import service as outbox

    fake, _ = fake_tg
    br = f.branch(bound.session)
    person = f.borrower(bound.session, br, locale="sw")
    silenced = f.borrower(bound.session, br)
    bound.session.add(
        Consent(
            borrower_id=silenced.id,
            channel=Channel.telegram,
            opted_in=False,
            opted_out_at=AT - timedelta(days=1),
        )
    )
    officer = Officer(
        branch_id=br.id,
        name="Officer Amina",
        role=StaffRole.officer,
        channel="telegram",
        chat_id="555000222",
        locale="fr",
    )
    bound.session.add(officer)
    bound.session.flush()
    buttons = [{"key": "cases.button.acknowledge", "payload": "case:ack:K-1"}]
    outbox.enqueue(
        session=bound.session,
        business_key="test:alert",
        purpose="officer_alert",
        channel="telegram",
        recipient="555000222",
        locale="fr",
        message_key="cases.button.called",
        buttons=buttons,
        borrower_id=silenced.id,  # the alert is about a borrower who opted out: still goes
        officer_id=officer.id,
        send_at=AT,
    )
    update_args = {"reference": "K-1", "officer_name": "Amina"}
    for who, key in ((person, "test:update"), (silenced, "test:update-silenced")):
        outbox.enqueue(
            session=bound.session,
            business_key=key,
            purpose="case_update",
            channel="telegram",
            recipient=str(700000000 + who.id),  # not necessarily the factory's chat id
            locale=who.preferred_language,
            message_key="cases.update.acknowledged",
            args=update_args,
            borrower_id=who.id,
            send_at=AT,
        )
    bound.session.commit()

    stats = await deliver_due(
        session_factory=bound.factory, gateways={"telegram": telegram}, now=AT, worker_id="w"
    )

    assert (stats.sent, stats.suppressed) == (2, 1)
    [alert] = [e for e in fake.state.query("sendMessage", "555000222") if e["outcome"] == "ok"]
    assert alert["payload"]["text"] == render("cases.button.called", "fr")
    markup = alert["payload"]["reply_markup"]
    assert markup["inline_keyboard"][0][0] == {
        "text": render("cases.button.acknowledge", "fr"),
        "callback_data": "case:ack:K-1",
    }
    texts = [
        e["payload"]["text"]
        for e in fake.state.query("sendMessage", None)
        if e["outcome"] == "ok" and e["recipient"] != "555000222"
    ]
    # Service messages are not campaigns: no opt-out line appended, no caps.
    assert texts == [render("cases.update.acknowledged", "sw", **update_args)]
    silenced_row = bound.session.scalar(
        select(OutboxMessage).where(OutboxMessage.business_key == "test:update-silenced")
    )
    assert silenced_row is not None and silenced_row.last_error == "opted_out"
