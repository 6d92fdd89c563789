"""Small builders for API tests (and anyone else who needs a borrower with a loan).

Every builder flushes, so ids are set; values that must be unique get a fresh suffix.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, Channel, ChannelIdentity
from api.borrowers.verification import dob_hash, national_id_hash
from api.branches.models import Branch, Officer, StaffRole
from api.core.config import get_settings
from api.loans.models import Frequency, Installment, InstallmentStatus, Loan, LoanStatus

_counter = itertools.count(1)

DEFAULT_DOB = date(1985, 3, 14)
DEFAULT_NATIONAL_ID_LAST4 = "4821"
NAIROBI_INSTRUCTIONS: dict[str, Any] = {
    "mobile_money": [{"provider": "M-Pesa", "type": "paybill", "number": "400200"}],
    "bank": {"bank": "Equity Bank", "account": "0170299999"},
    "agents": [{"name": "Kopa agent Gikomba", "location": "Gikomba market, stall 12"}],
}


def _unique() -> str:
    return f"{next(_counter)}{uuid.uuid4().hex[:6]}"


def _pepper() -> str:
    return get_settings().hash_pepper.get_secret_value()


DEFAULT_TIMEZONE = "Africa/Nairobi"


def today(timezone: str = DEFAULT_TIMEZONE) -> date:
    """Today for a borrower of a branch in ``timezone`` (the factories' and the actions'
    default zone unless named), not the test machine's UTC day."""
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date()


def make_branch(
    session: Session,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    currency: str = "KES",
    country: str = "KE",
    payment_instructions: dict[str, Any] | None = None,
) -> Branch:
    branch = Branch(
        code=f"BR-{_unique()}",
        name="Test branch",
        country=country,
        timezone=timezone,
        currency=currency,
        payment_instructions=NAIROBI_INSTRUCTIONS
        if payment_instructions is None
        else payment_instructions,
        extra_holidays=[],
    )
    session.add(branch)
    session.flush()
    return branch


def make_officer(
    session: Session,
    branch: Branch,
    *,
    role: StaffRole = StaffRole.officer,
    name: str = "Grace Otieno",
    channel: str | None = "telegram",
    chat_id: str | None = None,
    locale: str = "en",
) -> Officer:
    officer = Officer(
        branch_id=branch.id,
        name=name,
        role=role,
        channel=channel,
        chat_id=chat_id if chat_id is not None else f"9{next(_counter):08d}",
        locale=locale,
    )
    session.add(officer)
    session.flush()
    return officer


def unique_phone() -> str:
    """A valid Kenyan mobile number nobody else in the test database has."""
    return f"+2547{uuid.uuid4().int % 10**8:08d}"


def make_borrower(
    session: Session,
    branch: Branch,
    *,
    officer: Officer | None = None,
    full_name: str = "Amina Wanjiru Kamau",
    phone: str | None = None,
    dob: date = DEFAULT_DOB,
    national_id_last4: str = DEFAULT_NATIONAL_ID_LAST4,
    language: str = "en",
) -> Borrower:
    borrower = Borrower(
        external_id=f"B-{_unique()}",
        branch_id=branch.id,
        officer_id=officer.id if officer else None,
        full_name=full_name,
        phone_e164=phone or unique_phone(),
        preferred_language=language,
        dob_hash=dob_hash(_pepper(), dob),
        national_id_last4_hash=national_id_hash(_pepper(), national_id_last4),
    )
    session.add(borrower)
    session.flush()
    return borrower


def make_loan(
    session: Session,
    borrower: Borrower,
    *,
    schedule: Sequence[tuple[date, str, str, str]],
    currency: str = "KES",
    frequency: Frequency = Frequency.monthly,
    disbursed_on: date | None = None,
) -> Loan:
    """A loan with installments given as ``(due_date, principal, interest, fees)``."""
    principal = sum((Decimal(p) for _, p, _, _ in schedule), Decimal("0.00"))
    loan = Loan(
        external_id=f"L-{_unique()}",
        account_reference=f"KP{_unique()}"[:32],
        borrower_id=borrower.id,
        product="business",
        principal=principal,
        currency=currency,
        annual_interest_rate=Decimal("24.00"),
        frequency=frequency,
        disbursed_on=disbursed_on or schedule[0][0].replace(day=1),
        status=LoanStatus.active,
        cycle=1,
        collection_paused=False,
    )
    session.add(loan)
    session.flush()
    for seq, (due, p, i, f) in enumerate(schedule, start=1):
        session.add(
            Installment(
                loan_id=loan.id,
                seq=seq,
                due_date=due,
                principal_due=Decimal(p),
                interest_due=Decimal(i),
                fees_due=Decimal(f),
                principal_paid=Decimal("0.00"),
                interest_paid=Decimal("0.00"),
                fees_paid=Decimal("0.00"),
                status=InstallmentStatus.pending,
            )
        )
    session.flush()
    return loan


def make_verified_identity(
    session: Session,
    borrower: Borrower,
    *,
    at: datetime,
    channel: Channel = Channel.telegram,
    user: str | None = None,
) -> ChannelIdentity:
    """A chat already verified as ``borrower`` and active at ``at``."""
    identity = ChannelIdentity(
        channel=channel,
        external_user_id=user or f"{next(_counter)}{uuid.uuid4().int % 10**9}",
        borrower_id=borrower.id,
        proven_phone_e164=borrower.phone_e164,
        verified_at=at,
        last_seen_at=at,
        failed_attempts=0,
    )
    session.add(identity)
    session.flush()
    return identity


def aware(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
