"""What the matrix tests that drive the planner and the deliverer in one process share: the
instant they start from, a deliverer with room to spare in its limits, delivery in
simulated time until nothing is left to send, and outbox rows written by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.borrowers.models import ChannelIdentity
from api.branches.models import Officer, StaffRole
from api.loans.models import Loan
from api.outbox.models import OutboxMessage, OutboxStatus
from bot.channels.base import ChannelGateway
from bot.channels.telegram import TelegramGateway
from i18n import day, money
from notifier.config import CampaignConfig
from notifier.delivery import Deliverer
from notifier.ratelimit import Limits, LocalRateLimiter
from tests.notifier.conftest import telegram_settings

T = TypeVar("T")
FAST = {"telegram": Limits(1000, 1000), "whatsapp": Limits(1000, 1000)}
# Tuesday 1 December 2026, 09:30 in Nairobi.
AT = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
TODAY = date(2026, 12, 1)
NAIROBI = ZoneInfo("Africa/Nairobi")


class GatewayLoop:
    """An event loop and a started Telegram gateway kept across hypothesis examples (which are
    synchronous): starting python-telegram-bot for every example cost more than the example."""

    def __init__(self, url: str, read_timeout: float = 1.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.gateway = TelegramGateway(telegram_settings(url, read_timeout=read_timeout))
        self.run(self.gateway.start(receive=False))

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def settle(
        self, factory: Callable[[], Session], session: Session, start: datetime, until: datetime
    ) -> None:
        deliverer = fast_deliverer(factory, {"telegram": self.gateway})
        try:
            self.run(settle_delivery(deliverer, session, start, until=until))
        finally:
            deliverer.close()

    def close(self) -> None:
        self.run(self.gateway.aclose())
        self.loop.close()


def rows_where(session: Session, *where: Any) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).where(*where).order_by(OutboxMessage.id)))


async def settle_delivery(
    deliverer: Deliverer,
    session: Session,
    start: datetime,
    *,
    until: datetime,
    before_each: Callable[[datetime], None] | None = None,
) -> None:
    """Deliver at ``start``, then at each later instant a row comes due, until ``until``:
    simulated time, jumping from one due row to the next (rescheduled rows included)."""
    at = start
    for _ in range(400):
        if before_each is not None:
            before_each(at)
        await deliverer.run_once(now=at, limit=500)
        session.expire_all()
        due = session.scalar(
            select(func.min(OutboxMessage.send_at)).where(
                OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.retry])
            )
        )
        if due is None or due > until:
            return
        at = max(at + timedelta(milliseconds=1), due)
    raise AssertionError("delivery did not settle")


def fast_deliverer(
    factory: Callable[[], Session],
    gateways: dict[str, ChannelGateway],
    config: CampaignConfig | None = None,
    worker_id: str = "matrix",
) -> Deliverer:
    return Deliverer(
        session_factory=factory,
        gateways=gateways,
        worker_id=worker_id,
        limiter=LocalRateLimiter(FAST),
        config=config,
    )


def outbox_row(
    person: Any,
    loan: Loan,
    chat: str,
    key: str,
    *,
    purpose: str,
    send_at: datetime,
    status: OutboxStatus = OutboxStatus.pending,
) -> OutboxMessage:
    """One outbox row to ``chat`` about ``loan``: a reminder or incentive of a campaign, or a
    reply to something the borrower asked (``case_update``)."""
    message, args = {
        "reminder": (
            "notify.reminder.upcoming",
            {
                "amount": money("1000.00", "KES"),
                "account": loan.account_reference,
                "due_date": day(TODAY),
            },
        ),
        "incentive": ("notify.incentive.thanks", {"account": loan.account_reference}),
        "case_update": (
            "cases.update.acknowledged",
            {"reference": "HS-0001", "officer_name": "Grace"},
        ),
    }[purpose]
    went = status in (OutboxStatus.sent,)
    return OutboxMessage(
        business_key=key,
        purpose=purpose,
        step="storm",
        is_collection=purpose == "reminder",
        borrower_id=person.id,
        loan_id=loan.id,
        channel="telegram",
        recipient=chat,
        locale="en",
        message_key=message,
        args=args,
        buttons=[],
        status=status,
        send_at=send_at,
        sent_at=send_at if went else None,
        attempts=0 if status == OutboxStatus.pending else 1,
    )


def chat_of(session: Session, borrower_id: int) -> str:
    return str(
        session.scalar(
            select(ChannelIdentity.external_user_id).where(
                ChannelIdentity.borrower_id == borrower_id
            )
        )
    )


def add_officer(session: Session, branch_id: int, chat: str) -> Officer:
    officer = Officer(
        branch_id=branch_id,
        name="Grace Otieno",
        role=StaffRole.officer,
        channel="telegram",
        chat_id=chat,
        locale="en",
    )
    session.add(officer)
    session.flush()
    return officer


def nairobi_at(day_: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day_, clock_time(hour, minute), tzinfo=NAIROBI).astimezone(UTC)
