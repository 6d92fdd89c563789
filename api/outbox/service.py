"""Enqueue messages for the notifier, in the caller's transaction (the outbox pattern)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.outbox.models import OutboxMessage, OutboxStatus


def enqueue(
    *,
    session: Session,
    business_key: str,
    purpose: str,
    channel: str,
    recipient: str,
    locale: str,
    message_key: str,
    send_at: datetime,
    args: dict[str, Any] | None = None,
    buttons: list[dict[str, Any]] | None = None,
    borrower_id: int | None = None,
    officer_id: int | None = None,
    loan_id: int | None = None,
    case_id: int | None = None,
    promise_id: int | None = None,
    is_collection: bool = False,
    step: str | None = None,
) -> OutboxMessage:
    """Add one message, or return the one already enqueued under ``business_key``.

    The key makes retries of the cause (a pressed button, a replayed request) enqueue nothing new.
    """
    existing = session.scalar(
        select(OutboxMessage).where(OutboxMessage.business_key == business_key)
    )
    if existing is not None:
        return existing
    message = OutboxMessage(
        business_key=business_key,
        purpose=purpose,
        step=step,
        channel=channel,
        recipient=recipient,
        locale=locale,
        message_key=message_key,
        args=args or {},
        buttons=buttons or [],
        borrower_id=borrower_id,
        officer_id=officer_id,
        loan_id=loan_id,
        case_id=case_id,
        promise_id=promise_id,
        is_collection=is_collection,
        status=OutboxStatus.pending,
        send_at=send_at,
        attempts=0,
    )
    session.add(message)
    return message
