from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel

from api.promises.models import PromiseStatus


class PromiseIn(BaseModel):
    amount: Decimal
    promised_date: date
    loan_id: int | None = None


class PromiseOut(BaseModel):
    promise_id: int
    loan_id: int
    amount: Decimal
    currency: str
    promised_date: date
    status: PromiseStatus
