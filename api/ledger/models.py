from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, ORMExecuteState, Session, mapped_column

from api.core.db import Base
from api.core.types import UTCDateTime


class LedgerIsAppendOnly(RuntimeError):
    """Something tried to change or remove a contact event; the ledger only grows."""


class ContactEvent(Base):
    """Append-only ledger of every inbound and outbound message decision, with its reason.

    ``rule`` names the rule that decided (``quiet_hours``, ``cap_7d``, ``opted_out``, ...).
    Rows are never updated or deleted: the ORM refuses it (listeners below) and so does the
    database (triggers in migration ``061c9dbbe946``). A correction is a new event.
    """

    __tablename__ = "contact_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrower.id"), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loan.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"))
    channel: Mapped[str | None] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound | internal
    kind: Mapped[str] = mapped_column(String(32))  # chat | reminder | incentive | status | case
    decision: Mapped[str] = mapped_column(String(32))  # sent | suppressed | rescheduled | ...
    rule: Mapped[str | None] = mapped_column(String(64))
    message_key: Mapped[str | None] = mapped_column(String(96))
    external_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@event.listens_for(ContactEvent, "before_update")
def _refuse_update(_mapper: Mapper[Any], _connection: Connection, _target: ContactEvent) -> None:
    raise LedgerIsAppendOnly("contact_event rows are never updated")


@event.listens_for(ContactEvent, "before_delete")
def _refuse_delete(_mapper: Mapper[Any], _connection: Connection, _target: ContactEvent) -> None:
    raise LedgerIsAppendOnly("contact_event rows are never deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    # Bulk ``update(ContactEvent)`` / ``delete(ContactEvent)`` skip the mapper events above.
    if (state.is_update or state.is_delete) and any(
        getattr(mapper, "class_", None) is ContactEvent for mapper in state.all_mappers
    ):
        raise LedgerIsAppendOnly("contact_event rows are never updated or deleted")
