"""The mobile-money confirmation webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import ValidationError
from sqlalchemy import select

from api.core.config import Settings, get_settings
from api.core.deps import NowDep, SessionDep, SettingsDep
from api.core.errors import Invalid
from api.core.security import signed_timestamp
from api.loans.models import Loan
from api.payments import service
from api.payments.exceptions import (
    BadSignature,
    PayloadTooLarge,
    StaleSignature,
    UnknownAccount,
)
from api.payments.schemas import PaymentConfirmation, PaymentConfirmationOut

router = APIRouter(prefix="/v1/webhooks", tags=["payments"])


async def raw_body(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> bytes:
    """The raw body, read no further than the limit (a declared length over it is not read)."""
    limit = settings.payment_webhook_max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge()
    return bytes(body)


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
    responses={
        401: {"description": "bad_signature / stale_signature"},
        404: {"description": "unknown_account"},
        413: {"description": "payload_too_large"},
    },
)
def payment_confirmation(
    raw: Annotated[bytes, Depends(raw_body)],
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    x_kopa_signature: Annotated[str | None, Header()] = None,
    x_kopa_timestamp: Annotated[str | None, Header()] = None,
) -> PaymentConfirmationOut:
    """Record a confirmed payment once; a replay answers ``duplicate`` and records nothing.

    The signature covers the send time and the exact bytes received, so it is checked before
    any parsing; a confirmation signed outside the window is a replay and is refused.
    """
    secret = settings.payment_webhook_secret.get_secret_value()
    sent_at = signed_timestamp(secret, raw, x_kopa_timestamp, x_kopa_signature)
    if sent_at is None:
        raise BadSignature()
    if abs(now.timestamp() - sent_at) > settings.payment_webhook_tolerance_seconds:
        raise StaleSignature()
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
