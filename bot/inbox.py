"""The durable inbox on the app database: store before acknowledging, answer from there.

A webhook (or a polled Telegram update) becomes an ``inbox_message`` row (:mod:`api.inbox.models`)
in a committed transaction before the provider hears 200; a redelivery hits the unique ``key``
and adds nothing. Gateway processes claim rows with a lease that they renew while the turn runs,
and finish them once the reply has been handed to the channel. A process that dies mid-turn
leaves its row ``working``; when the lease runs out any process (itself after a restart) claims
it again, so the turn is replayed rather than lost.

Per-chat order: only the oldest unfinished row of a chat can be claimed, and only while no other
row of that chat is being answered, so one chat's messages reach Rasa one at a time in arrival
order, whichever process took them. On PostgreSQL the claim locks the row it picks
(``FOR UPDATE SKIP LOCKED``) so two processes never take the same one; on SQLite (one process)
the claim is a single ``UPDATE`` statement, which SQLite runs alone.

Every call is synchronous SQLAlchemy and runs in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from api.core.db import build_engine
from api.inbox.models import InboxMessage, InboxStatus

logger = logging.getLogger(__name__)

OPEN = (InboxStatus.pending.value, InboxStatus.working.value)


@dataclass(frozen=True)
class InboxItem:
    """One inbound update to store: its unique key, its chat and what to answer it from."""

    key: str
    channel: str
    chat_key: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    key: str
    channel: str
    chat_key: str
    payload: dict[str, Any]
    attempts: int


class Inbox:
    """The ``inbox_message`` table, seen from one gateway process (``worker``)."""

    def __init__(
        self,
        database_url: str,
        *,
        worker: str,
        lease_seconds: float = 30.0,
        max_attempts: int = 5,
        pool_size: int = 10,
    ) -> None:
        self.worker = worker
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        postgres = database_url.startswith("postgresql")
        options: dict[str, Any] = (
            {"pool_size": pool_size, "max_overflow": pool_size} if postgres else {}
        )
        self._engine: Engine = build_engine(database_url, sqlite_immediate=True, **options)
        self._postgres = self._engine.dialect.name == "postgresql"

    # -- storing -------------------------------------------------------------------------
    async def accept(self, items: Sequence[InboxItem]) -> list[bool]:
        """Store ``items`` in one committed transaction; True for each one not stored before."""
        if not items:
            return []
        return await asyncio.to_thread(self._accept, items)

    def _accept(self, items: Sequence[InboxItem]) -> list[bool]:
        dialect = postgresql if self._postgres else sqlite
        fresh: list[bool] = []
        with self._engine.begin() as conn:
            for item in items:
                statement = (
                    dialect.insert(InboxMessage)
                    .values(
                        key=item.key,
                        channel=item.channel,
                        chat_key=item.chat_key,
                        status=InboxStatus.pending.value,
                        payload=item.payload,
                        attempts=0,
                    )
                    .on_conflict_do_nothing(index_elements=["key"])
                    .returning(InboxMessage.id)
                )
                fresh.append(conn.execute(statement).first() is not None)
        return fresh

    async def known(self, key: str) -> bool:
        """Whether an update with ``key`` is stored already (answered or not)."""
        return await asyncio.to_thread(self._known, key)

    def _known(self, key: str) -> bool:
        with self._engine.connect() as conn:
            found = conn.scalar(select(InboxMessage.id).where(InboxMessage.key == key))
        return found is not None

    # -- answering -----------------------------------------------------------------------
    async def claim(self) -> ClaimedItem | None:
        """Take the oldest row that heads its chat's queue and nobody is answering."""
        return await asyncio.to_thread(self._claim)

    def _claim(self) -> ClaimedItem | None:
        now = datetime.now(UTC)
        row = InboxMessage.__table__.c
        # Aliases keep the subqueries from correlating with the table being updated.
        pick = aliased(InboxMessage, name="pick")
        head = aliased(InboxMessage, name="head")
        oldest_open = (
            select(func.min(head.id))
            .where(head.chat_key == pick.chat_key, head.status.in_(OPEN))
            .correlate(pick)
            .scalar_subquery()
        )
        candidate = (
            select(pick.id)
            .where(
                pick.id == oldest_open,
                (pick.status == InboxStatus.pending.value)
                | and_(pick.status == InboxStatus.working.value, pick.lease_until < now),
            )
            .order_by(pick.id)
            .limit(1)
        )
        if self._postgres:
            candidate = candidate.with_for_update(skip_locked=True)
        statement = (
            update(InboxMessage)
            .where(row.id == candidate.scalar_subquery())
            .values(
                status=InboxStatus.working.value,
                lease_until=now + self.lease,
                worker=self.worker,
                attempts=row.attempts + 1,
            )
            .returning(row.id, row.key, row.channel, row.chat_key, row.payload, row.attempts)
        )
        with self._engine.begin() as conn:
            found = conn.execute(statement).first()
        if found is None:
            return None
        return ClaimedItem(
            id=found.id,
            key=found.key,
            channel=found.channel,
            chat_key=found.chat_key,
            payload=found.payload or {},
            attempts=found.attempts,
        )

    async def renew(self, item_id: int) -> None:
        """Extend the lease of a row this process is still answering."""
        await asyncio.to_thread(self._renew, item_id)

    def _renew(self, item_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(InboxMessage)
                .where(
                    InboxMessage.id == item_id,
                    InboxMessage.worker == self.worker,
                    InboxMessage.status == InboxStatus.working.value,
                )
                .values(lease_until=datetime.now(UTC) + self.lease)
            )

    async def finish(self, item_id: int, *, dead: bool = False) -> None:
        """Mark a row answered (or given up) and forget what the borrower wrote."""
        await asyncio.to_thread(self._finish, item_id, dead)

    def _finish(self, item_id: int, dead: bool) -> None:
        status = InboxStatus.dead if dead else InboxStatus.done
        with self._engine.begin() as conn:
            conn.execute(
                update(InboxMessage)
                .where(InboxMessage.id == item_id)
                .values(
                    status=status.value,
                    payload=None,
                    lease_until=None,
                    finished_at=datetime.now(UTC),
                )
            )

    async def aclose(self) -> None:
        await asyncio.to_thread(self._engine.dispose)
