from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from api.cases.models import CaseKind, CaseOutcome, CaseStatus
from api.loans.schemas import PaymentLine


class CaseIn(BaseModel):
    kind: Literal["hardship", "officer_request", "complaint"]
    category: str | None = Field(
        default=None,
        pattern=r"^[a-z_]{1,32}$",
        description="illness, death_in_family, business_loss, job_loss, disaster, theft, other",
    )
    borrower_words: str | None = Field(default=None, max_length=2000)
    requested_relief: Literal["more_time", "smaller_installments", "pause"] | None = None
    loan_id: int | None = None


Disposition = Literal["opened", "added", "capped"]


class CaseOut(BaseModel):
    reference: str
    kind: CaseKind
    status: CaseStatus
    officer_name: str
    sla_due_at: datetime
    # opened: a new case; added: put on the unresolved case of this kind; capped: the daily cap
    # was reached, put on the latest case. Only "opened" alerted an officer.
    disposition: Disposition = "opened"


class PaymentClaimIn(BaseModel):
    amount: Decimal | None = Field(default=None, gt=0)
    paid_on: date | None = None
    reference: str | None = Field(default=None, max_length=64)


class PaymentClaimOut(BaseModel):
    found: bool
    payment: PaymentLine | None = None
    case_reference: str | None = None
    expected_within_hours: int | None = None
    disposition: Disposition | None = None


class OfficerActionIn(BaseModel):
    officer_chat_id: str = Field(min_length=1, max_length=64)
    officer_channel: str | None = Field(default=None, max_length=16)
    outcome: CaseOutcome | None = None


class OfficerCaseOut(BaseModel):
    """A case as an officer sees it: no national ID, no full phone, no date of birth."""

    reference: str
    kind: CaseKind
    status: CaseStatus
    outcome: CaseOutcome | None
    category: str | None
    requested_relief: str | None
    borrower_first_name: str
    borrower_phone_masked: str
    branch_code: str
    assigned_officer_name: str | None
    escalated_to_name: str | None
    sla_due_at: datetime
    sla_missed: bool
    created_at: datetime


class OfficerOut(BaseModel):
    officer_id: int
    name: str
    role: str
    branch_code: str
    locale: str


class EscalationOut(BaseModel):
    escalated: list[str]
