from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import UTCDateTime


class CaseKind(enum.StrEnum):
    hardship = "hardship"
    officer_request = "officer_request"
    complaint = "complaint"
    payment_claim = "payment_claim"


class CaseStatus(enum.StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    called = "called"
    resolved = "resolved"


class CaseOutcome(enum.StrEnum):
    plan_agreed = "plan_agreed"
    payment_holiday = "payment_holiday"
    restructure_requested = "restructure_requested"
    no_action = "no_action"


class CallOutcome(enum.StrEnum):
    """What came of an officer's call to the borrower about a case."""

    answered = "answered"
    no_answer = "no_answer"
    promise_to_pay = "promise_to_pay"
    dispute = "dispute"
    paid = "paid"
    refused = "refused"
    unreachable = "unreachable"
    wrong_number = "wrong_number"


# Statuses of a case an officer still has to work; a borrower has at most one such case of a kind.
UNRESOLVED_STATUSES = ("open", "acknowledged", "called")
_UNRESOLVED_SQL = text("status IN ('open', 'acknowledged', 'called')")


class Case(Base):
    """A hardship case, officer request, complaint or payment claim, with a human reference.

    A borrower has at most one unresolved case of each kind: a second request becomes a
    :class:`CaseNote` on it (the partial unique index below holds the rule against races).
    """

    __tablename__ = "case"
    __table_args__ = (
        Index(
            "uq_case_one_unresolved_per_borrower_kind",
            "borrower_id",
            "kind",
            unique=True,
            postgresql_where=_UNRESOLVED_SQL,
            sqlite_where=_UNRESOLVED_SQL,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[CaseKind] = mapped_column(Enum(CaseKind, native_enum=False, length=16))
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loan.id"), index=True)
    category: Mapped[str | None] = mapped_column(String(32))  # illness, business_loss, ...
    borrower_words: Mapped[str | None] = mapped_column(Text)
    requested_relief: Mapped[str | None] = mapped_column(String(32))  # more_time | smaller | pause
    channel: Mapped[str | None] = mapped_column(String(16))
    # Kind-specific facts, e.g. a payment claim's amount, date and reference as typed by the
    # borrower. Never identity documents.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[CaseStatus] = mapped_column(
        Enum(CaseStatus, native_enum=False, length=16), default=CaseStatus.open, index=True
    )
    outcome: Mapped[CaseOutcome | None] = mapped_column(
        Enum(CaseOutcome, native_enum=False, length=32)
    )
    assigned_officer_id: Mapped[int | None] = mapped_column(ForeignKey("branch_officer.id"))
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("branch_officer.id"))
    sla_due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseNote(Base):
    """A later request added to an unresolved case instead of opening a second one, or what an
    officer wrote or recorded on the case.

    ``capped`` marks a request that came after the borrower's daily cap of new cases: it was
    added to their latest case rather than alerting an officer again. ``officer_id`` is set on an
    officer's note (``officer_words``) or call (``call_outcome``); such notes never count
    towards the borrower's caps.
    """

    __tablename__ = "case_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    kind: Mapped[CaseKind] = mapped_column(Enum(CaseKind, native_enum=False, length=16))
    capped: Mapped[bool] = mapped_column(default=False)
    borrower_words: Mapped[str | None] = mapped_column(Text)
    requested_relief: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    channel: Mapped[str | None] = mapped_column(String(16))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("branch_officer.id"))
    officer_words: Mapped[str | None] = mapped_column(Text)
    call_outcome: Mapped[CallOutcome | None] = mapped_column(
        Enum(CallOutcome, native_enum=False, length=16)
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now(), index=True)


class LoanCall(Base):
    """An officer's call to a borrower about a loan outside any case (a broken promise's
    follow-up), what came of it and the officer's short note.

    The contact ledger keeps who called and when (``kind=call``), as for a call on a case; the
    note's words stay here. ``idempotency_key`` makes a form sent twice record once.
    """

    __tablename__ = "loan_call"

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("branch_officer.id"))
    call_outcome: Mapped[CallOutcome] = mapped_column(
        Enum(CallOutcome, native_enum=False, length=16)
    )
    officer_words: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now(), index=True)
