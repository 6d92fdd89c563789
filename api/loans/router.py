"""A verified borrower's loans: summary, schedule, payments and how to pay."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.borrowers.dependencies import VerifiedChatDep
from api.core.deps import NowDep, SessionDep
from api.loans import rules, service
from api.loans.exceptions import NoActiveLoan
from api.loans.schemas import (
    LoanSummary,
    NextInstallment,
    PaymentInstructions,
    PaymentLine,
    ScheduleLine,
)
from api.payments import service as payment_service

router = APIRouter(prefix="/v1/identities/{channel}/{user}", tags=["loans"])

_NOT_YOURS: dict[int | str, dict[str, Any]] = {
    404: {"description": "not_found: no such loan for this borrower"}
}
_UNVERIFIED: dict[int | str, dict[str, Any]] = {403: {"description": "verification_required"}}


@router.get("/loans", response_model=list[LoanSummary], responses=_UNVERIFIED)
def list_loans(chat: VerifiedChatDep, session: SessionDep, now: NowDep) -> list[LoanSummary]:
    """Every loan of the verified borrower with what is outstanding and overdue."""
    today = service.local_today(service.branch_of(session, chat.borrower).timezone, now)
    summaries = []
    for loan in service.loans_of(session, chat.borrower.id):
        pos = rules.position(service.installments_of(session, loan.id), today)
        nxt = pos.next_installment
        summaries.append(
            LoanSummary(
                loan_id=loan.id,
                account_reference=loan.account_reference,
                currency=loan.currency,
                outstanding=pos.outstanding,
                arrears=pos.arrears,
                days_past_due=pos.days_past_due,
                status=loan.status,
                collection_paused=loan.collection_paused,
                next_installment=NextInstallment(
                    due_date=nxt.due_date, amount=rules.outstanding(nxt)
                )
                if nxt
                else None,
            )
        )
    session.commit()
    return summaries


@router.get(
    "/loans/{loan_id}/schedule",
    response_model=list[ScheduleLine],
    responses={**_NOT_YOURS, **_UNVERIFIED},
)
def schedule(loan_id: int, chat: VerifiedChatDep, session: SessionDep) -> list[ScheduleLine]:
    """The installments of one of the borrower's loans."""
    loan = service.owned_loan(session, borrower_id=chat.borrower.id, loan_id=loan_id)
    lines = [
        ScheduleLine(
            seq=i.seq,
            due_date=i.due_date,
            amount_due=i.total_due,
            amount_paid=i.total_paid,
            status=i.status,
        )
        for i in service.installments_of(session, loan.id)
    ]
    session.commit()
    return lines


@router.get(
    "/loans/{loan_id}/payments",
    response_model=list[PaymentLine],
    responses={**_NOT_YOURS, **_UNVERIFIED},
)
def payments(
    loan_id: int,
    chat: VerifiedChatDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[PaymentLine]:
    """The latest payments received on one of the borrower's loans, newest first."""
    loan = service.owned_loan(session, borrower_id=chat.borrower.id, loan_id=loan_id)
    lines = [
        PaymentLine(
            amount=p.amount,
            currency=p.currency,
            received_at=p.received_at,
            method=p.method,
            reference=p.external_reference,
        )
        for p in payment_service.recent_payments(session, loan_id=loan.id, limit=limit)
    ]
    session.commit()
    return lines


@router.get(
    "/payment-instructions",
    response_model=PaymentInstructions,
    responses={**_NOT_YOURS, **_UNVERIFIED},
)
def payment_instructions(
    chat: VerifiedChatDep,
    session: SessionDep,
    now: NowDep,
    loan_id: Annotated[int | None, Query()] = None,
) -> PaymentInstructions:
    """How to pay the branch, with the account reference to quote."""
    branch = service.branch_of(session, chat.borrower)
    if loan_id is not None:
        loan = service.owned_loan(session, borrower_id=chat.borrower.id, loan_id=loan_id)
    else:
        try:
            loan = service.primary_loan(session, borrower=chat.borrower, now=now)
        except NoActiveLoan:
            # Nothing due: still say how to pay the latest loan (a borrower may prepay).
            latest = service.loans_of(session, chat.borrower.id)
            if not latest:
                raise
            loan = latest[0]
    info = branch.payment_instructions or {}
    answer = PaymentInstructions(
        account_reference=loan.account_reference,
        currency=loan.currency,
        mobile_money=list(info.get("mobile_money", [])),
        bank=info.get("bank"),
        agents=list(info.get("agents", [])),
    )
    session.commit()
    return answer
