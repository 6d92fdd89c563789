"""Cases: borrowers open them from the chat, officers work them from theirs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status
from sqlalchemy.orm import Session

from api.borrowers import service as borrower_service
from api.borrowers.dependencies import VerifiedChatDep
from api.borrowers.models import Borrower
from api.branches.models import Branch, Officer
from api.cases import officers, service
from api.cases.models import Case, CaseKind, CaseStatus
from api.cases.schemas import (
    CaseIn,
    CaseOut,
    EscalationOut,
    OfficerActionIn,
    OfficerCaseOut,
    OfficerOut,
    PaymentClaimIn,
    PaymentClaimOut,
)
from api.core.deps import NowDep, SessionDep, SettingsDep
from api.core.idempotency import scoped_key
from api.loans import service as loan_service
from api.loans.exceptions import NoActiveLoan
from api.loans.models import Loan
from api.loans.schemas import PaymentLine

borrower_router = APIRouter(prefix="/v1/identities/{channel}/{user}", tags=["cases"])
officer_router = APIRouter(prefix="/v1", tags=["officers"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


@borrower_router.post(
    "/cases",
    response_model=CaseOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "description": "a retry with the same Idempotency-Key, or a request added to an "
            "unresolved case of the same kind or (past the daily cap) to the latest case: "
            "nobody is alerted; ``disposition`` says which"
        }
    },
)
def open_case(
    body: CaseIn,
    chat: VerifiedChatDep,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> CaseOut:
    """Open a hardship case, officer request or complaint; answers its reference."""
    borrower = chat.borrower
    loan: Loan | None
    if body.loan_id is not None:
        loan = loan_service.owned_loan(session, borrower_id=borrower.id, loan_id=body.loan_id)
    else:
        try:
            loan = loan_service.primary_loan(session, borrower=borrower, now=now)
        except NoActiveLoan:
            loan = None
    opened = service.open_case(
        session=session,
        borrower=borrower,
        kind=CaseKind(body.kind),
        now=now,
        channel=chat.identity.channel.value,
        loan=loan,
        category=body.category,
        borrower_words=body.borrower_words,
        requested_relief=body.requested_relief,
        idempotency_key=scoped_key(f"case:{chat.identity.id}", idempotency_key),
        policy=settings.cases,
    )
    session.commit()
    if not opened.created:
        response.status_code = status.HTTP_200_OK
    return CaseOut(
        reference=opened.case.reference,
        kind=opened.case.kind,
        status=opened.case.status,
        officer_name=opened.officer.name,
        sla_due_at=opened.case.sla_due_at,
        disposition=opened.disposition.value,
    )


@borrower_router.post("/payment-claims", response_model=PaymentClaimOut)
def claim_payment(
    body: PaymentClaimIn,
    chat: VerifiedChatDep,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> PaymentClaimOut:
    """Look for a payment the borrower says they made; open a claim when it has not arrived."""
    answer = service.claim_payment(
        session=session,
        borrower=chat.borrower,
        now=now,
        channel=chat.identity.channel.value,
        amount=body.amount,
        paid_on=body.paid_on,
        reference=body.reference,
        idempotency_key=scoped_key(f"claim:{chat.identity.id}", idempotency_key),
        policy=settings.cases,
    )
    session.commit()
    if answer.payment is not None:
        p = answer.payment
        return PaymentClaimOut(
            found=True,
            payment=PaymentLine(
                amount=p.amount,
                currency=p.currency,
                received_at=p.received_at,
                method=p.method,
                reference=p.external_reference,
            ),
        )
    assert answer.case is not None
    return PaymentClaimOut(
        found=False,
        case_reference=answer.case.reference,
        expected_within_hours=answer.expected_within_hours,
        disposition=answer.disposition.value if answer.disposition else None,
    )


def _officer_view(session: Session, case: Case, now: datetime) -> OfficerCaseOut:
    borrower = session.get_one(Borrower, case.borrower_id)
    branch = session.get_one(Branch, borrower.branch_id)
    assigned = session.get(Officer, case.assigned_officer_id) if case.assigned_officer_id else None
    escalated = session.get(Officer, case.escalated_to_id) if case.escalated_to_id else None
    return OfficerCaseOut(
        reference=case.reference,
        kind=case.kind,
        status=case.status,
        outcome=case.outcome,
        category=case.category,
        requested_relief=case.requested_relief,
        borrower_first_name=borrower_service.first_name(borrower),
        borrower_phone_masked=borrower_service.mask_phone(borrower.phone_e164),
        branch_code=branch.code,
        assigned_officer_name=assigned.name if assigned else None,
        escalated_to_name=escalated.name if escalated else None,
        sla_due_at=case.sla_due_at,
        sla_missed=case.status == CaseStatus.open and case.sla_due_at < now,
        created_at=case.created_at,
    )


@officer_router.get("/cases", response_model=list[OfficerCaseOut])
def list_cases(
    session: SessionDep,
    now: NowDep,
    case_status: Annotated[
        Literal["open", "acknowledged", "called", "resolved"] | None, Query(alias="status")
    ] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[OfficerCaseOut]:
    """Cases ordered by SLA deadline; ``open`` means not yet resolved."""
    cases = officers.list_cases(session, status=case_status, limit=limit)
    return [_officer_view(session, c, now) for c in cases]


@officer_router.get("/officers/by-chat/{channel}/{chat_id}", response_model=OfficerOut)
def officer_by_chat(channel: str, chat_id: str, session: SessionDep) -> OfficerOut:
    """Who is behind an officer chat (for the gateway to route button presses)."""
    officer = officers.officer_by_chat(session, chat_id=chat_id, channel=channel)
    branch = session.get_one(Branch, officer.branch_id)
    return OfficerOut(
        officer_id=officer.id,
        name=officer.name,
        role=officer.role.value,
        branch_code=branch.code,
        locale=officer.locale,
    )


@officer_router.post("/cases/escalate-overdue", response_model=EscalationOut)
def escalate_overdue(session: SessionDep, now: NowDep) -> EscalationOut:
    """Hand cases nobody acknowledged before their SLA to the branch manager."""
    escalated = officers.escalate_overdue(session=session, now=now)
    session.commit()
    return EscalationOut(escalated=[c.reference for c in escalated])


def _act(
    action: str, reference: str, body: OfficerActionIn, session: Session, now: datetime
) -> OfficerCaseOut:
    case = officers.act(
        session=session,
        reference=reference,
        action=action,
        officer_chat_id=body.officer_chat_id,
        officer_channel=body.officer_channel,
        outcome=body.outcome,
        now=now,
    )
    session.commit()
    return _officer_view(session, case, now)


_ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "not_case_officer"},
    404: {"description": "case_not_found / officer_not_found"},
    409: {"description": "case_closed"},
}


@officer_router.post(
    "/cases/{reference}/acknowledge", response_model=OfficerCaseOut, responses=_ACTION_ERRORS
)
def acknowledge(
    reference: str, body: OfficerActionIn, session: SessionDep, now: NowDep
) -> OfficerCaseOut:
    """The assigned officer (or the manager) has seen the case."""
    return _act("acknowledge", reference, body, session, now)


@officer_router.post(
    "/cases/{reference}/called", response_model=OfficerCaseOut, responses=_ACTION_ERRORS
)
def called(
    reference: str, body: OfficerActionIn, session: SessionDep, now: NowDep
) -> OfficerCaseOut:
    """The officer spoke with the borrower."""
    return _act("called", reference, body, session, now)


@officer_router.post(
    "/cases/{reference}/resolve", response_model=OfficerCaseOut, responses=_ACTION_ERRORS
)
def resolve(
    reference: str, body: OfficerActionIn, session: SessionDep, now: NowDep
) -> OfficerCaseOut:
    """Close the case with an outcome; the last open hardship case resumes collection."""
    return _act("resolve", reference, body, session, now)
