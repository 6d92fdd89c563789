"""Where a loan stands: outstanding, arrears and days past due in the borrower's branch time."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Branch
from api.loans.exceptions import LoanNotFound, NoActiveLoan
from api.loans.models import Installment, Loan, LoanStatus
from api.loans.rules import ZERO, LoanPosition, position

OPEN_STATUSES = (LoanStatus.active, LoanStatus.defaulted)


def local_today(timezone: str, now: datetime) -> date:
    """The calendar day it is for someone in ``timezone`` at the instant ``now``."""
    return now.astimezone(ZoneInfo(timezone)).date()


def branch_of(session: Session, borrower: Borrower) -> Branch:
    return session.get_one(Branch, borrower.branch_id)


def branch_of_loan(session: Session, loan: Loan) -> Branch:
    borrower = session.get_one(Borrower, loan.borrower_id)
    return branch_of(session, borrower)


def installments_of(session: Session, loan_id: int) -> list[Installment]:
    return list(
        session.scalars(
            select(Installment).where(Installment.loan_id == loan_id).order_by(Installment.seq)
        )
    )


def loans_of(session: Session, borrower_id: int) -> list[Loan]:
    return list(
        session.scalars(
            select(Loan)
            .where(Loan.borrower_id == borrower_id)
            .order_by(Loan.disbursed_on.desc(), Loan.id.desc())
        )
    )


def owned_loan(session: Session, *, borrower_id: int, loan_id: int) -> Loan:
    """The loan, only if it belongs to this borrower (anything else is "not found")."""
    loan = session.get(Loan, loan_id)
    if loan is None or loan.borrower_id != borrower_id:
        raise LoanNotFound()
    return loan


def loan_position(session: Session, *, loan: Loan, now: datetime) -> LoanPosition:
    branch = branch_of_loan(session, loan)
    return position(installments_of(session, loan.id), local_today(branch.timezone, now))


def primary_loan(session: Session, *, borrower: Borrower, now: datetime) -> Loan:
    """The loan a borrower means when they do not say which: the open one due soonest.

    Raises:
        NoActiveLoan: nothing is outstanding.
    """
    today = local_today(branch_of(session, borrower).timezone, now)
    candidates: list[tuple[date, int, Loan]] = []
    for loan in loans_of(session, borrower.id):
        if loan.status not in OPEN_STATUSES:
            continue
        pos = position(installments_of(session, loan.id), today)
        if pos.outstanding > ZERO and pos.oldest_unpaid_due is not None:
            candidates.append((pos.oldest_unpaid_due, loan.id, loan))
    if not candidates:
        raise NoActiveLoan()
    return min(candidates, key=lambda c: (c[0], c[1]))[2]
