from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from api.loans.models import InstallmentStatus, LoanStatus


class NextInstallment(BaseModel):
    due_date: date
    amount: Decimal


class LoanSummary(BaseModel):
    loan_id: int
    account_reference: str
    currency: str
    outstanding: Decimal
    arrears: Decimal
    days_past_due: int
    status: LoanStatus
    collection_paused: bool
    next_installment: NextInstallment | None


class ScheduleLine(BaseModel):
    seq: int
    due_date: date
    amount_due: Decimal
    amount_paid: Decimal
    status: InstallmentStatus


class PaymentLine(BaseModel):
    amount: Decimal
    currency: str
    received_at: datetime
    method: str
    reference: str


class PaymentInstructions(BaseModel):
    account_reference: str
    currency: str
    mobile_money: list[dict[str, Any]]
    bank: dict[str, Any] | None
    agents: list[dict[str, Any]]
