"""What the delivery tests share: the moment they stand at, planned reminders, paced config."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from api.outbox.models import OutboxMessage
from notifier.config import CampaignConfig, load_campaigns
from notifier.planner import Planner
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound

AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # Tuesday 09:30 in Nairobi
TODAY = date(2026, 12, 1)


def outbox_rows(bound: Bound) -> list[OutboxMessage]:
    bound.session.expire_all()
    return list(bound.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def plan_reminders(bound: Bound, borrowers: int) -> None:
    """``borrowers`` borrowers of one branch, each with an installment due in three days,
    planned at AT and committed."""
    br = f.branch(bound.session)
    for _ in range(borrowers):
        f.loan(bound.session, f.borrower(bound.session, br), first_due=TODAY + timedelta(days=3))
    Planner().plan(bound.session, AT, write=True)
    bound.session.commit()


def telegram_at(per_second: float) -> CampaignConfig:
    """The campaigns with Telegram limited to ``per_second`` overall and per chat."""
    config = load_campaigns()
    config.channels["telegram"] = config.channels["telegram"].model_copy(
        update={"per_second": per_second, "per_chat_per_second": per_second}
    )
    return config
