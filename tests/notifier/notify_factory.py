"""Small builders of borrowers, loans and chat identities for the notifier tests."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, Channel, ChannelIdentity, Consent
from api.branches.models import BorrowerGroup, Branch
from api.loans.models import Frequency, Installment, InstallmentStatus, Loan

_seq = itertools.count(1)


def branch(
    session: Session,
    *,
    country: str = "KE",
    timezone: str = "Africa/Nairobi",
    currency: str = "KES",
    extra_holidays: list[str] | None = None,
) -> Branch:
    n = next(_seq)
    b = Branch(
        code=f"BR-{n}-{timezone[:3]}",
        name=f"Branch {n}",
        country=country,
        timezone=timezone,
        currency=currency,
        payment_instructions={},
        extra_holidays=extra_holidays or [],
    )
    session.add(b)
    session.flush()
    return b


def borrower(
    session: Session,
    br: Branch,
    *,
    locale: str = "en",
    telegram: bool = True,
    whatsapp: bool = False,
    whatsapp_opt_in: bool = False,
    verified: bool = True,
    group: BorrowerGroup | None = None,
) -> Borrower:
    n = next(_seq)
    person = Borrower(
        external_id=f"B-{n}",
        branch_id=br.id,
        group_id=group.id if group else None,
        full_name=f"Test Borrower {n}",
        phone_e164=f"+2547{n:08d}",
        preferred_language=locale,
        dob_hash="x" * 64,
        national_id_last4_hash="y" * 64,
    )
    session.add(person)
    session.flush()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    if telegram:
        session.add(
            ChannelIdentity(
                channel=Channel.telegram,
                external_user_id=str(700000000 + n),
                borrower_id=person.id,
                verified_at=now if verified else None,
            )
        )
    if whatsapp:
        session.add(
            ChannelIdentity(
                channel=Channel.whatsapp,
                external_user_id=person.phone_e164.lstrip("+"),
                borrower_id=person.id,
                verified_at=now if verified else None,
            )
        )
    if whatsapp_opt_in:
        session.add(
            Consent(
                borrower_id=person.id,
                channel=Channel.whatsapp,
                opted_in=True,
                opted_in_at=now,
                source="test",
            )
        )
    session.flush()
    return person


def loan(
    session: Session,
    person: Borrower,
    *,
    first_due: date,
    count: int = 6,
    every_days: int = 30,
    amount: str = "1000.00",
    currency: str = "KES",
    paid: int = 0,
    paid_late: bool = False,
) -> Loan:
    n = next(_seq)
    item = Loan(
        external_id=f"L-{n}",
        account_reference=f"AC{n:06d}",
        borrower_id=person.id,
        group_id=person.group_id,
        product="business",
        principal=Decimal(amount) * count,
        currency=currency,
        annual_interest_rate=Decimal("18.00"),
        frequency=Frequency.weekly if every_days == 7 else Frequency.monthly,
        disbursed_on=first_due - timedelta(days=every_days),
    )
    session.add(item)
    session.flush()
    for seq in range(1, count + 1):
        due = first_due + timedelta(days=every_days * (seq - 1))
        done = seq <= paid
        session.add(
            Installment(
                loan_id=item.id,
                seq=seq,
                due_date=due,
                principal_due=Decimal(amount),
                interest_due=Decimal("0.00"),
                principal_paid=Decimal(amount) if done else Decimal("0.00"),
                status=InstallmentStatus.paid if done else InstallmentStatus.pending,
                paid_on=(due + timedelta(days=2) if paid_late else due - timedelta(days=1))
                if done
                else None,
            )
        )
    session.flush()
    return item


def group(session: Session, br: Branch, *, weekday: int, at: time = time(10, 0)) -> BorrowerGroup:
    g = BorrowerGroup(
        branch_id=br.id,
        name=f"Umoja {next(_seq)}",
        meeting_weekday=weekday,
        meeting_time=at,
        meeting_place="Market hall",
    )
    session.add(g)
    session.flush()
    return g
