"""The mobile-money confirmation webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import ValidationError
from sqlalchemy import select

from api.core.deps import SessionDep, SettingsDep
from api.core.errors import Invalid
from api.core.security import signature_matches
from api.loans.models import Loan
from api.payments import service
from api.payments.exceptions import BadSignature, UnknownAccount
from api.payments.schemas import PaymentConfirmation, PaymentConfirmationOut

router = APIRouter(prefix="/v1/webhooks", tags=["payments"])


async def raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/payments",
    response_model=PaymentConfirmationOut,
    # The body is read raw (the signature covers its bytes), so its schema is declared here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PaymentConfirmation.model_json_schema()}},
        }
    },
    responses={401: {"description": "bad_signature"}, 404: {"description": "unknown_account"}},
)
def payment_confirmation(
    raw: Annotated[bytes, Depends(raw_body)],
    session: SessionDep,
    settings: SettingsDep,
    x_kopa_signature: Annotated[str | None, Header()] = None,
) -> PaymentConfirmationOut:
    """Record a confirmed payment once; a replay answers ``duplicate`` and records nothing."""
    # The signature covers the exact bytes received, so it is checked before any parsing.
    secret = settings.payment_webhook_secret.get_secret_value()
    if not signature_matches(secret, raw, x_kopa_signature):
        raise BadSignature()
    try:
        body = PaymentConfirmation.model_validate_json(raw)
    except ValidationError as exc:
        raise Invalid(
            "The payment confirmation is malformed",
            errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()],
        ) from None
    loan = session.scalar(select(Loan).where(Loan.account_reference == body.account_reference))
    if loan is None:
        raise UnknownAccount()
    result = service.record_payment(
        session=session,
        loan=loan,
        amount=body.amount,
        currency=body.currency,
        external_reference=body.external_reference,
        received_at=body.received_at,
        method=body.method,
        source="webhook",
    )
    session.commit()
    return PaymentConfirmationOut(status=result.status)
