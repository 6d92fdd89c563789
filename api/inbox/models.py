"""One row per inbound chat update (Telegram update, WhatsApp message), kept until answered.

The gateway inserts the row before it answers the provider's webhook with 200, so an update it
acknowledged can no longer be lost; ``key`` (the channel's own id of the update) is unique, so a
redelivery adds nothing. Rows of one chat (``chat_key``) are answered one at a time in arrival
order (``id``): only the oldest unfinished row of a chat can be claimed. ``payload`` holds what the
borrower sent only until the row is done, then it is cleared.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import UTCDateTime


class InboxStatus(enum.StrEnum):
    pending = "pending"  # stored, not yet taken by a gateway process
    working = "working"  # a gateway process holds the lease and is answering it
    done = "done"  # answered (or deliberately not answered); payload cleared
    dead = "dead"  # failed every attempt; payload cleared, logged at error


class InboxMessage(Base):
    __tablename__ = "inbox_message"
    __table_args__ = (
        # The claim looks for the oldest unfinished row of each chat.
        Index(
            "ix_inbox_message_open_chat",
            "chat_key",
            "id",
            postgresql_where=text("status IN ('pending', 'working')"),
            sqlite_where=text("status IN ('pending', 'working')"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # The channel's id of the update: ``tg:<update_id>``, ``wa:<message id>``.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    # The conversation the update belongs to: ``tg:<chat id>``, ``wa:<sender id>``.
    chat_key: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(12), default=InboxStatus.pending.value)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
