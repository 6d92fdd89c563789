from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Enum, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import CURRENCY, MONEY, UTCDateTime


class PromiseStatus(enum.StrEnum):
    pending = "pending"
    kept = "kept"
    partially_kept = "partially_kept"
    broken = "broken"
    cancelled = "cancelled"


class PromiseToPay(Base):
    __tablename__ = "promise_to_pay"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(CURRENCY)
    promised_date: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[PromiseStatus] = mapped_column(
        Enum(PromiseStatus, native_enum=False, length=16), default=PromiseStatus.pending, index=True
    )
    # Paid towards the loan between the promise and its date (plus grace).
    amount_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
