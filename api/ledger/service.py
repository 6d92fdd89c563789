"""Append events to the contact ledger: what was decided about a message, and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from api.ledger.models import ContactEvent

# Inbound chat text is personal data: the ledger keeps what was decided, never what was said.
_FORBIDDEN_DETAIL_KEYS = frozenset({"text", "message", "body", "borrower_words"})


def event_values(
    *,
    at: datetime,
    direction: str,
    kind: str,
    decision: str,
    rule: str | None = None,
    borrower_id: int | None = None,
    loan_id: int | None = None,
    case_id: int | None = None,
    channel: str | None = None,
    message_key: str | None = None,
    external_message_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of one event (``direction``: inbound | outbound | internal).

    Raises:
        ValueError: ``detail`` carries message text, which the ledger must never store.
    """
    detail = dict(detail or {})
    leaked = _FORBIDDEN_DETAIL_KEYS & detail.keys()
    if leaked:
        raise ValueError(f"the ledger never stores message text ({sorted(leaked)})")
    return {
        "at": at,
        "direction": direction,
        "kind": kind,
        "decision": decision,
        "rule": rule,
        "borrower_id": borrower_id,
        "loan_id": loan_id,
        "case_id": case_id,
        "channel": channel,
        "message_key": message_key,
        "external_message_id": external_message_id,
        "detail": detail,
    }


def record(*, session: Session, **event: Any) -> ContactEvent:
    """Append one event; ``event`` takes the arguments of :func:`event_values`."""
    row = ContactEvent(**event_values(**event))
    session.add(row)
    return row


def record_many(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """Append many events (each made by :func:`event_values`) in one statement."""
    if events:
        # A Core insert of the table: the ORM's bulk insert spent more than the database did.
        session.execute(insert(cast(Table, ContactEvent.__table__)), list(events))
