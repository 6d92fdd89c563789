"""Append events to the contact ledger: what was decided about a message, and why."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from api.ledger.models import ContactEvent

_TABLE = cast(Table, ContactEvent.__table__)
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
    """Append many events (each made by :func:`event_values`) in one statement: ``COPY`` on
    PostgreSQL, a Core insert elsewhere (the ORM's bulk insert spent more than the database)."""
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        _copy(session, events)
    else:
        session.execute(insert(_TABLE), list(events))


def _copy(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """``COPY ... FROM STDIN`` in the session's transaction. For a hundred events it costs the
    database half and the client under half of a many-row ``INSERT`` (the notifier records
    every send through here)."""
    session.flush()  # events added through the ORM go first, as an insert would make them
    dialect = session.get_bind().dialect
    columns = [column for column in _TABLE.columns if column.name in events[0]]
    processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    driver = session.connection().connection.driver_connection
    assert driver is not None
    names = ", ".join(column.name for column in columns)
    with driver.cursor() as cursor, cursor.copy(f"COPY {_TABLE.name} ({names}) FROM STDIN") as copy:
        for event in events:
            copy.write_row(
                [
                    value if process is None or value is None else process(value)
                    for value, process in zip(
                        (event[column.name] for column in columns), processors, strict=True
                    )
                ]
            )
