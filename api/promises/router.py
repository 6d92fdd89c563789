"""A verified borrower promises to pay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from api.borrowers.dependencies import VerifiedChatDep
from api.core.deps import NowDep, SessionDep, SettingsDep
from api.core.idempotency import scoped_key
from api.loans import service as loan_service
from api.promises import service
from api.promises.schemas import PromiseIn, PromiseOut

router = APIRouter(prefix="/v1/identities/{channel}/{user}", tags=["promises"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


@router.post(
    "/promises",
    response_model=PromiseOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "a retry with the same Idempotency-Key: the promise made first"},
        404: {"description": "not_found (loan_id of another borrower) or no_active_loan"},
        409: {"description": "idempotency_key_reused with a different request"},
        422: {
            "description": "amount_not_positive, amount_above_outstanding, date_in_past, "
            "date_beyond_policy (with max_date)"
        },
    },
)
def create_promise(
    body: PromiseIn,
    chat: VerifiedChatDep,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> PromiseOut:
    """Record a promise to pay; retries with the same Idempotency-Key answer the same promise."""
    borrower = chat.borrower
    if body.loan_id is not None:
        loan = loan_service.owned_loan(session, borrower_id=borrower.id, loan_id=body.loan_id)
    else:
        loan = loan_service.primary_loan(session, borrower=borrower, now=now)
    result = service.create_promise(
        session=session,
        borrower=borrower,
        loan=loan,
        amount=body.amount,
        promised_date=body.promised_date,
        channel=chat.identity.channel.value,
        now=now,
        idempotency_key=scoped_key(f"promise:{chat.identity.id}", idempotency_key),
        policy=settings.promises,
    )
    session.commit()
    if not result.created:
        response.status_code = status.HTTP_200_OK
    p = result.promise
    return PromiseOut(
        promise_id=p.id,
        loan_id=p.loan_id,
        amount=p.amount,
        currency=p.currency,
        promised_date=p.promised_date,
        status=p.status,
    )
