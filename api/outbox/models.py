from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import UTCDateTime


class OutboxStatus(enum.StrEnum):
    pending = "pending"  # waiting for send_at
    claimed = "claimed"  # a worker holds the lease; nothing has left yet
    # The rules said yes and the text is rendered; waiting for a send slot. Counts against the
    # caps, so a second worker judging the same loan sees it; nothing has left yet.
    ready = "ready"
    # The request to the provider may have left: a worker that dies now leaves an unknown outcome,
    # which is never resent automatically (rule R-4).
    sending = "sending"
    retry = "retry"  # retryable failure, next try at send_at
    sent = "sent"
    unknown = "unknown"  # timed out after the request left: never resent automatically
    failed = "failed"  # final failure (blocked by user, invalid recipient)
    dead = "dead"  # retries exhausted: visible to officers
    suppressed = "suppressed"  # a conduct rule said no at send time


class OutboxMessage(Base):
    """One message to deliver, written in the same transaction as the fact that causes it.

    ``business_key`` is unique (for reminders: loan, installment or promise, step, local day), so
    planning twice plans nothing new.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index(
            "ix_outbox_message_due",
            "send_at",
            postgresql_where=text("status IN ('pending', 'retry')"),
            sqlite_where=text("status IN ('pending', 'retry')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_key: Mapped[str] = mapped_column(String(160), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))  # reminder | incentive | officer_alert | ...
    step: Mapped[str | None] = mapped_column(String(32))
    is_collection: Mapped[bool] = mapped_column(Boolean, default=False)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrower.id"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("branch_officer.id"))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loan.id"), index=True)
    installment_id: Mapped[int | None] = mapped_column(ForeignKey("loan_installment.id"))
    promise_id: Mapped[int | None] = mapped_column(ForeignKey("promise_to_pay.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    message_key: Mapped[str] = mapped_column(String(96))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    buttons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(OutboxStatus, native_enum=False, length=16), default=OutboxStatus.pending, index=True
    )
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Of a text sent in parts: how many parts have been delivered, so that a retry sends only
    # the rest.
    parts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class DeadLetterReason(enum.StrEnum):
    # The provider refused the channel itself (token, bad request, template, unknown code):
    # the channel's campaign is halted until an operator resumes it.
    channel_error = "channel_error"
    retries_exhausted = "retries_exhausted"  # a message that kept failing: its officer is told


class DeadLetter(Base):
    """What the notifier could not deliver and an operator must look at (``kopa cases``, the
    console): a halted channel, or a message whose retries ran out.

    ``error`` is the provider's error type and code, never a message text or a recipient.
    """

    __tablename__ = "notify_dead_letter"
    __table_args__ = (
        # The claim asks for the open halts on every chunk: a handful of rows at most.
        Index(
            "ix_notify_dead_letter_open_halt",
            "channel",
            postgresql_where=text("halts_channel AND resolved_at IS NULL"),
            sqlite_where=text("halts_channel AND resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16))
    reason: Mapped[DeadLetterReason] = mapped_column(
        Enum(DeadLetterReason, native_enum=False, length=24)
    )
    error: Mapped[str | None] = mapped_column(String(200))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id"), index=True)
    # While open, no worker claims this channel's messages (a channel_error).
    halts_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
