from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, Field

from api.payments.service import RecordStatus


class PaymentConfirmation(BaseModel):
    """What the mobile-money provider (or its relay) confirms."""

    external_reference: str = Field(min_length=1, max_length=64)
    account_reference: str = Field(min_length=1, max_length=32)
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)
    method: str = Field(default="mobile_money", min_length=1, max_length=32)
    received_at: AwareDatetime


class PaymentConfirmationOut(BaseModel):
    status: RecordStatus
