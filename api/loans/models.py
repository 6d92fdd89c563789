from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, Enum, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import CURRENCY, MONEY, UTCDateTime
from api.loans import rules
from api.loans.rules import InstallmentStatus as InstallmentStatus


class Frequency(enum.StrEnum):
    weekly = "weekly"
    monthly = "monthly"


class LoanStatus(enum.StrEnum):
    active = "active"
    closed = "closed"  # repaid in full
    defaulted = "defaulted"
    written_off = "written_off"


class Loan(Base):
    __tablename__ = "loan"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_reference: Mapped[str] = mapped_column(String(32), unique=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("branch_group.id"), index=True)
    product: Mapped[str] = mapped_column(String(64))
    principal: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(CURRENCY)
    annual_interest_rate: Mapped[Decimal] = mapped_column(MONEY)  # percent
    frequency: Mapped[Frequency] = mapped_column(Enum(Frequency, native_enum=False, length=16))
    disbursed_on: Mapped[date] = mapped_column(Date)
    status: Mapped[LoanStatus] = mapped_column(
        Enum(LoanStatus, native_enum=False, length=16), default=LoanStatus.active, index=True
    )
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    # Set while a hardship case is open: collection reminders pause.
    collection_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class Installment(Base):
    __tablename__ = "loan_installment"
    __table_args__ = (UniqueConstraint("loan_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    principal_due: Mapped[Decimal] = mapped_column(MONEY)
    interest_due: Mapped[Decimal] = mapped_column(MONEY)
    fees_due: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    principal_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    interest_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    fees_paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    status: Mapped[InstallmentStatus] = mapped_column(
        Enum(InstallmentStatus, native_enum=False, length=16), default=InstallmentStatus.pending
    )
    paid_on: Mapped[date | None] = mapped_column(Date)

    @property
    def total_due(self) -> Decimal:
        return rules.total_due(self)

    @property
    def total_paid(self) -> Decimal:
        return rules.total_paid(self)

    @property
    def outstanding(self) -> Decimal:
        return rules.outstanding(self)
