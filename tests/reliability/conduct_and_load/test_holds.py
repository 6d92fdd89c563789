"""K-4: promises and hardship cases hold collection reminders back."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select

from api.cases import officers
from api.cases import service as cases
from api.cases.models import Case, CaseKind, CaseOutcome
from api.loans.models import Loan
from api.outbox.models import OutboxMessage, OutboxStatus
from api.promises import service as promises
from bot.channels.telegram import TelegramGateway
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from notifier.planner import Planner
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound
from tests.reliability.conduct_and_load.pipeline import (
    NAIROBI,
    TODAY,
    add_officer,
    fast_deliverer,
    nairobi_at,
    rows_where,
    settle_delivery,
)


async def test_K4_no_collection_reminder_while_a_promise_or_a_hardship_case_holds_it(
    bound: Bound, fake_tg: tuple[FakeTelegram, ServerThread], telegram: TelegramGateway
) -> None:
    """K-4 over 15 days of a Nairobi branch on PostgreSQL, planned every morning at 07:00 and
    delivered through the real Telegram gateway until the evening, with both holds recorded by
    the loan API's own services at 08:00 on the first day, after that day's reminders were
    planned (so the deliverer must stop them at send time):

    - a promise to pay on Saturday 5 December: 0 collection reminders until its date + the
      2 grace days (Monday 7 December) — the promise's own reminder on its day excepted, which
      thanks the borrower for their plan — then collection resumes;
    - a hardship case, resolved by its officer on day 10 at 10:00: 0 collection reminders
      while it is open, then collection resumes."""
    session = bound.session
    br = f.branch(session)
    officer = add_officer(session, br.id, "9000001")
    promised_person, hardship_person = f.borrower(session, br), f.borrower(session, br)
    hardship_person.officer_id = officer.id
    # Installment 1 fell due on 30 November: steps +1, +3, +7, +14 on 1, 3, 7 and 14 December.
    promised_loan = f.loan(session, promised_person, first_due=TODAY - timedelta(days=1), count=3)
    hardship_loan = f.loan(session, hardship_person, first_due=TODAY - timedelta(days=1), count=3)
    session.commit()
    promised_until = date(2026, 12, 5) + timedelta(days=2)
    deliverer = fast_deliverer(bound.factory, {"telegram": telegram})
    resolved_at: datetime | None = None
    try:
        for offset in range(15):
            today = TODAY + timedelta(days=offset)
            Planner().plan(session, nairobi_at(today, 7), write=True)
            session.commit()
            if offset == 0:
                promises.create_promise(
                    session=session,
                    borrower=promised_person,
                    loan=promised_loan,
                    amount=promised_loan.principal / 6,
                    promised_date=date(2026, 12, 5),
                    channel="telegram",
                    now=nairobi_at(today, 8),
                )
                cases.open_case(
                    session=session,
                    borrower=hardship_person,
                    kind=CaseKind.hardship,
                    now=nairobi_at(today, 8),
                    channel="telegram",
                    loan=hardship_loan,
                )
                session.commit()
            await settle_delivery(
                deliverer, session, nairobi_at(today, 9), until=nairobi_at(today, 9, 59)
            )
            if offset == 10:
                resolved_at = nairobi_at(today, 10)
                case = session.scalar(select(Case).where(Case.borrower_id == hardship_person.id))
                assert case is not None
                officers.act(
                    session=session,
                    reference=case.reference,
                    action="resolve",
                    officer_chat_id=officer.chat_id or "",
                    officer_channel="telegram",
                    now=resolved_at,
                    outcome=CaseOutcome.plan_agreed,
                )
                session.commit()
            await settle_delivery(
                deliverer, session, nairobi_at(today, 10, 1), until=nairobi_at(today, 18)
            )
    finally:
        deliverer.close()

    def sent_collection(loan: Loan) -> list[tuple[str, date]]:
        return [
            (row.step or "", (row.sent_at or row.send_at).astimezone(NAIROBI).date())
            for row in rows_where(session, OutboxMessage.loan_id == loan.id)
            if row.status == OutboxStatus.sent and row.is_collection
        ]

    promised = sent_collection(promised_loan)
    held = [(step, d) for step, d in promised if d <= promised_until and step != "promise_due"]
    assert held == [], f"collection reminders during the promise: {held}"
    assert ("promise_due", date(2026, 12, 5)) in promised
    assert any(d > promised_until for _, d in promised), "collection never resumed"
    assert resolved_at is not None
    during_case = [
        (step, d) for step, d in sent_collection(hardship_loan) if d <= resolved_at.date()
    ]
    assert during_case == [], f"collection reminders during the hardship case: {during_case}"
    assert any(d > resolved_at.date() for _, d in sent_collection(hardship_loan)), (
        "collection never resumed after the case closed"
    )
    # The first morning's reminders, planned before the holds, were stopped at send time.
    first = {
        row.loan_id: row.last_error
        for row in rows_where(session, OutboxMessage.step == "installment+1")
    }
    assert first == {promised_loan.id: "promise_pending", hardship_loan.id: "hardship_case_open"}
