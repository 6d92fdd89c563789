from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import CURRENCY, MONEY, UTCDateTime


class Payment(Base):
    """Money received. ``external_reference`` is unique: a repeated confirmation is a no-op."""

    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(CURRENCY)
    method: Mapped[str] = mapped_column(String(32))  # mobile_money | bank | agent | cash
    external_reference: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(32), default="webhook")  # webhook | import | seed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class PaymentAllocation(Base):
    """How a payment was spread over installments (fees, then interest, then principal)."""

    __tablename__ = "payment_allocation"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), index=True)
    installment_id: Mapped[int] = mapped_column(ForeignKey("loan_installment.id"), index=True)
    fees: Mapped[Decimal] = mapped_column(MONEY)
    interest: Mapped[Decimal] = mapped_column(MONEY)
    principal: Mapped[Decimal] = mapped_column(MONEY)
