"""The reminder holdout in the planner (SQLite and PostgreSQL): a borrower in the holdout gets
no nudging installment reminder, still gets what they asked for or need, and the ledger says
why each reminder was withheld."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.holdout import in_holdout
from api.borrowers.models import Borrower
from api.branches.models import Branch
from api.core.config import HoldoutPolicy
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage, OutboxStatus
from api.promises.models import PromiseStatus, PromiseToPay
from notifier.planner import Planner
from tests.notifier import notify_factory as f

# Tuesday 1 December 2026, 09:30 in Nairobi (UTC+3).
AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
TODAY = date(2026, 12, 1)
HALF = HoldoutPolicy(share=0.5, salt="notifier-test")


def _borrower_in(session: Session, br: Branch, *, holdout: bool) -> Borrower:
    """A new borrower whose hash puts them in the wanted arm (half of all ids are in each)."""
    for _ in range(64):
        person = f.borrower(session, br)
        if in_holdout(person.id, HALF) is holdout:
            return person
    raise AssertionError("64 borrowers in a row fell in the same arm")


def test_a_holdout_borrower_gets_no_nudge_but_their_promise_and_the_offer_of_help(
    session: Session,
) -> None:
    br = f.branch(session)
    held = _borrower_in(session, br, holdout=True)
    reminded = _borrower_in(session, br, holdout=False)
    upcoming = f.loan(session, held, first_due=TODAY + timedelta(days=3))
    late = f.loan(session, held, first_due=TODAY - timedelta(days=7))
    promised = f.loan(session, held, first_due=TODAY - timedelta(days=10))
    session.add(
        PromiseToPay(
            loan_id=promised.id,
            borrower_id=held.id,
            amount=promised.principal,
            currency="KES",
            promised_date=TODAY,
            channel="telegram",
            status=PromiseStatus.pending,
        )
    )
    control = f.loan(session, reminded, first_due=TODAY + timedelta(days=3))
    session.flush()
    loans = [upcoming.id, late.id, promised.id, control.id]

    result = Planner(holdout=HALF).plan(session, AT, write=True, loan_ids=loans)

    judged = {(c.loan_id, c.step): (c.status, c.reason) for c in result.candidates}
    assert judged == {
        (upcoming.id, "installment-3"): ("suppressed", "holdout"),
        # Ten days late offers hardship help: never withheld.
        (late.id, "installment+7"): ("planned", "campaign"),
        # The borrower's own promise is reminded on its day.
        (promised.id, "promise_due"): ("planned", "campaign"),
        (control.id, "installment-3"): ("planned", "campaign"),
    }
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.loan_id == upcoming.id))
    assert row is not None
    assert (row.status, row.last_error) == (OutboxStatus.suppressed, "holdout")
    [event] = session.scalars(select(ContactEvent).where(ContactEvent.loan_id == upcoming.id))
    assert (event.kind, event.decision, event.rule) == ("reminder", "suppressed", "holdout")
    assert event.message_key == "notify.reminder.upcoming"
    sent = session.scalars(
        select(OutboxMessage.message_key).where(
            OutboxMessage.borrower_id == held.id, OutboxMessage.status == OutboxStatus.pending
        )
    )
    assert sorted(sent) == ["notify.promise.today", "notify.reminder.overdue_help"]


def test_no_holdout_share_withholds_nothing(session: Session) -> None:
    br = f.branch(session)
    held = _borrower_in(session, br, holdout=True)
    upcoming = f.loan(session, held, first_due=TODAY + timedelta(days=3))

    result = Planner(holdout=HoldoutPolicy(share=0.0, salt=HALF.salt)).plan(
        session, AT, write=False, loan_ids=[upcoming.id]
    )

    [candidate] = result.candidates
    assert (candidate.status, candidate.reason) == ("planned", "campaign")
