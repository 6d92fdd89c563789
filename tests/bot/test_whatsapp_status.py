"""WhatsApp delivery statuses land in the contact ledger, once each, tied to the outbox row."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.core.db import build_engine
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage, OutboxStatus
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp, status_payload
from tests.api.factories import make_borrower, make_branch
from tests.bot.conftest import start_gateway, wait_until


@pytest.fixture
def factory(committed_sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    engine = build_engine(committed_sqlite_url)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


def test_statuses_are_appended_to_the_ledger_once(
    committed_sqlite_url: str,
    factory: sessionmaker[Session],
    fake_telegram: tuple[FakeTelegram, ServerThread],
    fake_whatsapp: tuple[FakeWhatsApp, ServerThread],
) -> None:
    wamid = f"wamid.status{id(factory)}"
    with factory() as db, db.begin():
        borrower = make_borrower(db, make_branch(db))
        borrower_id = borrower.id
        db.add(
            OutboxMessage(
                business_key=f"test:{wamid}",
                purpose="case_update",
                channel="whatsapp",
                recipient="254700000001",
                locale="fr",
                message_key="cases.update.acknowledged",
                args={},
                buttons=[],
                borrower_id=borrower_id,
                status=OutboxStatus.sent,
                send_at=datetime.now(UTC),
                attempts=1,
                provider_message_id=wamid,
            )
        )
    fake, _server = fake_whatsapp
    server, gateway = start_gateway(fake_telegram, fake_whatsapp, database_url=committed_sqlite_url)
    try:
        for status in ("sent", "delivered", "delivered", "read"):
            asyncio.run(fake.deliver(status_payload(wamid, status, "254700000001")))
        asyncio.run(fake.deliver(status_payload(wamid, "failed", "254700000001")))

        def events() -> list[ContactEvent]:
            with factory() as db:
                query = select(ContactEvent).where(ContactEvent.external_message_id == wamid)
                return list(db.scalars(query.order_by(ContactEvent.id)))

        wait_until(lambda: len(events()) == 4)
    finally:
        gateway.client.close()
        server.stop()

    recorded = events()
    # Meta does not promise order either: the ledger has each status once.
    assert sorted(e.decision for e in recorded) == ["delivered", "failed", "read", "sent"]
    assert {e.borrower_id for e in recorded} == {borrower_id}
    assert {e.message_key for e in recorded} == {"cases.update.acknowledged"}
    [failed] = [e for e in recorded if e.decision == "failed"]
    assert failed.detail == {"error_codes": [131026]}
